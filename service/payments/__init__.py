"""The domain: start a checkout, apply a Stripe event, report a project's payment status.

Each use case runs its database work in short transactions on a connection taken from the
pool (`common.transaction`), takes what it needs as arguments, and never holds a connection
or a lock while it waits for Stripe. One module per use case; this package re-exports them.
"""

from service.payments.checkout import CheckoutResult, checkout_params, start_checkout
from service.payments.common import StatusChange, validate_project_id
from service.payments.events import (
    EventResult,
    FactResult,
    apply_event,
    event_summary,
    receive_webhook,
    store_fact,
)
from service.payments.health import check_database
from service.payments.status import ProjectPayment, payment_status

__all__ = [
    "CheckoutResult",
    "EventResult",
    "FactResult",
    "ProjectPayment",
    "StatusChange",
    "apply_event",
    "check_database",
    "checkout_params",
    "event_summary",
    "payment_status",
    "receive_webhook",
    "start_checkout",
    "store_fact",
    "validate_project_id",
]
