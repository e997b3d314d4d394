"""What one Stripe event (or one read of a session from Stripe) tells: a fact about one object.

SPEC "POST /webhooks/stripe", the table of events and the state each tells. A fact names the
object (session, payment intent, dispute), its state at Stripe's created time, and the payment
intent through which refunds and disputes reach a session. Nothing else of the payload is
kept: it carries customer PII.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.payments.model import (
    DisputeState,
    ObjectKind,
    Outcome,
    RefundState,
    SessionState,
    Stage,
)
from service.webhook_events import StripeEvent

SESSION_EVENT_PREFIX = "checkout.session."

# The event types that can tell a fact; Stripe's Events API is asked for these (reconcile).
FACT_TYPES = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
        "charge.refunded",
        "charge.dispute.created",
        "charge.dispute.closed",
    }
)

_PAID_PAYMENT_STATUSES = frozenset({"paid", "no_payment_required"})
# Dispute statuses at close: inquiries (warning_*) close as warning_closed, and a prevented
# dispute never took the money.
_DISPUTE_CLOSED = {
    "won": DisputeState.WON,
    "warning_closed": DisputeState.WON,
    "prevented": DisputeState.WON,
    "lost": DisputeState.LOST,
}
_STAGE = {
    SessionState.AWAITING_PAYMENT: Stage.FIRST,
    SessionState.PAID: Stage.FINAL,
    SessionState.PAYMENT_FAILED: Stage.FINAL,
    SessionState.EXPIRED: Stage.FINAL,
    DisputeState.OPEN: Stage.FIRST,
    DisputeState.WON: Stage.FINAL,
    DisputeState.LOST: Stage.FINAL,
    RefundState.REFUNDED: Stage.NONE,
}
_BIGINT_MAX = 2**63 - 1


@dataclass(frozen=True)
class Fact:
    kind: ObjectKind
    object_id: str
    state: SessionState | DisputeState | RefundState
    created: datetime
    payment_intent_id: str | None = None
    amount: int | None = None  # payment facts: the charge's amount
    amount_refunded: int | None = None  # payment facts: cumulative

    @property
    def stage(self) -> Stage:
        return _STAGE[self.state]


@dataclass(frozen=True)
class NoFact:
    """Why an event contributes no fact (it is still recorded, once)."""

    outcome: Outcome
    reason: str


def fact_of_event(event: StripeEvent, *, livemode: bool) -> Fact | NoFact:
    """The fact an event tells, or why it tells none the service may count."""
    if event.event_type not in FACT_TYPES:
        return NoFact(outcome=Outcome.IGNORED, reason="an event type the service does not act on")
    if event.account is not None:
        return NoFact(outcome=Outcome.CONNECT_ACCOUNT, reason="an event of a connected account")
    if event.livemode != livemode:
        return NoFact(
            outcome=Outcome.LIVEMODE_MISMATCH, reason="an event of the other mode than the key's"
        )
    obj = event.obj
    if event.event_type.startswith(SESSION_EVENT_PREFIX):
        return _fact_or_ignored(
            event,
            ObjectKind.SESSION,
            _id(obj.get("id")),
            _session_state_of_event(event.event_type, obj),
            payment_intent_id=_id(obj.get("payment_intent")),
        )
    payment_intent = _id(obj.get("payment_intent"))
    if payment_intent is None:
        return NoFact(
            outcome=Outcome.IGNORED, reason="a charge or dispute without a payment intent"
        )
    if event.event_type == "charge.refunded":
        amount, refunded = _amount(obj.get("amount")), _amount(obj.get("amount_refunded"))
        if amount is None or refunded is None:
            return NoFact(outcome=Outcome.IGNORED, reason="a refund without its amounts")
        return Fact(
            kind=ObjectKind.PAYMENT,
            object_id=payment_intent,
            state=RefundState.REFUNDED,
            created=event.created,
            payment_intent_id=payment_intent,
            amount=amount,
            amount_refunded=refunded,
        )
    if event.event_type == "charge.dispute.created":
        dispute_state: DisputeState | None = DisputeState.OPEN
    else:
        dispute_state = _DISPUTE_CLOSED.get(str(obj.get("status")))
    return _fact_or_ignored(
        event,
        ObjectKind.DISPUTE,
        _id(obj.get("id")),
        dispute_state,
        payment_intent_id=payment_intent,
    )


def _fact_or_ignored(
    event: StripeEvent,
    kind: ObjectKind,
    object_id: str | None,
    state: SessionState | DisputeState | None,
    *,
    payment_intent_id: str | None,
) -> Fact | NoFact:
    """A session's or a dispute's fact, dated at the event; ignored without an id or a state."""
    if object_id is None or state is None:
        return NoFact(
            outcome=Outcome.IGNORED, reason=f"a {kind} event without a state the service counts"
        )
    return Fact(
        kind=kind,
        object_id=object_id,
        state=state,
        created=event.created,
        payment_intent_id=payment_intent_id,
    )


def fact_of_session(session: Mapping[str, Any], *, livemode: bool) -> Fact | None:
    """What a Checkout Session read from Stripe says, or None when it says nothing yet.

    A read does not tell when its state began, so it is dated at the session's own creation:
    every event about the session, which Stripe creates later, takes precedence over it (a
    session read as completed-unpaid may by then have failed; the failure's event wins).
    """
    if (session.get("livemode") is True) != livemode:
        return None
    session_id = _id(session.get("id"))
    status = session.get("status")
    state: SessionState | None = None
    if status == "complete":
        paid = _text(session.get("payment_status")) in _PAID_PAYMENT_STATUSES
        state = SessionState.PAID if paid else SessionState.AWAITING_PAYMENT
    elif status == "expired":
        state = SessionState.EXPIRED
    if session_id is None or state is None:
        return None
    created = session.get("created")
    when = (
        datetime.fromtimestamp(created, UTC)
        if isinstance(created, int) and not isinstance(created, bool) and 0 <= created < 2**32
        else datetime.fromtimestamp(0, UTC)
    )
    return Fact(
        kind=ObjectKind.SESSION,
        object_id=session_id,
        state=state,
        created=when,
        payment_intent_id=_id(session.get("payment_intent")),
    )


def _session_state_of_event(event_type: str, obj: Mapping[str, Any]) -> SessionState | None:
    if event_type == "checkout.session.completed":
        payment_status = _text(obj.get("payment_status"))
        if payment_status in _PAID_PAYMENT_STATUSES:
            return SessionState.PAID
        if payment_status == "unpaid":
            return SessionState.AWAITING_PAYMENT
        return None
    return {
        "checkout.session.async_payment_succeeded": SessionState.PAID,
        "checkout.session.async_payment_failed": SessionState.PAYMENT_FAILED,
        "checkout.session.expired": SessionState.EXPIRED,
    }.get(event_type)


def _text(value: object) -> str | None:
    """A field that must be a string, or None (a signed payload may hold anything)."""
    return value if isinstance(value, str) else None


def _id(value: object) -> str | None:
    """An expandable field is an id, or the expanded object carrying it."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and 0 < len(value) <= 255 else None


def _amount(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _BIGINT_MAX:
        return value
    return None
