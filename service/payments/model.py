"""The named values of the payment model: statuses, Stripe objects' states, outcomes, causes.

Each is a StrEnum whose values are exactly what the database stores (CHECK constraints in
migrations/), so a value compares equal to the string read back from a row.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class PaymentStatus(StrEnum):
    """A project's (or one session's) payment status, SPEC "GET /api/projects/{id}/payment"."""

    PENDING = "pending"
    PROCESSING = "processing"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"
    REFUNDED = "refunded"
    DISPUTED = "disputed"


# A checkout may not start while money is in, on its way, or contested.
NOT_PAYABLE = frozenset({PaymentStatus.PAID, PaymentStatus.PROCESSING, PaymentStatus.DISPUTED})
# A session holding the buyer's money: every such session but the kept one is a duplicate.
HOLDS_MONEY = frozenset({PaymentStatus.PAID, PaymentStatus.DISPUTED})


class ObjectKind(StrEnum):
    """The Stripe object a fact is about."""

    SESSION = "session"  # a Checkout Session, cs_…
    PAYMENT = "payment"  # a payment intent's charge (its refunds), keyed by pi_…
    DISPUTE = "dispute"  # one dispute, dp_…, on a payment intent


class SessionState(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"  # completed, a delayed payment method still settling
    PAID = "paid"
    PAYMENT_FAILED = "payment_failed"
    EXPIRED = "expired"


class DisputeState(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class RefundState(StrEnum):
    REFUNDED = "refunded"  # some or all of the charge; the amounts say how much


class Stage(IntEnum):
    """Breaks a tie between two facts of one object that Stripe created in the same second:
    the later stage of the object's life is its latest state."""

    NONE = 0
    FIRST = 1  # awaiting payment; a dispute opened
    FINAL = 2  # paid, failed, expired; a dispute closed


class Outcome(StrEnum):
    """What receiving one event did (stripe_events.outcome, and the metrics' label)."""

    APPLIED = "applied"  # the project's status changed
    UNCHANGED = "unchanged"  # the fact was stored; the status stays what it was
    DUPLICATE = "duplicate"  # this event id was already received (never stored as such)
    IGNORED = "ignored"  # a type (or a variant of one) that tells no payment fact
    UNATTRIBUTED = "unattributed"  # kept: its session or payment belongs to no known project
    LIVEMODE_MISMATCH = "livemode_mismatch"  # a live event for a test key, or the reverse
    CONNECT_ACCOUNT = "connect_account"  # an event of a connected account, not ours


class AuditCause(StrEnum):
    """Why a project's status changed (payment_audit.cause)."""

    STRIPE_EVENT = "stripe_event"  # a webhook, or reconcile applying a missed one
    API_CHECKOUT = "api_checkout"  # POST /api/checkout made or reused a session
    API_CONFIRMATION = "api_confirmation"  # the status endpoint read the session from Stripe
    # A duplicate payment's refund became owed (written by the database's
    # settle_project_status(), migrations/0003.facts.sql; never by Python).
    DUPLICATE_PAYMENT = "duplicate_payment"
