"""The Stripe stand-in for the checkout benchmark: `sandbox` answering every call late.

`python -m sandbox` has no flag for a delay, so this runs the stand-in's own app with
`faults.delay_seconds` set. The bench starts it (`running_standin`) as a process of its own,
so that it does not share an event loop (or a core's time slice) with the service or the
load generator.
It runs on uvloop, as the service does: its CPU comes out of the same two cores, and every
millisecond it spends per request shows up as the service's latency.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvloop

from bench.common import PRICE_ID, ROOT, SECRET_KEY, STRIPE_DELAY_SECONDS, BenchFailed, stop
from devtools.processes import free_port, wait_for_answer
from sandbox.server import listen, serve_until_signalled
from sandbox.state import SandboxState


async def serve(port: int, api_key: str, price_id: str, delay_seconds: float) -> None:
    state = SandboxState(api_key=api_key, price_id=price_id)
    state.faults.delay_seconds = delay_seconds
    listening = listen(state, port=port)
    print(f"stand-in ready on {listening.url}", flush=True)
    await serve_until_signalled(listening)


@contextmanager
def running_standin(workdir: Path) -> Iterator[tuple[int, int]]:
    """This stand-in as a process of its own; yields its port and pid."""
    port = free_port()
    log_file = (workdir / "standin.log").open("wb")
    proc = subprocess.Popen(  # noqa: S603 - this module, fixed arguments
        [
            sys.executable,
            "-m",
            "bench.standin",
            f"--port={port}",
            f"--api-key={SECRET_KEY}",
            f"--price-id={PRICE_ID}",
            f"--delay={STRIPE_DELAY_SECONDS}",
        ],
        cwd=ROOT,
        stdout=log_file,
        stderr=log_file,
    )
    try:
        # Any answer will do (its / is a 404).
        if not wait_for_answer(f"http://127.0.0.1:{port}/", 20, proc):
            raise BenchFailed("the Stripe stand-in did not start")
        yield port, proc.pid
    finally:
        stop(proc, 10)
        log_file.close()


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
