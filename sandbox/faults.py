"""Faults the Stripe stand-in can be told to inject, for tests of a misbehaving Stripe."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class _Fault:
    kind: str  # "fail" or "hang"
    path_prefix: str
    status: int = 500
    error_type: str = "api_error"


@dataclass
class FaultPlan:
    delay_seconds: float = 0.0
    _queue: list[_Fault] = field(default_factory=list)

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 500,
        error_type: str | None = None,
        path_prefix: str = "/v1/",
    ) -> None:
        """The next `count` matching requests answer `status` with a Stripe error body."""
        kind = error_type or (
            "rate_limit_error"
            if status == 429
            else "api_error"
            if status >= 500
            else "invalid_request_error"
        )
        self._queue += [_Fault("fail", path_prefix, status, kind) for _ in range(count)]

    def hang_next(self, count: int = 1, *, path_prefix: str = "/v1/") -> None:
        """The next `count` matching requests never answer."""
        self._queue += [_Fault("hang", path_prefix) for _ in range(count)]

    def take(self, path: str) -> _Fault | None:
        for index, fault in enumerate(self._queue):
            if path.startswith(fault.path_prefix):
                return self._queue.pop(index)
        return None

    def reset(self) -> None:
        self.delay_seconds = 0.0
        self._queue.clear()
