"""The Stripe stand-in for the checkout benchmark: `sandbox` answering every call late.

`python -m sandbox` has no flag for a delay, so this runs the stand-in's own app with
`faults.delay_seconds` set. bench/run.py starts it as a process of its own, so that it does
not share an event loop (or a core's time slice) with the service or the load generator.
It runs on uvloop, as the service does: its CPU comes out of the same two cores, and every
millisecond it spends per request shows up as the service's latency.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import tornado.httpserver
import tornado.netutil
import uvloop

from sandbox.api import make_api_app
from sandbox.state import SandboxState


async def serve(port: int, api_key: str, price_id: str, delay_seconds: float) -> None:
    sockets = tornado.netutil.bind_sockets(port, "127.0.0.1")
    url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    state = SandboxState(api_key=api_key, price_id=price_id, public_base_url=url)
    state.faults.delay_seconds = delay_seconds
    server = tornado.httpserver.HTTPServer(make_api_app(state))
    server.add_sockets(sockets)
    print(f"stand-in ready on {url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()
    await server.close_all_connections()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.standin", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--price-id", required=True)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds before each answer")
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.api_key, args.price_id, args.delay))


if __name__ == "__main__":
    main()
