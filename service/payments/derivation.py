"""The SPEC's derivation of a payment status from facts, stated in Python.

The database derives the status itself, because every webhook must settle a project in one
round trip: `record_stripe_fact()` keeps each object's latest state in its `stripe_objects`
row as facts arrive, and `derive_project_payment()` reads those rows (migrations/0005). This
module is the same rule list, over the facts themselves, written for people and for tests.
tests/test_derivation.py feeds both the same generated fact sets and requires the same
answer, so the two cannot drift apart.

SPEC "POST /webhooks/stripe": for each Stripe object the latest state counts (the fact Stripe
created last; on a tie, the later stage). A session's status is the first that holds of:
refunded, disputed, paid, failed, processing, expired, pending. A project's status: the kept
payment's session's while any session holds money; else processing while one awaits a delayed
payment; else its current session's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from service.payments.facts import Fact
from service.payments.model import (
    HOLDS_MONEY,
    DisputeState,
    ObjectKind,
    PaymentStatus,
    SessionState,
)


@dataclass(frozen=True)
class StoredFact:
    """A fact as stored: from an event (event_id set) or from a read of Stripe (None)."""

    fact: Fact
    event_id: str | None


@dataclass(frozen=True)
class Derived:
    status: PaymentStatus
    session_id: str | None
    payment_intent_id: str | None


@dataclass(frozen=True)
class _Session:
    session_id: str
    status: PaymentStatus
    payment_intent_id: str | None
    paid_at: datetime | None


def derive_project_payment(
    sessions: Sequence[str], current_session: str | None, facts: Iterable[StoredFact]
) -> Derived:
    """The project's status from the facts about its sessions (`sessions`: the ones the
    service created for it; facts about any other object are simply not reached)."""
    stored = list(facts)
    derived = [_derive_session(session_id, stored) for session_id in sessions]
    holding = [s for s in derived if s.status in HOLDS_MONEY]
    if holding:
        kept = min(holding, key=lambda s: (s.paid_at is None, s.paid_at, s.session_id))
        return Derived(
            status=kept.status,
            session_id=kept.session_id,
            payment_intent_id=kept.payment_intent_id,
        )
    processing = sorted(
        (s for s in derived if s.status is PaymentStatus.PROCESSING), key=lambda s: s.session_id
    )
    if processing:
        return Derived(
            status=PaymentStatus.PROCESSING,
            session_id=processing[0].session_id,
            payment_intent_id=processing[0].payment_intent_id,
        )
    by_id = {s.session_id: s for s in derived}
    chosen = by_id.get(current_session) if current_session else None
    if chosen is None and derived:
        chosen = min(derived, key=lambda s: s.session_id)
    if chosen is None:
        return Derived(status=PaymentStatus.PENDING, session_id=None, payment_intent_id=None)
    return Derived(
        status=chosen.status,
        session_id=chosen.session_id,
        payment_intent_id=chosen.payment_intent_id,
    )


def _latest(facts: Iterable[StoredFact]) -> Fact | None:
    ordered = sorted(
        (s.fact for s in facts), key=lambda f: (f.created, f.stage, str(f.state)), reverse=True
    )
    return ordered[0] if ordered else None


def _derive_session(session_id: str, stored: Sequence[StoredFact]) -> _Session:
    own = [
        s for s in stored if s.fact.kind is ObjectKind.SESSION and s.fact.object_id == session_id
    ]
    latest = _latest(own)
    intents = sorted(s.fact.payment_intent_id for s in own if s.fact.payment_intent_id)
    payment_intent = intents[0] if intents else None
    paid_events = [s.fact.created for s in own if s.fact.state is SessionState.PAID and s.event_id]
    paid_any = [s.fact.created for s in own if s.fact.state is SessionState.PAID]

    on_payment = (
        [
            s
            for s in stored
            if s.fact.kind in (ObjectKind.PAYMENT, ObjectKind.DISPUTE)
            and s.fact.payment_intent_id == payment_intent
        ]
        if payment_intent
        else []
    )
    refunds = sorted(
        (s.fact for s in on_payment if s.fact.kind is ObjectKind.PAYMENT),
        key=lambda f: (f.created, f.amount_refunded or 0, f.amount or 0),
        reverse=True,
    )
    fully_refunded = bool(refunds) and (refunds[0].amount_refunded or 0) >= (refunds[0].amount or 0)
    disputes: dict[str, list[StoredFact]] = {}
    for s in on_payment:
        if s.fact.kind is ObjectKind.DISPUTE:
            disputes.setdefault(s.fact.object_id, []).append(s)
    dispute_states = [latest.state for latest in map(_latest, disputes.values()) if latest]
    proof_at = min((s.fact.created for s in on_payment), default=None)

    state = latest.state if latest else None
    if fully_refunded or DisputeState.LOST in dispute_states:
        status = PaymentStatus.REFUNDED
    elif DisputeState.OPEN in dispute_states:
        status = PaymentStatus.DISPUTED
    elif state is SessionState.PAID or proof_at is not None:
        status = PaymentStatus.PAID
    elif state is SessionState.PAYMENT_FAILED:
        status = PaymentStatus.FAILED
    elif state is SessionState.AWAITING_PAYMENT:
        status = PaymentStatus.PROCESSING
    elif state is SessionState.EXPIRED:
        status = PaymentStatus.EXPIRED
    else:
        status = PaymentStatus.PENDING
    paid_at = min(paid_events, default=None) or proof_at or min(paid_any, default=None)
    return _Session(
        session_id=session_id, status=status, payment_intent_id=payment_intent, paid_at=paid_at
    )
