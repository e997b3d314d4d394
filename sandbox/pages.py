"""The stand-in's pages for people: Stripe's hosted checkout page (at each session's `url`),
a dashboard to play the bank and the card network by hand, and a demo page standing in for
the frontend. Plain server-rendered HTML; nothing is loaded from the network.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import tornado.web

from sandbox import triggers
from sandbox.refunds import RefundOrigin, RefundRecord
from sandbox.state import BANK_DELAYS, SandboxState

TEMPLATES = Path(__file__).parent / "templates"
SESSION_ID_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"
# Currencies Stripe counts in whole units (no cents).
_ZERO_DECIMAL = {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx"}
_ZERO_DECIMAL |= {"vnd", "vuv", "xaf", "xof", "xpf"}

log = logging.getLogger("sandbox.pages")


def format_amount(amount: int | None, currency: str | None) -> str:
    """250000, "usd" -> "2,500.00 USD"."""
    if amount is None:
        return "no payment"
    code = (currency or "").lower()
    if code in _ZERO_DECIMAL:
        return f"{amount:,} {code.upper()}"
    return f"{amount / 100:,.2f} {code.upper()}"


def format_time(unix: float) -> str:
    """1796170811 -> "2026-12-01 23:40:11 UTC": always the date and the zone, never a bare
    clock (a checkout expiring "at 00:10" could be today or tomorrow, here or in London)."""
    return datetime.fromtimestamp(unix).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def success_redirect(session: dict[str, Any]) -> str | None:
    """Where Stripe sends the customer after paying: success_url with the id filled in."""
    url = session.get("success_url")
    if not url:
        return None
    return str(url).replace(SESSION_ID_PLACEHOLDER, str(session["id"]))


def bank_choices() -> list[tuple[str, str]]:
    choices = [(f"succeed-{s}", f"succeeds after {s} s") for s in BANK_DELAYS]
    return [*choices, (f"fail-{BANK_DELAYS[0]}", f"fails after {BANK_DELAYS[0]} s")]


def _parse_bank_choice(value: str) -> tuple[bool, int]:
    outcome, _, seconds = value.partition("-")
    if outcome not in ("succeed", "fail") or not seconds.isdigit():
        raise tornado.web.HTTPError(400, "bad bank debit choice")
    delay = int(seconds)
    if delay not in BANK_DELAYS:
        raise tornado.web.HTTPError(400, "bad bank debit delay")
    return outcome == "succeed", delay


class PageHandler(tornado.web.RequestHandler):
    state: SandboxState
    service_url: str | None

    def initialize(self, state: SandboxState, service_url: str | None) -> None:
        self.state = state
        self.service_url = service_url
        connect = "'self'" + (f" {service_url}" if service_url else "")
        # Nothing but this server (and the service, for the demo's fetch) is ever contacted.
        self.set_header(
            "Content-Security-Policy",
            "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
            f"img-src 'self' data:; connect-src {connect}",
        )
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        namespace |= {
            "format_amount": format_amount,
            "format_time": format_time,
            "service_url": self.service_url,
        }
        return namespace

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs["exc_info"][1] if "exc_info" in kwargs else None
        message = getattr(error, "log_message", None) or self._reason
        self.render("message.html", title=f"{status_code}: {self._reason}", message=message)


class CheckoutPageHandler(PageHandler):
    """Stripe's hosted checkout page for one session."""

    def get(self, session_id: str) -> None:
        session = self._session(session_id)
        if session["status"] != "open":
            self._closed(session)
            return
        self.render(
            "checkout.html",
            session=session,
            bank_choices=bank_choices(),
            project=session.get("client_reference_id") or "(none)",
        )

    def post(self, session_id: str) -> None:
        session = self._session(session_id)
        action = self.get_body_argument("action", "")
        if action not in ("card", "bank", "cancel"):
            raise tornado.web.HTTPError(400, "unknown action")
        if session["status"] != "open":
            self.set_status(409)
            self._closed(session)
            return
        if action == "cancel":
            self._go(session.get("cancel_url"), "Payment cancelled", "You cancelled the payment.")
            return
        if session.get("amount_total") is None:
            raise tornado.web.HTTPError(400, "this session takes no payment")
        if action == "card":
            self.state.complete_session(session_id, payment_status="paid")
            said = "Payment received", "Thank you: you paid."
        else:
            succeed, delay = _parse_bank_choice(self.get_body_argument("bank_outcome", ""))
            self.state.complete_session(session_id, payment_status="unpaid")
            self.state.settle_bank_debit_later(session_id, succeed=succeed, delay=delay)
            said = "Bank debit started", "The bank debit has started; it settles later."
        self._go(success_redirect(session), *said)

    def _session(self, session_id: str) -> dict[str, Any]:
        # Past its expires_at, a session is expired (and its event sent), timer or not.
        self.state.expire_due()
        session = self.state.sessions.get(session_id)
        if session is None:
            raise tornado.web.HTTPError(404, "This checkout session does not exist.")
        return session

    def _closed(self, session: dict[str, Any]) -> None:
        self.render(
            "closed.html",
            session=session,
            project=session.get("client_reference_id") or "(none)",
            success_url=success_redirect(session),
        )

    def _go(self, url: Any, title: str, message: str) -> None:
        if url:
            self.redirect(str(url), status=303)
        else:
            self.render("message.html", title=title, message=message)


# --- the dashboard ----------------------------------------------------------------------


