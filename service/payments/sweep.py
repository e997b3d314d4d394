"""serve heals by itself: every RECONCILE_INTERVAL_MINUTES one replica at a time (an advisory
lock) runs the reconcile over the events since its last sweep, with an overlap, and sends what
is still owed to Stripe. A missed webhook then never needs an operator."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import asyncpg

from service.config import Settings
from service.db import Queries
from service.errors import DatabaseUnavailable, StripeFailed
from service.metrics import Metrics
from service.payments.common import connection
from service.payments.outbox import Outbox
from service.reconcile import MAX_WINDOW, reconcile
from service.stripe_gateway import StripeGateway

log = logging.getLogger("service.sweep")

SWEEP = "reconcile"
# Each sweep starts this far before where the last one got to: an event Stripe created just
# before a sweep read its page may become listable only later.
OVERLAP = timedelta(minutes=5)
# The first sweep of a database looks back as far as Stripe keeps retrying a webhook.
FIRST_WINDOW = timedelta(hours=72)


class SweepResult(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # another replica's turn
    OFF = "off"  # the key may not list events: only owed actions are sent


@dataclass
class Sweeper:
    pool: asyncpg.Pool
    queries: Queries
    gateway: StripeGateway
    settings: Settings
    metrics: Metrics
    outbox: Outbox
    listing: bool = True  # turned off for good when Stripe refuses the key's listing

    async def run_forever(self, stop: asyncio.Event) -> None:
        interval = self.settings.reconcile_interval_minutes * 60
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                await self.sweep_once()

    async def sweep_once(self) -> SweepResult:
        """One sweep, if it is this replica's turn; never raises."""
        try:
            result = await self._locked_sweep()
        except DatabaseUnavailable:
            log.warning("reconcile sweep skipped: the database is unavailable")
            result = SweepResult.FAILED
        except Exception:
            log.exception("reconcile sweep failed")
            result = SweepResult.FAILED
        self.metrics.sweeps.labels(str(result)).inc()
        return result

    async def _locked_sweep(self) -> SweepResult:
        async with connection(self.pool) as conn:
            if not await self.queries.try_lock_sweep(conn):
                return SweepResult.SKIPPED
            try:
                return await self._sweep(conn)
            finally:
                await self.queries.unlock_sweep(conn)

    async def _sweep(self, conn: asyncpg.Connection) -> SweepResult:
        result = SweepResult.OK if self.listing else SweepResult.OFF
        if self.listing:
            started = datetime.now(UTC)
            swept_to = await self.queries.get_sweep_position(conn, sweep=SWEEP)
            since = swept_to - OVERLAP if swept_to is not None else started - FIRST_WINDOW
            window = min(max(started - since, timedelta(minutes=1)), MAX_WINDOW)
            try:
                summary = await reconcile(
                    self.pool,
                    self.queries,
                    self.gateway,
                    window,
                    livemode=self.settings.stripe_livemode,
                    progress=None,
                    outbox=self.outbox,
                )
            except StripeFailed as failure:
                if failure.code == "not_permitted":
                    log.warning(
                        "reconcile sweep turned off: the Stripe key may not list events "
                        "(give it read access to Events, or set RECONCILE_INTERVAL_MINUTES=0)"
                    )
                    self.listing = False
                    result = SweepResult.OFF
                else:
                    log.warning(
                        "reconcile sweep failed; the next one retries",
                        extra={"fields": {"reason": failure.message}},
                    )
                    result = SweepResult.FAILED
            else:
                await self.queries.save_sweep_position(conn, sweep=SWEEP, swept_to=started)
                self.metrics.sweep_applied.inc(summary.applied)
                if summary.applied:
                    log.warning(
                        "reconcile sweep applied missed events",
                        extra={"fields": {"event": "sweep", "applied": summary.applied}},
                    )
        await self.outbox.send_owed()
        return result
