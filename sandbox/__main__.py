"""`python -m sandbox`: the local Stripe stand-in on its own (make run starts it)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

from sandbox.api import make_api_app
from sandbox.state import SandboxState


async def _serve(host: str, port: int, state: SandboxState) -> None:
    server = make_api_app(state).listen(port, address=host)
    print(f"Stripe sandbox listening on http://{host}:{port} (no real money moves)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", "12111")))
    parser.add_argument(
        "--api-key", default=os.environ.get("STRIPE_SECRET_KEY", "sk_test_sandbox0000000000000000")
    )
    parser.add_argument(
        "--price-id", default=os.environ.get("STRIPE_PRODUCT_PRICE_ID", "price_sandbox")
    )
    args = parser.parse_args()
    state = SandboxState(
        api_key=args.api_key,
        price_id=args.price_id,
        public_base_url=f"http://{args.host}:{args.port}",
    )
    asyncio.run(_serve(args.host, args.port, state))


if __name__ == "__main__":
    main()
