"""Misbehaviour the stand-in can be told to show, for tests of how the service copes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sandbox.errors import StripeError, default_error_type

_MESSAGES = {
    "rate_limit_error": "Request rate limit exceeded. Learn more about rate limits here "
    "https://stripe.com/docs/rate-limits.",
    "api_error": "An unknown error occurred (injected by the sandbox).",
}


@dataclass(frozen=True)
class Fault:
    kind: Literal["fail", "hang", "lose_answer"]
    path_prefix: str
    status: int = 500
    error_type: str = "api_error"

    def error(self) -> StripeError:
        message = _MESSAGES.get(self.error_type, "Injected failure (sandbox fault plan).")
        return StripeError(self.status, self.error_type, message)


@dataclass
class FaultPlan:
    """Faults are consumed in the order they were planned, by the first request they match."""

    delay_seconds: float = 0.0
    _queue: list[Fault] = field(default_factory=list)

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 500,
        error_type: str | None = None,
        path_prefix: str = "/v1/",
    ) -> None:
        """The next `count` matching requests answer `status` with a Stripe error body."""
        kind = error_type or default_error_type(status)
        self._queue += [Fault("fail", path_prefix, status, kind) for _ in range(count)]

    def hang_next(self, count: int = 1, *, path_prefix: str = "/v1/") -> None:
        """The next `count` matching requests never answer (until the client hangs up)."""
        self._queue += [Fault("hang", path_prefix) for _ in range(count)]

    def lose_answer_next(self, count: int = 1, *, path_prefix: str = "/v1/") -> None:
        """The next `count` matching requests are carried out (and their answer saved under
        their Idempotency-Key), but the connection drops before the answer is sent: what a
        caller sees when its network fails, or what is lost when it dies mid-call."""
        self._queue += [Fault("lose_answer", path_prefix) for _ in range(count)]

    def take(self, path: str) -> Fault | None:
        for index, fault in enumerate(self._queue):
            if path.startswith(fault.path_prefix):
                return self._queue.pop(index)
        return None

    @property
    def pending(self) -> int:
        return len(self._queue)

    def reset(self) -> None:
        self.delay_seconds = 0.0
        self._queue.clear()
