"""Stripe objects built from Stripe's example payloads (sandbox/data/events).

Each object starts as a copy of its example, so it carries Stripe's full field set and the
examples' fake customer details (Jenny Rosen for card, Grace Hopper for the bank debit):
the service has to cope with the real shapes and can be shown never to store that PII.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from typing import Any

from sandbox.checkout_request import CheckoutRequest
from sandbox.examples import example_event
from sandbox.ids import new_id

API_VERSION = "2026-10-28.endive"
DEFAULT_LIFETIME = 24 * 60 * 60
_DISPUTE_RESPONSE_WINDOW = 7 * 24 * 60 * 60


def example_object(name: str) -> dict[str, Any]:
    """A fresh copy of the `data.object` of the example event `name`."""
    obj: dict[str, Any] = example_event(name)["data"]["object"]
    return obj


@dataclass
class Payment:
    """What Stripe keeps behind a completed session: its intent, charge and dispute."""

    payment_intent: str
    charge: str
    amount: int
    currency: str
    metadata: dict[str, str]
    # The example whose customer paid: card ("completed.paid") or bank debit ("...unpaid").
    customer_example: str
    created: int
    refunds: list[dict[str, Any]] = field(default_factory=list)
    dispute: dict[str, Any] | None = None
    failed: bool = False

    @property
    def amount_refunded(self) -> int:
        return sum(int(refund["amount"]) for refund in self.refunds)


def new_session(
    request: CheckoutRequest, *, unit_amount: int, currency: str, base_url: str, now: int
) -> dict[str, Any]:
    # The expired example is the one with nothing filled in by a customer yet.
    session = example_object("checkout.session.expired")
    session_id = new_id("cs_test_a1", 56)
    amount = unit_amount * request.quantity if request.line_items else None
    session.update(
        {
            "id": session_id,
            "object": "checkout.session",
            "mode": request.mode,
            "status": "open",
            "payment_status": "unpaid" if request.line_items else "no_payment_required",
            "client_reference_id": request.client_reference_id,
            "customer_email": request.customer_email,
            "metadata": dict(request.metadata),
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "expires_at": request.expires_at or now + DEFAULT_LIFETIME,
            "created": now,
            "amount_subtotal": amount,
            "amount_total": amount,
            "currency": currency if request.line_items else request.currency,
            "livemode": False,
            "url": f"{base_url}/c/pay/{session_id}",
            "payment_intent": None,
            "customer_details": None,
        }
    )
    if amount is None:
        session["total_details"] = None
    return session


def customer_details(customer_example: str) -> Any:
    return example_object(customer_example)["customer_details"]


def payment_method_types(customer_example: str) -> Any:
    return example_object(customer_example)["payment_method_types"]


def charge(payment: Payment) -> dict[str, Any]:
    obj = example_object("charge.refunded.full")
    refunded = payment.amount_refunded
    obj.update(
        {
            "id": payment.charge,
            "amount": payment.amount,
            "amount_captured": payment.amount,
            "amount_refunded": refunded,
            "refunded": refunded == payment.amount,
            "currency": payment.currency,
            "payment_intent": payment.payment_intent,
            "metadata": dict(payment.metadata),
            "created": payment.created,
            "disputed": payment.dispute is not None,
            "balance_transaction": "txn_" + payment.charge.removeprefix("ch_"),
        }
    )
    card = obj["payment_method_details"]["card"]
    card["amount_authorized"] = payment.amount
    card["overcapture"]["maximum_amount_capturable"] = payment.amount
    obj["refunds"] = {
        "object": "list",
        "data": copy.deepcopy(list(reversed(payment.refunds))),
        "has_more": False,
        "url": f"/v1/charges/{payment.charge}/refunds",
    }
    return obj


def refund(
    payment: Payment,
    amount: int,
    now: int,
    *,
    reason: str | None = None,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = copy.deepcopy(
        example_object("charge.refunded.full")["refunds"]["data"][0]
    )
    obj.update(
        {
            "id": new_id("re_3"),
            "amount": amount,
            "balance_transaction": new_id("txn_3"),
            "charge": payment.charge,
            "created": now,
            "currency": payment.currency,
            "payment_intent": payment.payment_intent,
            "reason": reason,
            "metadata": dict(metadata or {}),
        }
    )
    return obj


def dispute(payment: Payment, now: int) -> dict[str, Any]:
    obj = example_object("charge.dispute.created")
    obj.update(
        {
            "id": new_id("dp_1"),
            "amount": payment.amount,
            "currency": payment.currency,
            "charge": payment.charge,
            "payment_intent": payment.payment_intent,
            "created": now,
            "metadata": {},
        }
    )
    obj["evidence_details"]["due_by"] = now + _DISPUTE_RESPONSE_WINDOW
    return obj


def closed_dispute(opened: dict[str, Any], *, won: bool) -> dict[str, Any]:
    outcome = "won" if won else "lost"
    obj = example_object(f"charge.dispute.closed.{outcome}")
    keep = ("id", "amount", "currency", "charge", "payment_intent", "created", "metadata")
    obj.update({name: copy.deepcopy(opened[name]) for name in keep})
    obj["evidence_details"]["due_by"] = opened["evidence_details"]["due_by"]
    obj["status"] = outcome
    return obj


@dataclass(frozen=True)
class RequestRef:
    """The API request behind an event (its `request` field): its Request-Id and the
    Idempotency-Key it was sent with, if any."""

    id: str
    idempotency_key: str | None

    @classmethod
    def dashboard(cls) -> RequestRef:
        """What Stripe's Dashboard sends when a person presses a button: a request of its
        own, with a key of its own."""
        return cls(new_id("req_", 14), str(uuid.uuid4()))


def event(
    event_type: str,
    obj: dict[str, Any],
    *,
    created: int,
    api_version: str = API_VERSION,
    request: RequestRef | None = None,
) -> dict[str, Any]:
    """An event envelope. Stripe names the API request behind an event, if there was one
    (none for what happens by itself: a session expiring, a bank debit settling)."""
    return {
        "id": new_id("evt_1"),
        "object": "event",
        "api_version": api_version,
        "created": created,
        "data": {"object": copy.deepcopy(obj)},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {
            "id": request.id if request else None,
            "idempotency_key": request.idempotency_key if request else None,
        },
        "type": event_type,
    }
