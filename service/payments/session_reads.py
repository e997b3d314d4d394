"""What a Checkout Session read from Stripe settles: stored as a fact, like an event's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from service.db import Queries
from service.payments.events import FactResult, store_fact
from service.payments.facts import fact_of_session
from service.payments.model import AuditCause


async def store_session_read(
    pool: asyncpg.Pool,
    queries: Queries,
    session: Mapping[str, Any],
    session_id: str,
    *,
    livemode: bool,
    cause: AuditCause,
) -> FactResult | None:
    """Store what Stripe says session `session_id` is, through the one derivation; None when
    the read tells nothing the service counts (still open, the other mode, another id)."""
    fact = fact_of_session(session, livemode=livemode)
    if fact is None or fact.object_id != session_id:
        return None
    return await store_fact(pool, queries, fact, cause=cause)
