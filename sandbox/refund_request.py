"""POST /v1/refunds: the form, checked as strictly as Stripe checks it.

The sandbox refunds a PaymentIntent's charge, as the service asks for it; the parameters
Stripe takes for other kinds of refund (by charge, to a customer balance, across Connect
accounts) are refused by name rather than ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sandbox import errors, forms
from sandbox.checkout_request import check_metadata
from sandbox.param_specs import ParamSpecs

SPECS = ParamSpecs.load("refund_create_params.json")
_UNSUPPORTED = (
    "charge",
    "currency",
    "customer",
    "instructions_email",
    "origin",
    "refund_application_fee",
    "reverse_transfer",
)


class RefundReason(StrEnum):
    """The `reason` a refund may be given (Stripe's enum for POST /v1/refunds)."""

    DUPLICATE = "duplicate"
    FRAUDULENT = "fraudulent"
    REQUESTED_BY_CUSTOMER = "requested_by_customer"


@dataclass(frozen=True)
class RefundRequest:
    payment_intent: str
    amount: int | None  # None: all that is left of the charge
    reason: RefundReason | None
    metadata: dict[str, str]


def parse(params: dict[str, str]) -> RefundRequest:
    """The request, or the StripeError Stripe would answer."""
    SPECS.check(params)
    for name in params:
        if name.partition("[")[0] in _UNSUPPORTED:
            raise errors.invalid(
                f"The sandbox refunds by `payment_intent` only; it does not take `{name}`.",
                param=name,
            )
    payment_intent = params.get("payment_intent")
    if not payment_intent:
        raise errors.missing_parameter("payment_intent")
    amount = None
    if "amount" in params:
        amount = errors.parse_int(params["amount"], "amount")
        if amount < 1:
            raise errors.invalid("This value must be greater than or equal to 1.", param="amount")
    metadata = forms.sub_dict(params, "metadata")
    check_metadata(metadata, "metadata")
    reason = params.get("reason")
    return RefundRequest(
        payment_intent=payment_intent,
        amount=amount,
        reason=RefundReason(reason) if reason else None,
        metadata=metadata,
    )
