"""`python -m sandbox`: the local Stripe stand-in on its own (make run starts it).

Defaults come from the environment the service reads too (SANDBOX_PORT, STRIPE_SECRET_KEY,
STRIPE_PRODUCT_PRICE_ID), so one set of variables configures both.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

import tornado.httpserver
import tornado.netutil

from sandbox.api import make_api_app
from sandbox.state import SandboxState

DEFAULT_KEY = "sk_test_sandbox0000000000000000"


async def _serve(host: str, port: int, api_key: str, price_id: str) -> None:
    # Bind first so that --port 0 can report the port it got.
    sockets = tornado.netutil.bind_sockets(port, host)
    bound = sockets[0].getsockname()[1]
    url = f"http://{host}:{bound}"
    state = SandboxState(api_key=api_key, price_id=price_id, public_base_url=url)
    server = tornado.httpserver.HTTPServer(make_api_app(state))
    server.add_sockets(sockets)
    print(f"Stripe sandbox listening on {url} (API at {url}/v1, no real money)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()
    await server.close_all_connections()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", "12111")))
    parser.add_argument("--api-key", default=os.environ.get("STRIPE_SECRET_KEY", DEFAULT_KEY))
    parser.add_argument(
        "--price-id", default=os.environ.get("STRIPE_PRODUCT_PRICE_ID", "price_sandbox")
    )
    args = parser.parse_args()
    asyncio.run(_serve(args.host, args.port, args.api_key, args.price_id))


if __name__ == "__main__":
    main()