def session_actions(state: SandboxState, session: dict[str, Any]) -> list[tuple[str, str]]:
    """(action, label) of what the dashboard can do to a session now."""
    if session["status"] == "open":
        return [("expire", "Expire")]
    payment = state.payments.get(session["id"])
    if session["status"] != "complete" or payment is None:
        return []
    if session["payment_status"] == "unpaid":
        if payment.failed:
            return []
        return [("bank-succeeded", "Bank: succeed"), ("bank-failed", "Bank: fail")]
    actions: list[tuple[str, str]] = []
    charged_back = payment.dispute is not None and payment.dispute["status"] != "won"
    if payment.amount_refunded < payment.amount and not charged_back:
        actions.append(("refund", "Refund (full)"))
    if payment.dispute is None:
        actions.append(("dispute", "Open dispute"))
    elif payment.dispute["status"] not in ("won", "lost"):
        actions += [("dispute-won", "Close dispute: won"), ("dispute-lost", "Close dispute: lost")]
    return actions


def session_notes(state: SandboxState, session: dict[str, Any]) -> str:
    payment = state.payments.get(session["id"])
    if payment is None:
        return ""
    notes = []
    if payment.failed:
        notes.append("bank debit failed")
    if payment.amount_refunded:
        notes.append(f"refunded {format_amount(payment.amount_refunded, payment.currency)}")
    if payment.dispute is not None:
        notes.append(f"dispute {payment.dispute['status']}")
    return ", ".join(notes)


def event_subject(event: dict[str, Any]) -> str:
    obj = event["data"]["object"]
    project = obj.get("client_reference_id") or (obj.get("metadata") or {}).get("project_id")
    object_id = str(obj.get("id"))
    short = object_id if len(object_id) <= 28 else object_id[:27] + "…"
    return short + (f" ({project})" if project else "")


def refund_asked_by(record: RefundRecord) -> str:
    """Who asked for a refund, as the dashboard says it."""
    if record.origin is RefundOrigin.API:
        key = record.request.idempotency_key
        return f"API request {record.request.id}" + (f" (Idempotency-Key {key})" if key else "")
    return "dashboard (a person)"


def refund_project(record: RefundRecord) -> str:
    """The project the refund names in its metadata[project_id], as the service sends it."""
    return str(record.refund.get("metadata", {}).get("project_id") or "(none)")


class DashboardHandler(PageHandler):
    def get(self) -> None:
        self.state.expire_due()
        sessions = sorted(self.state.sessions.values(), key=lambda s: -int(s["created"]))
        deliverer = self.state.deliverer
        self.render(
            "dashboard.html",
            state=self.state,
            sessions=sessions,
            events=list(reversed(self.state.events)),
            refunds=list(reversed(self.state.refund_log)),
            refund_asked_by=refund_asked_by,
            refund_project=refund_project,
            deliveries=deliverer.deliveries if deliverer else {},
            webhook_url=deliverer.target.url if deliverer else None,
            session_actions=session_actions,
            session_notes=session_notes,
            event_subject=event_subject,
            done=self.get_query_argument("done", ""),
            error=self.get_query_argument("error", ""),
        )


class DashboardEventsHandler(PageHandler):
    """Every event, newest first, as `GET /v1/events` lists them, for the dashboard's link: a
    browser cannot send the API key that /v1 asks for."""

    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        events = list(reversed(self.state.events))
        self.finish(json.dumps({"object": "list", "data": events, "has_more": False}, indent=2))


class DashboardAction(PageHandler):
    def _back(self, **message: str) -> None:
        self.redirect("/dashboard?" + urlencode(message), status=303)


class DashboardSessionActionHandler(DashboardAction):
    def post(self, session_id: str, action: str) -> None:
        if action not in triggers.ACTIONS:
            raise tornado.web.HTTPError(404, "no such action")
        try:
            events = triggers.run(self.state, action, session_id)
        except (KeyError, ValueError) as error:
            self._back(error=str(error).strip("'\""))
            return
        self._back(done=", ".join(f"{e['type']} {e['id']} created" for e in events))


class DashboardResendHandler(DashboardAction):
    def post(self, event_id: str) -> None:
        try:
            event = self.state.resend(event_id)
        except (KeyError, ValueError) as error:
            self._back(error=str(error).strip("'\""))
            return
        self._back(done=f"{event['type']} {event['id']} sent again")


# --- the demo frontend ------------------------------------------------------------------


class RootHandler(PageHandler):
    def get(self) -> None:
        self.redirect("/demo")


class DemoHandler(PageHandler):
    def get(self) -> None:
        self.render("demo.html")


class DemoSuccessHandler(PageHandler):
    def get(self) -> None:
        session_id = self.get_query_argument("session_id", "")
        session = self.state.sessions.get(session_id)
        project = session.get("client_reference_id") if session else None
        self.render("demo_success.html", session_id=session_id, project=project)


class DemoCancelledHandler(PageHandler):
    def get(self) -> None:
        self.render("demo_cancelled.html")


def page_routes(state: SandboxState, service_url: str | None) -> list[Any]:
    args = {"state": state, "service_url": service_url.rstrip("/") if service_url else None}
    return [
        (r"/", RootHandler, args),
        (r"/c/pay/([^/]+)", CheckoutPageHandler, args),
        (r"/dashboard", DashboardHandler, args),
        (r"/dashboard/events\.json", DashboardEventsHandler, args),
        (r"/dashboard/sessions/([^/]+)/([a-z-]+)", DashboardSessionActionHandler, args),
        (r"/dashboard/events/([^/]+)/resend", DashboardResendHandler, args),
        (r"/demo", DemoHandler, args),
        (r"/demo/success", DemoSuccessHandler, args),
        (r"/demo/cancelled", DemoCancelledHandler, args),
    ]
