"""Limits on what one caller may ask for: token buckets, in memory, per process.

A bucket holds up to `burst` tokens and refills at `rate` tokens a second; a request takes
one, or is refused with the time until the next one (Retry-After). `CallerLimits` keeps one
bucket per caller; `TokenBucket` alone caps something for the whole process (the Stripe
reads the status endpoint may cause). Nothing is shared between replicas: the effective
limit of a deployment is the limit times its replicas (documented in the README).

No library: the maintained Python rate limiters (limits, pyrate-limiter) bring storage
backends, sync locks or their own clocks for what is here forty lines on one event loop
thread, where a bucket needs no lock at all.
"""

from __future__ import annotations

import ipaddress
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import tornado.httputil

if TYPE_CHECKING:
    from service.config import Settings

_PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour)\s*$")

# Callers remembered per limit before the idle ones are forgotten (a full bucket is the same
# as no bucket, so forgetting it changes nothing); bounds memory under a spoofed-address flood.
MAX_TRACKED_CALLERS = 100_000


@dataclass(frozen=True)
class Rate:
    """`count` requests per `period_seconds`, in bursts of up to `count`."""

    count: int
    period_seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.period_seconds


CHECKOUT_RATE_DEFAULT = Rate(count=20, period_seconds=60.0)
STATUS_RATE_DEFAULT = Rate(count=300, period_seconds=60.0)


def parse_rate(text: str) -> Rate | None:
    """`20/minute`, `5/second`, `1000/hour`; `off` (None) turns the limit off."""
    if text.strip().lower() == "off":
        return None
    match = _RATE.fullmatch(text.lower())
    if match is None or int(match.group(1)) == 0:
        raise ValueError("must be like 20/minute (per second, minute or hour) or off")
    return Rate(count=int(match.group(1)), period_seconds=_PERIODS[match.group(2)])


def parse_trusted_proxies(
    text: str,
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated addresses or CIDR networks; raises ValueError for anything else."""
    return tuple(
        ipaddress.ip_network(item.strip(), strict=False) for item in text.split(",") if item.strip()
    )


class TokenBucket:
    """One bucket. `take()` is True when a token was there (and takes it)."""

    def __init__(
        self,
        per_second: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
        on_refused: Callable[[], None] | None = None,
    ) -> None:
        self.per_second = per_second
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._updated = clock()
        self._on_refused = on_refused

    def take(self) -> bool:
        return self.wait_for_token() == 0.0

    def wait_for_token(self) -> float:
        """Take a token and return 0.0, or return the seconds until one is there."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.per_second)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        if self._on_refused is not None:
            self._on_refused()
        if self.per_second <= 0:
            return math.inf
        return (1.0 - self._tokens) / self.per_second

    def is_full(self) -> bool:
        elapsed = self._clock() - self._updated
        return self._tokens + elapsed * self.per_second >= self.burst


class CallerLimits:
    """One token bucket per caller key, all at the same rate."""

    def __init__(
        self,
        rate: Rate,
        clock: Callable[[], float] = time.monotonic,
        max_callers: int = MAX_TRACKED_CALLERS,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._max_callers = max_callers
        self._buckets: dict[str, TokenBucket] = {}

    def retry_after(self, caller: str) -> int | None:
        """None when `caller` may go ahead (a token is taken); else whole seconds to wait."""
        bucket = self._buckets.get(caller)
        if bucket is None:
            if len(self._buckets) >= self._max_callers:
                self._forget_idle()
            bucket = TokenBucket(self.rate.per_second, self.rate.count, self._clock)
            self._buckets[caller] = bucket
        wait = bucket.wait_for_token()
        if wait == 0.0:
            return None
        return max(1, math.ceil(wait))

    def _forget_idle(self) -> None:
        self._buckets = {k: b for k, b in self._buckets.items() if not b.is_full()}
        while len(self._buckets) >= self._max_callers:  # all busy: forget the oldest
            del self._buckets[next(iter(self._buckets))]


@dataclass(frozen=True)
class RequestLimits:
    """What one process allows: per caller on checkout and status, and in all on the Stripe
    reads the status endpoint causes (None: no limit)."""

    checkout: CallerLimits | None
    status: CallerLimits | None
    stripe_reads: TokenBucket | None

    @classmethod
    def from_settings(
        cls, settings: Settings, on_stripe_read_refused: Callable[[], None] | None = None
    ) -> RequestLimits:
        checkout, status = settings.rate_limit_checkout, settings.rate_limit_status
        per_second = settings.stripe_confirm_max_per_second
        return cls(
            checkout=CallerLimits(checkout) if checkout else None,
            status=CallerLimits(status) if status else None,
            # Bursts of a second's worth of reads, at least one; 0 allows none.
            stripe_reads=TokenBucket(
                per_second,
                max(1.0, per_second) if per_second > 0 else 0.0,
                on_refused=on_stripe_read_refused,
            ),
        )


def caller_key(
    request: tornado.httputil.HTTPServerRequest,
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
) -> str:
    """Who is asking, for the rate limits: the client's address.

    `X-Forwarded-For` counts only when the connection comes from a trusted proxy, and then
    its right-most address that is not itself a trusted proxy (everything left of that is
    whatever the client chose to send). This is the one function the limits ask; with
    authentication it becomes the token's `sub` (or the API key's id).
    """
    peer = request.remote_ip or "unknown"
    if not trusted_proxies or not _is_trusted(peer, trusted_proxies):
        return peer
    forwarded = request.headers.get_list("X-Forwarded-For")
    hops = [hop.strip() for value in forwarded for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted_proxies):
            return hop if _is_address(hop) else peer
    return peer


def _is_trusted(
    address: str, trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
