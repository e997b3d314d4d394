"""The stand-in's memory: checkout sessions, the payments behind them, and their events.

Objects are built from Stripe's own example payloads (sandbox/data/events), so they carry
Stripe's full field set, customer details included: the service must cope with real shapes
and must prove it never stores or logs the PII they carry.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.faults import FaultPlan
from sandbox.ids import new_id

DATA = Path(__file__).parent / "data"
API_VERSION = "2026-10-28.endive"


def _template(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((DATA / "events" / f"{name}.json").read_text())
    obj: dict[str, Any] = event["data"]["object"]
    return obj


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, str]
    idempotency_key: str | None


@dataclass
class _Payment:
    """What Stripe keeps behind a completed session: intent, charge, maybe a dispute."""

    payment_intent: str
    charge: str
    dispute: str | None = None
    amount_refunded: int = 0


@dataclass
class SandboxState:
    api_key: str
    price_id: str = "price_sandbox"
    unit_amount: int = 250000
    currency: str = "usd"
    public_base_url: str = "http://127.0.0.1:12111"
    faults: FaultPlan = field(default_factory=FaultPlan)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    create_calls: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)
    payments: dict[str, _Payment] = field(default_factory=dict)
    # Idempotency-Key -> (fingerprint of the params, status, body) of the first answer.
    idempotent_results: dict[str, tuple[str, int, bytes]] = field(default_factory=dict)
    keys_in_flight: set[str] = field(default_factory=set)

    # --- checkout sessions --------------------------------------------------------------

    def create_session(self, params: dict[str, str]) -> dict[str, Any]:
        """A new open session from already validated form params."""
        self.create_calls += 1
        quantity = int(params.get("line_items[0][quantity]", "1"))
        session = copy.deepcopy(_template("checkout.session.completed.paid"))
        session_id = new_id("cs_test_a1", 56)
        now = int(time.time())
        session.update(
            {
                "id": session_id,
                "object": "checkout.session",
                "mode": params["mode"],
                "status": "open",
                "payment_status": "unpaid",
                "client_reference_id": params.get("client_reference_id"),
                "metadata": _sub_dict(params, "metadata"),
                "success_url": params.get("success_url"),
                "cancel_url": params.get("cancel_url"),
                "expires_at": int(params.get("expires_at", now + 86400)),
                "created": now,
                "amount_subtotal": self.unit_amount * quantity,
                "amount_total": self.unit_amount * quantity,
                "currency": self.currency,
                "livemode": False,
                "url": f"{self.public_base_url}/c/pay/{session_id}",
                "payment_intent": None,
                "customer_details": None,
                "customer_email": None,
            }
        )
        session["_payment_intent_metadata"] = _sub_dict(params, "payment_intent_data[metadata]")
        self.sessions[session_id] = session
        return session

    def public(self, session: dict[str, Any]) -> dict[str, Any]:
        """The session as the API shows it (without the stand-in's own bookkeeping)."""
        return {k: v for k, v in session.items() if not k.startswith("_")}

    # --- lifecycle: each returns the one event it created -------------------------------

    def complete_session(self, session_id: str, *, payment_status: str = "paid") -> dict[str, Any]:
        """The buyer paid (card: `paid`) or started a delayed bank debit (`unpaid`)."""
        session = self._open_session(session_id)
        name = "checkout.session.completed." + ("paid" if payment_status == "paid" else "unpaid")
        details = _template(name)["customer_details"]
        payment = _Payment(new_id("pi_3"), new_id("ch_3"))
        self.payments[session_id] = payment
        session.update(
            {
                "status": "complete",
                "payment_status": payment_status,
                "payment_intent": payment.payment_intent,
                "customer_details": copy.deepcopy(details),
                "url": None,
            }
        )
        return self._emit("checkout.session.completed", self.public(session))

    def async_payment_succeeded(self, session_id: str) -> dict[str, Any]:
        session = self._session(session_id)
        session["payment_status"] = "paid"
        return self._emit("checkout.session.async_payment_succeeded", self.public(session))

    def async_payment_failed(self, session_id: str) -> dict[str, Any]:
        session = self._session(session_id)
        session["payment_status"] = "unpaid"
        return self._emit("checkout.session.async_payment_failed", self.public(session))

    def expire_session(self, session_id: str) -> dict[str, Any]:
        session = self._open_session(session_id)
        session.update({"status": "expired", "url": None, "payment_intent": None})
        return self._emit("checkout.session.expired", self.public(session))

    def refund(self, session_id: str, *, amount: int | None = None) -> dict[str, Any]:
        """Refund the session's charge, fully unless `amount` is given."""
        session, payment = self._session(session_id), self._payment(session_id)
        total = int(session["amount_total"])
        payment.amount_refunded = min(total, payment.amount_refunded + (amount or total))
        charge = self._charge(session, payment)
        return self._emit("charge.refunded", charge)

    def open_dispute(self, session_id: str) -> dict[str, Any]:
        session, payment = self._session(session_id), self._payment(session_id)
        payment.dispute = new_id("dp_1")
        return self._emit(
            "charge.dispute.created", self._dispute(session, payment, "needs_response")
        )

    def close_dispute(self, session_id: str, *, won: bool) -> dict[str, Any]:
        session, payment = self._session(session_id), self._payment(session_id)
        if payment.dispute is None:
            raise KeyError(f"no dispute on {session_id}")
        status = "won" if won else "lost"
        return self._emit("charge.dispute.closed", self._dispute(session, payment, status))

    def add_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Store a hand-built event so that GET /v1/events lists it."""
        self.events.append(event)
        return event

    # --- helpers ------------------------------------------------------------------------

    def _session(self, session_id: str) -> dict[str, Any]:
        try:
            return self.sessions[session_id]
        except KeyError:
            raise KeyError(f"no such checkout.session: {session_id}") from None

    def _open_session(self, session_id: str) -> dict[str, Any]:
        session = self._session(session_id)
        if session["status"] != "open":
            raise ValueError(f"checkout.session {session_id} is {session['status']}, not open")
        return session

    def _payment(self, session_id: str) -> _Payment:
        try:
            return self.payments[session_id]
        except KeyError:
            raise ValueError(f"checkout.session {session_id} was never paid") from None

    def _charge(self, session: dict[str, Any], payment: _Payment) -> dict[str, Any]:
        charge = copy.deepcopy(_template("charge.refunded.full"))
        charge.update(
            {
                "id": payment.charge,
                "amount": session["amount_total"],
                "amount_captured": session["amount_total"],
                "amount_refunded": payment.amount_refunded,
                "refunded": payment.amount_refunded == session["amount_total"],
                "currency": session["currency"],
                "payment_intent": payment.payment_intent,
                "metadata": dict(session["_payment_intent_metadata"]),
                "created": session["created"],
            }
        )
        return charge

    def _dispute(self, session: dict[str, Any], payment: _Payment, status: str) -> dict[str, Any]:
        dispute = copy.deepcopy(_template("charge.dispute.created"))
        dispute.update(
            {
                "id": payment.dispute,
                "amount": session["amount_total"],
                "currency": session["currency"],
                "charge": payment.charge,
                "payment_intent": payment.payment_intent,
                "status": status,
                "metadata": {},
            }
        )
        return dispute

    def _emit(self, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
        event = {
            "id": new_id("evt_1"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": {"object": copy.deepcopy(obj)},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": new_id("req_", 14), "idempotency_key": None},
            "type": event_type,
        }
        self.events.append(event)
        return event


def _sub_dict(params: dict[str, str], prefix: str) -> dict[str, str]:
    """`metadata[a]=1` style params under `prefix` as a dict."""
    start = prefix + "["
    return {
        name[len(start) : -1]: value
        for name, value in params.items()
        if name.startswith(start) and name.endswith("]") and "[" not in name[len(start) : -1]
    }
