"""`python -m service reconcile`: apply the events whose webhooks never arrived.

Lists recent events of the handled types from Stripe's Events API and feeds each one
through `payments.apply_event`, the webhook's own code path, page by page as Stripe lists
them: the status is a function of the facts, so no order is needed. Running it twice
changes nothing the second time.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import asyncpg

from service.db import Queries
from service.errors import InvalidWebhook
from service.payments import apply_event
from service.payments.facts import FACT_TYPES
from service.payments.model import Outcome
from service.payments.outbox import Outbox
from service.stripe_gateway import StripeGateway
from service.webhook_events import event_from_data

# Stripe keeps events for 30 days; asking for more would silently return less.
MAX_WINDOW = timedelta(days=30)
PAGE_SIZE = 100
_DURATION = re.compile(r"^\s*(\d+)\s*([mhd])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_window(text: str) -> timedelta:
    """`72h`, `90m`, `7d` -> a timedelta; ValueError with a clear message otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError("--since takes a duration such as 90m, 72h or 7d")
    window = timedelta(**{_UNITS[match[2]]: int(match[1])})
    if window <= timedelta(0):
        raise ValueError("--since must be longer than zero")
    if window > MAX_WINDOW:
        raise ValueError("Stripe keeps events for 30 days: --since can be at most 30d (720h)")
    return window


@dataclass
class Summary:
    seen: int = 0
    applied: int = 0
    already_recorded: int = 0
    unchanged: int = 0
    ignored: int = 0
    malformed: int = 0
    would_apply: list[str] = field(default_factory=list)

    def line(self, *, dry_run: bool) -> str:
        if dry_run:
            return (
                f"dry run: seen {self.seen}, would apply {len(self.would_apply)}, "
                f"already recorded {self.already_recorded}, malformed {self.malformed}"
            )
        return (
            f"seen {self.seen}, applied {self.applied}, already recorded "
            f"{self.already_recorded}, unchanged {self.unchanged}, ignored {self.ignored}, "
            f"malformed {self.malformed}"
        )


async def reconcile(
    pool: asyncpg.Pool,
    queries: Queries,
    gateway: StripeGateway,
    window: timedelta,
    *,
    livemode: bool,
    dry_run: bool = False,
    progress: TextIO | None = sys.stderr,
    outbox: Outbox | None = None,
) -> Summary:
    """Apply the window's events page by page, as Stripe lists them (newest first), in
    constant memory: the status does not depend on the order the facts arrive in."""
    since = datetime.now(UTC) - window
    params = {
        "created": {"gte": int(since.timestamp())},
        "types": sorted(FACT_TYPES),
        "limit": PAGE_SIZE,
    }
    _say(progress, f"reconcile: events since {since:%Y-%m-%d %H:%M} UTC, a page at a time")
    summary = Summary()
    async for data in gateway.list_events(params):
        summary.seen += 1
        await _one(pool, queries, data, summary, livemode=livemode, dry_run=dry_run, outbox=outbox)
        if summary.seen % PAGE_SIZE == 0:  # one line per page Stripe answered
            _say(progress, f"reconcile: {summary.seen} events so far")
    return summary


async def _one(
    pool: asyncpg.Pool,
    queries: Queries,
    data: dict[str, Any],
    summary: Summary,
    *,
    livemode: bool,
    dry_run: bool,
    outbox: Outbox | None,
) -> None:
    try:
        event = event_from_data(data)
    except InvalidWebhook:
        summary.malformed += 1
        return
    if dry_run:
        async with pool.acquire() as conn:
            known = await queries.get_event(conn, event_id=event.event_id)
        if known is None:
            summary.would_apply.append(event.event_id)
        else:
            summary.already_recorded += 1
        return
    result = await apply_event(
        pool, queries, event, datetime.now(UTC), livemode=livemode, outbox=outbox
    )
    if result.outcome is Outcome.DUPLICATE:
        summary.already_recorded += 1
    elif result.outcome is Outcome.APPLIED:
        summary.applied += 1
    elif result.outcome is Outcome.UNCHANGED:
        summary.unchanged += 1
    else:
        summary.ignored += 1


def _say(progress: TextIO | None, line: str) -> None:
    if progress is not None:
        print(line, file=progress, flush=True)
