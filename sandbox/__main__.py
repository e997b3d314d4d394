"""`python -m sandbox`: the local Stripe stand-in on its own (make run starts it).

Serves the /v1 API the service uses, the hosted checkout page at each session's URL, a
dashboard (/dashboard) and a demo frontend (/demo). With --webhook-url and
--webhook-secret, every event is POSTed there signed, as Stripe delivers webhooks.

`python -m sandbox trigger ACTION --project ID` drives a running sandbox's sessions
(complete, fail, expire, refund, dispute, …) as `stripe trigger` does; `trigger --help`.

Defaults come from the environment the service reads too (SANDBOX_PORT, STRIPE_SECRET_KEY,
STRIPE_PRODUCT_PRICE_ID), so one set of variables configures both.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import sys

from sandbox import triggers
from sandbox.objects import API_VERSION
from sandbox.server import listen, serve_until_signalled
from sandbox.state import SandboxState
from sandbox.webhooks import WebhookTarget

DEFAULT_KEY = "sk_test_sandbox0000000000000000"


async def _serve(args: argparse.Namespace) -> None:
    webhook = None
    if args.webhook_url:
        webhook = WebhookTarget(
            args.webhook_url,
            args.webhook_secret,
            retry_base_seconds=args.webhook_retry_base,
            max_attempts=args.webhook_max_attempts,
            timeout_seconds=args.webhook_timeout,
            shuffle_max_delay_seconds=args.max_delay if args.delivery == "shuffled" else 0.0,
        )
    state = SandboxState(
        api_key=args.api_key,
        price_id=args.price_id,
        webhook=webhook,
        api_version=args.api_version,
    )
    try:
        listening = listen(state, host=args.host, port=args.port, service_url=args.service_url)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        print(
            f"sandbox: cannot listen on {args.host}:{args.port}: the address is already in "
            "use (another sandbox or make run?); stop it or pick --port (SANDBOX_PORT)",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    state.attach(asyncio.get_running_loop())
    url = listening.url
    print(f"Stripe sandbox listening on {url} (API at {url}/v1, no real money)", flush=True)
    print(f"  dashboard {url}/dashboard, demo {url}/demo", flush=True)
    if webhook is not None:
        order = (
            f"shuffled: each held a random 0-{args.max_delay:g} s"
            if webhook.shuffle_max_delay_seconds
            else "in order"
        )
        print(f"  webhooks to {webhook.url} ({order})", flush=True)
    await serve_until_signalled(listening)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", "12111")))
    parser.add_argument("--api-key", default=os.environ.get("STRIPE_SECRET_KEY", DEFAULT_KEY))
    parser.add_argument(
        "--price-id", default=os.environ.get("STRIPE_PRODUCT_PRICE_ID", "price_sandbox")
    )
    parser.add_argument("--webhook-url", help="POST every event here, signed (Stripe webhooks)")
    parser.add_argument("--webhook-secret", help="the endpoint's signing secret (whsec_…)")
    parser.add_argument(
        "--webhook-retry-base",
        type=float,
        default=1.0,
        help="seconds before the first retry; doubles with each attempt (default 1)",
    )
    parser.add_argument(
        "--webhook-max-attempts", type=int, default=8, help="give up after this many (8)"
    )
    parser.add_argument(
        "--webhook-timeout", type=float, default=10.0, help="seconds per attempt (10)"
    )
    parser.add_argument(
        "--delivery",
        choices=("ordered", "shuffled"),
        default=os.environ.get("SANDBOX_DELIVERY") or "ordered",
        help="shuffled: deliver like Stripe after an outage, each event held a random delay so "
        "later events overtake earlier ones (default ordered; env SANDBOX_DELIVERY)",
    )
    parser.add_argument(
        "--max-delay",
        type=float,
        default=float(os.environ.get("SANDBOX_MAX_DELAY") or "30"),
        help="the longest hold of a shuffled delivery, in seconds (30; env SANDBOX_MAX_DELAY)",
    )
    parser.add_argument(
        "--api-version",
        default=os.environ.get("SANDBOX_API_VERSION") or API_VERSION,
        help="the account's default API version: answers to requests that name no "
        f"Stripe-Version, and every event (default {API_VERSION}; env SANDBOX_API_VERSION)",
    )
    parser.add_argument(
        "--service-url", help="the payment service the demo page calls, e.g. http://127.0.0.1:5003"
    )
    args = parser.parse_args(argv)
    if args.webhook_url and not args.webhook_secret:
        parser.error("--webhook-url needs --webhook-secret")
    if args.delivery not in ("ordered", "shuffled"):
        parser.error("--delivery (SANDBOX_DELIVERY) must be ordered or shuffled")
    if args.max_delay < 0:
        parser.error("--max-delay must be >= 0")
    if args.webhook_max_attempts < 1 or args.webhook_retry_base < 0:
        parser.error("--webhook-max-attempts must be >= 1 and --webhook-retry-base >= 0")
    return args


def main() -> None:
    if sys.argv[1:2] == ["trigger"]:
        raise SystemExit(triggers.main(sys.argv[2:]))
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="[sandbox] %(message)s")
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
