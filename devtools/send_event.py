"""Sign and post one raw, hand-made Stripe event straight to the service, the way Stripe
delivers webhooks (`make send-event EVENT=… PROJECT=…`).

    .venv/bin/python -m devtools.send_event checkout.session.completed.paid --project proj_demo_1

It bypasses the sandbox: the sandbox's dashboard never hears of the event, so it keeps
showing the session as it was. To move a sandbox session for real (both then agree), use
`python -m sandbox trigger complete|fail|expire|refund|dispute … --project ID`. This tool is
for what the sandbox cannot make: duplicates, odd orders, foreign or malformed events.

The payload is Stripe's own example (sandbox/data/events/NAME.json) re-targeted at the
project, with a fresh event id and payment intent (sandbox/examples.py); it is signed with
STRIPE_WEBHOOK_SECRET (the sandbox's default secret when unset), exactly as Stripe signs
(`t=…,v1=HMAC-SHA256`).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request

import stripe

from devtools.cli import command_parser
from devtools.run import SANDBOX_WEBHOOK_SECRET
from sandbox import examples


def main() -> int:
    parser = command_parser("devtools.send_event", __doc__)
    parser.add_argument("event", choices=examples.NAMES)
    parser.add_argument("--project", required=True)
    parser.add_argument("--session", help="checkout session id (for checkout.session.* events)")
    parser.add_argument(
        "--url", default=f"http://127.0.0.1:{os.environ.get('PORT', '5003')}/webhooks/stripe"
    )
    args = parser.parse_args()
    secret = os.environ.get("STRIPE_WEBHOOK_SECRET", SANDBOX_WEBHOOK_SECRET).split(",")[0]
    payload = json.dumps(examples.event_for(args.event, args.project, session_id=args.session))
    header = stripe.WebhookSignature.generate_signature_header(payload, secret)
    request = urllib.request.Request(  # noqa: S310 - a URL the developer chose
        args.url,
        data=payload.encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Stripe-Signature": header},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            print(response.status, response.read().decode())
            return 0
    except urllib.error.HTTPError as error:
        print(error.code, error.read().decode(), file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
