"""What every handler is given (through `initialize()`): the settings, the pool, the
gateway... built once by app.serve(); and the count of requests in flight."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import asyncpg

from service.config import Settings
from service.db import Queries
from service.http.identity import Authenticator
from service.http.limits import RequestLimits
from service.metrics import Metrics
from service.payments.events import ApiVersionWatch
from service.payments.outbox import Outbox
from service.stripe_gateway import StripeGateway


class InFlight:
    """Counts requests being handled, so a stopping process can wait for them."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def __enter__(self) -> None:
        self.enter()

    def __exit__(self, *_exc: object) -> None:
        self.leave()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def drained(self) -> None:
        await self._idle.wait()


@dataclass(frozen=True)
class AppContext:
    """What the handlers hand to the domain; built once by app.serve()."""

    settings: Settings
    pool: asyncpg.Pool
    queries: Queries
    gateway: StripeGateway
    metrics: Metrics
    auth: Authenticator
    in_flight: InFlight = field(default_factory=InFlight)
    # What the service owes Stripe, sent after each commit that made it owed.
    outbox: Outbox = field(init=False)
    api_versions: ApiVersionWatch = field(init=False)
    # Built from the settings: per-caller rate limits and the cap on the status endpoint's
    # Stripe reads (per process, in memory).
    limits: RequestLimits = field(init=False)

    def __post_init__(self) -> None:
        # Frozen: each set once, here.
        outbox = Outbox(self.pool, self.queries, self.gateway, self.settings, self.metrics)
        object.__setattr__(self, "outbox", outbox)
        versions = ApiVersionWatch(self.settings.stripe_api_version)
        object.__setattr__(self, "api_versions", versions)
        limits = RequestLimits.from_settings(
            self.settings, self.metrics.stripe_confirmations_capped.inc
        )
        object.__setattr__(self, "limits", limits)
