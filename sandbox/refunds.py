"""Refunds in the stand-in: who asked for one, what the dashboard lists, and when Stripe
refuses one (its own error messages and codes), kept apart from the state they act on."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sandbox import objects
from sandbox.errors import Refusal, invalid
from sandbox.objects import RequestRef


class RefundOrigin(StrEnum):
    """Who asked for a refund: the API (the service) or a person (dashboard, trigger)."""

    API = "api"
    DASHBOARD = "dashboard"


@dataclass(frozen=True)
class RefundRecord:
    """One refund made, as the dashboard lists it: the Refund object and who asked."""

    refund: dict[str, Any]
    session_id: str
    origin: RefundOrigin
    request: RequestRef


def check_refundable(payment: objects.Payment, *, paid: bool) -> None:
    """Raise Refusal as Stripe does for a charge that cannot be refunded at all: never paid,
    or charged back (a dispute not won)."""
    if not paid:
        raise Refusal(
            invalid(
                f"This PaymentIntent ({payment.payment_intent}) does not have a successful "
                "charge to refund.",
                param="payment_intent",
            )
        )
    if payment.dispute is not None and payment.dispute["status"] != "won":
        raise Refusal(
            invalid(
                f"Charge {payment.charge} has been charged back; cannot issue a refund.",
                code="charge_disputed",
            )
        )


def refund_amount(payment: objects.Payment, amount: int | None) -> int:
    """The amount a refund of `amount` (None: all that is left) takes from the charge; raises
    Refusal with Stripe's error when Stripe would refuse it."""
    left = payment.amount - payment.amount_refunded
    if left == 0:
        raise Refusal(
            invalid(
                f"Charge {payment.charge} has already been refunded.",
                code="charge_already_refunded",
            )
        )
    amount = left if amount is None else amount
    if amount < 1:
        raise Refusal(invalid("This value must be greater than or equal to 1.", param="amount"))
    if amount > left:
        than = (
            f"unrefunded amount on charge ({_money(left, payment.currency)})"
            if payment.amount_refunded
            else f"charge amount ({_money(payment.amount, payment.currency)})"
        )
        raise Refusal(
            invalid(
                f"Refund amount ({_money(amount, payment.currency)}) is greater than {than}",
                param="amount",
                code="amount_too_large",
            )
        )
    return amount


def _money(amount: int, currency: str) -> str:
    """How Stripe writes an amount in its error messages: 250000 usd -> "$2,500.00"."""
    if currency.lower() == "usd":
        return f"${amount / 100:,.2f}"
    return f"{amount / 100:,.2f} {currency.upper()}"
