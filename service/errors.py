"""What can go wrong in the domain, each error carrying a message fit for the caller.

Handlers turn these into HTTP statuses in one place (`ERROR_STATUS` in
service/http/error_status.py); the domain never speaks HTTP. Messages never carry a
secret, a payload or customer data.
"""

from __future__ import annotations


class PaymentError(Exception):
    """Base of every error the service reports to its caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(PaymentError):
    """The caller sent something malformed; nothing was changed."""


class InvalidProjectId(InvalidRequest):
    pass


class PayloadTooLarge(PaymentError):
    pass


class InvalidWebhook(PaymentError):
    """A delivery that is not provably from Stripe, or not an event; nothing was written."""


class UnstorableWebhook(InvalidWebhook):
    """A validly signed delivery the service cannot store or act on (a NUL in a string, a
    number beyond bigint, a malformed signature header): refused, and logged, once."""


class RateLimited(PaymentError):
    """The caller is over its rate limit; `retry_after` is whole seconds until it is not."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many requests; try again later")
        self.retry_after = retry_after


class ProjectNotFound(PaymentError):
    pass


class ProjectNotPayable(PaymentError):
    """The project is already paid, or a payment for it is processing or disputed."""


class StripeFailed(PaymentError):
    """Stripe refused or failed the call; the message says which, without secrets.

    `ambiguous` is set when no answer came back (timeout, connection lost): Stripe may have
    acted, so a retry must re-send the same idempotency key rather than start afresh.
    """

    def __init__(self, message: str, *, ambiguous: bool = False, code: str | None = None) -> None:
        super().__init__(message)
        self.ambiguous = ambiguous
        # Stripe's error code (never its message), for the callers that act on one:
        # idempotency_key_in_use, charge_already_refunded.
        self.code = code


class CheckoutBusy(PaymentError):
    """Another request is creating this project's checkout and did not finish in time."""


class DatabaseUnavailable(PaymentError):
    """The database did not answer; nothing was half-done."""


class Unauthenticated(PaymentError):
    """No credential, or one that is malformed, expired or cannot be verified (401)."""


class Forbidden(PaymentError):
    """A valid credential that does not cover the project asked about (403)."""
