"""Sessions expiring by themselves at their `expires_at`, as on Stripe.

One timer on the loop, set for the earliest `expires_at` still pending, instead of a poll: an
idle sandbox does nothing, and a thousand open sessions cost one heap and one timer. The
owner also calls `due()` before it answers anything, so what a caller sees is right to the
second even where no loop runs the timer (a synchronous test).
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable

# Wall-clock expiry, loop-clock timers: wake a little late rather than a little early.
_LATE = 0.01


class ExpirySchedule:
    """When each open session expires. `current(session_id)` tells the session's
    `expires_at` while it is still open (None once it is not), so entries of sessions that
    were paid, expired or moved since are simply skipped. `on_due()` is called from the
    timer; it is expected to call `due()` and expire what that returns."""

    def __init__(self, current: Callable[[str], int | None], on_due: Callable[[], object]) -> None:
        self._current = current
        self._on_due = on_due
        self._heap: list[tuple[int, str]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_for: int | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the timer on `loop` (a server's, perhaps on another thread). Unattached, it
        runs on the loop running where the first session is added, if any."""
        self._loop = loop

    def add(self, session_id: str, expires_at: int) -> None:
        heapq.heappush(self._heap, (expires_at, session_id))
        self._arm()

    def due(self, now: float | None = None) -> list[str]:
        """The sessions whose `expires_at` is at or before `now` (default: the time now),
        earliest first; each is returned once."""
        at = time.time() if now is None else now
        out = []
        while (first := self._next()) is not None and first <= at:
            out.append(heapq.heappop(self._heap)[1])
        return out

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._timer_for = None

    @property
    def next_at(self) -> int | None:
        """The earliest `expires_at` still pending (None when no session is open)."""
        return self._next()

    def _next(self) -> int | None:
        while self._heap and self._current(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def _arm(self) -> None:
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if self._loop is None or self._loop.is_closed():
            self._loop = running
        if self._loop is None:
            return  # no loop anywhere: `due()` on access is all there is
        if self._loop is running:
            self._arm_here()
        else:
            self._loop.call_soon_threadsafe(self._arm_here)

    def _arm_here(self) -> None:
        first = self._next()
        if first == self._timer_for and self._timer is not None:
            return
        self.close()
        if first is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(max(0.0, first - time.time()) + _LATE, self._fire)
            self._timer_for = first

    def _fire(self) -> None:
        self._timer = self._timer_for = None
        self._on_due()
        self._arm_here()
