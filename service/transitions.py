"""The event -> status table of SPEC.md, as data, and the one function that reads it.

A status only ever moves along an edge listed here, so late, reordered or replayed events
cannot undo a payment. `None` stands for a project the service has no row for yet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

PENDING = "pending"
PROCESSING = "processing"
PAID = "paid"
FAILED = "failed"
EXPIRED = "expired"
REFUNDED = "refunded"
DISPUTED = "disputed"

STATUSES = frozenset({PENDING, PROCESSING, PAID, FAILED, EXPIRED, REFUNDED, DISPUTED})

# A checkout may not start while money is in, on its way, or contested.
NOT_PAYABLE = frozenset({PAID, PROCESSING, DISPUTED})

StripeObject = Mapping[str, Any]
Condition = Callable[[StripeObject, str | None], bool]


def _always(_obj: StripeObject, _current_session: str | None) -> bool:
    return True


def _payment_status_in(*allowed: str) -> Condition:
    def condition(obj: StripeObject, _current_session: str | None) -> bool:
        return obj.get("payment_status") in allowed

    return condition


def _is_current_session(obj: StripeObject, current_session: str | None) -> bool:
    return current_session is not None and obj.get("id") == current_session


def _fully_refunded(obj: StripeObject, _current_session: str | None) -> bool:
    amount, refunded = obj.get("amount"), obj.get("amount_refunded")
    return isinstance(amount, int) and isinstance(refunded, int) and amount == refunded > 0


def _dispute_status(status: str) -> Condition:
    def condition(obj: StripeObject, _current_session: str | None) -> bool:
        return obj.get("status") == status

    return condition


@dataclass(frozen=True)
class Edge:
    event_type: str
    condition: Condition
    sources: frozenset[str | None]
    target: str


TABLE: tuple[Edge, ...] = (
    Edge(
        "checkout.session.completed",
        _payment_status_in("paid", "no_payment_required"),
        frozenset({None, PENDING, EXPIRED, FAILED, PROCESSING}),
        PAID,
    ),
    Edge(
        "checkout.session.completed",
        _payment_status_in("unpaid"),
        frozenset({None, PENDING, EXPIRED, FAILED}),
        PROCESSING,
    ),
    Edge(
        "checkout.session.async_payment_succeeded",
        _always,
        frozenset({None, PENDING, EXPIRED, FAILED, PROCESSING}),
        PAID,
    ),
    Edge(
        "checkout.session.async_payment_failed", _always, frozenset({PENDING, PROCESSING}), FAILED
    ),
    Edge("checkout.session.expired", _is_current_session, frozenset({PENDING}), EXPIRED),
    Edge("charge.refunded", _fully_refunded, frozenset({PAID, DISPUTED}), REFUNDED),
    Edge("charge.dispute.created", _always, frozenset({PAID}), DISPUTED),
    Edge("charge.dispute.closed", _dispute_status("won"), frozenset({DISPUTED}), PAID),
    Edge("charge.dispute.closed", _dispute_status("lost"), frozenset({DISPUTED}), REFUNDED),
)

HANDLED_TYPES = frozenset(edge.event_type for edge in TABLE)
CHECKOUT_SESSION_TYPES = frozenset(t for t in HANDLED_TYPES if t.startswith("checkout.session."))


def next_status(
    event_type: str, obj: StripeObject, current: str | None, current_session: str | None
) -> str | None:
    """The status this event moves the project to, or None when it must not move."""
    for edge in TABLE:
        if (
            edge.event_type == event_type
            and current in edge.sources
            and edge.condition(obj, current_session)
        ):
            return edge.target
    return None


@dataclass(frozen=True)
class Moves:
    """One event's edges for a project that has a row, as parallel lists for SQL: from
    statuses[i], where the event moves the project when the event's checkout session is the
    project's current one, and when it is not (None: it does not move)."""

    statuses: list[str]
    to_if_current_session: list[str | None]
    to_otherwise: list[str | None]
    event_session_id: str | None


def moves_for(event_type: str, obj: StripeObject) -> Moves:
    """The table read for every status at once, so the database can decide under its own
    row lock (queries/transitions.sql apply-event) with the same answer next_status gives."""
    session = obj.get("id") if event_type in CHECKOUT_SESSION_TYPES else None
    session = session if isinstance(session, str) and session else None
    statuses = sorted(STATUSES)
    return Moves(
        statuses,
        [next_status(event_type, obj, status, session) for status in statuses],
        [next_status(event_type, obj, status, None) for status in statuses],
        session,
    )
