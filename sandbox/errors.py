"""Stripe's error answers: `{"error": {"type", "message", "code"?, "param"?, "doc_url"?}}`.

The SDK picks its exception class from the status and `error.type`/`error.code`, so these
have to match what Stripe sends for the service's error handling to be tested for real.
"""

from __future__ import annotations

import re
from typing import Any

_INTEGER = re.compile(r"-?[0-9]+")


class StripeError(Exception):
    """An answer in Stripe's error shape, raised anywhere below a handler."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.error_type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        return {"error": error}


class Refusal(ValueError):
    """A change the account's state does not allow (refunding a refunded charge, expiring a
    paid session). The dashboard shows its message; the API answers `error`."""

    def __init__(self, error: StripeError) -> None:
        super().__init__(error.message)
        self.error = error


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> StripeError:
    return StripeError(400, "invalid_request_error", message, code=code, param=param)


def unknown_parameter(name: str) -> StripeError:
    return invalid(f"Received unknown parameter: {name}", param=name, code="parameter_unknown")


def missing_parameter(name: str) -> StripeError:
    return invalid(f"Missing required param: {name}.", param=name, code="parameter_missing")


def no_such(kind: str, object_id: str, *, param: str, status: int = 400) -> StripeError:
    """Stripe answers 404 for a missing URL resource and 400 for a missing referenced one."""
    return StripeError(
        status,
        "invalid_request_error",
        f"No such {kind}: '{object_id}'",
        code="resource_missing",
        param=param,
    )


def invalid_integer(value: str, param: str) -> StripeError:
    return invalid(f"Invalid integer: {value}", param=param)


def parse_int(value: str, param: str) -> int:
    # Stripe refuses "1.0", " 1" and "+1" alike; int() would take the last two.
    if _INTEGER.fullmatch(value) is None:
        raise invalid_integer(value, param)
    return int(value)


def default_error_type(status: int) -> str:
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "api_error"
    return "invalid_request_error"


def masked_key(key: str) -> str:
    """How Stripe echoes a wrong key: its prefix and last four characters only."""
    prefix, _, rest = key.rpartition("_")
    if not prefix or len(rest) <= 4:
        return "*" * len(key) if len(key) <= 4 else f"{key[:3]}****{key[-4:]}"
    return f"{prefix}_****{rest[-4:]}"
