"""`python -m sandbox trigger`: drive a running sandbox's own sessions, as `stripe trigger`
drives a Stripe test account.

Each trigger changes the sandbox's session (and the payment behind it) exactly as the
customer, the bank or the card network would, and sends the events Stripe would send for
it, signed, to the webhook endpoint. So the sandbox's dashboard and the service always agree;
`devtools.send_event`, which posts hand-made events straight to the service, cannot promise
that.

    python -m sandbox trigger complete --project proj_demo_1
    python -m sandbox trigger refund --session cs_test_…

The dashboard's buttons run the same table (`ACTIONS`) over `POST /sandbox/trigger`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import tornado.web

from sandbox.state import SandboxState

Event = dict[str, Any]


def _fail(state: SandboxState, session_id: str) -> list[Event]:
    """The payment fails: an open session is completed by bank debit, which then fails."""
    events = []
    if state.sessions[session_id]["status"] == "open":
        events.append(state.complete_session(session_id, payment_status="unpaid"))
    events.append(state.async_payment_failed(session_id))
    return events


# action -> (what it plays, what it does); each returns the events it created, in order.
ACTIONS: dict[str, tuple[str, Callable[[SandboxState, str], list[Event]]]] = {
    "complete": (
        "the customer pays by card (checkout.session.completed, paid)",
        lambda s, i: [s.complete_session(i, payment_status="paid")],
    ),
    "complete-unpaid": (
        "the customer pays by bank debit, still to settle (completed, unpaid)",
        lambda s, i: [s.complete_session(i, payment_status="unpaid")],
    ),
    "bank-succeeded": (
        "a pending bank debit settles (async_payment_succeeded)",
        lambda s, i: [s.async_payment_succeeded(i)],
    ),
    "bank-failed": (
        "a pending bank debit fails (async_payment_failed)",
        lambda s, i: [s.async_payment_failed(i)],
    ),
    "fail": ("the payment fails (an open session: bank debit started, then failed)", _fail),
    "expire": (
        "the session expires unpaid (checkout.session.expired)",
        lambda s, i: [s.expire_session(i)],
    ),
    "refund": ("the payment is refunded in full (charge.refunded)", lambda s, i: [s.refund(i)]),
    "dispute": (
        "the card holder disputes it (charge.dispute.created)",
        lambda s, i: [s.open_dispute(i)],
    ),
    "dispute-won": (
        "the dispute closes, won (charge.dispute.closed)",
        lambda s, i: [s.close_dispute(i, won=True)],
    ),
    "dispute-lost": (
        "the dispute closes, lost (charge.dispute.closed)",
        lambda s, i: [s.close_dispute(i, won=False)],
    ),
}


def run(state: SandboxState, action: str, session_id: str) -> list[Event]:
    """Run one trigger; KeyError for an unknown session, ValueError when it does not apply."""
    if action not in ACTIONS:
        raise ValueError(f"no such trigger: {action} (one of {', '.join(ACTIONS)})")
    if session_id not in state.sessions:
        raise KeyError(f"no such checkout.session: {session_id}")
    return ACTIONS[action][1](state, session_id)


def latest_session_of(state: SandboxState, project_id: str) -> str:
    """The project's newest session (the one its latest checkout made)."""
    mine = [s for s in state.sessions.values() if s.get("client_reference_id") == project_id]
    if not mine:
        raise KeyError(f"no checkout session for project {project_id}")
    # Sessions are kept in creation order; `created` has one-second resolution.
    return str(max(enumerate(mine), key=lambda p: (int(p[1]["created"]), p[0]))[1]["id"])


class TriggerHandler(tornado.web.RequestHandler):
    """`POST /sandbox/trigger` `{"action": …, "session": "cs_…"}` or `{"action": …,
    "project": "…"}` -> 200 `{"session": …, "events": [{"id", "type"}…]}`; 4xx `{"error": …}`.

    Open like the dashboard: the sandbox is a local tool, never a real account."""

    state: SandboxState

    def initialize(self, state: SandboxState) -> None:
        self.state = state

    def post(self) -> None:
        # JSON only: a page elsewhere cannot send it without a CORS preflight, which the
        # sandbox never grants, so no web page can press these buttons behind one's back.
        if self.request.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            self._answer(415, {"error": "send Content-Type: application/json"})
            return
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("action"), str):
            self._answer(400, {"error": 'body must be {"action": …, "session" or "project": …}'})
            return
        try:
            session_id = body.get("session") or latest_session_of(
                self.state, str(body.get("project") or "")
            )
            events = run(self.state, body["action"], str(session_id))
        except KeyError as error:
            self._answer(404, {"error": str(error).strip("'\"")})
            return
        except ValueError as error:
            self._answer(409, {"error": str(error)})
            return
        self._answer(
            200,
            {"session": session_id, "events": [{"id": e["id"], "type": e["type"]} for e in events]},
        )

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


def trigger_routes(state: SandboxState) -> list[Any]:
    return [(r"/sandbox/trigger", TriggerHandler, {"state": state})]


def main(argv: list[str]) -> int:
    """The command line: one trigger against a running sandbox; exit 1 if it refused."""
    port = os.environ.get("SANDBOX_PORT", "12111")
    parser = argparse.ArgumentParser(
        prog="python -m sandbox trigger",
        description=__doc__,
        epilog="actions:\n"
        + "\n".join(f"  {name:15} {what}" for name, (what, _) in ACTIONS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=list(ACTIONS), metavar="ACTION", help="see below")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--session", help="the checkout session (cs_…)")
    which.add_argument("--project", help="the project: its newest session")
    parser.add_argument(
        "--sandbox-url",
        default=os.environ.get("SANDBOX_URL", f"http://127.0.0.1:{port}"),
        help="the running sandbox (default: $SANDBOX_URL, else http://127.0.0.1:$SANDBOX_PORT, "
        "port 12111 as make run starts it)",
    )
    args = parser.parse_args(argv)
    body = {"action": args.action, "session": args.session, "project": args.project}
    request = urllib.request.Request(  # noqa: S310 - a URL the developer chose
        args.sandbox_url.rstrip("/") + "/sandbox/trigger",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        print(f"sandbox trigger: {_error_text(error)}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"sandbox trigger: no sandbox at {args.sandbox_url} ({error})", file=sys.stderr)
        return 1
    for event in answer["events"]:
        print(f"{answer['session']}: {event['type']} {event['id']}")
    return 0


def _error_text(error: urllib.error.HTTPError) -> str:
    try:
        message = json.loads(error.read()).get("error")
    except (ValueError, AttributeError):
        message = None
    if isinstance(message, str):
        return message
    return f"the sandbox answered {error.code} (is it an older one, without triggers?)"
