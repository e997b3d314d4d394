"""A project's payment status, confirmed with Stripe while a session is pending."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from service.config import Settings
from service.db import Queries
from service.errors import ProjectNotFound, StripeFailed
from service.http.limits import TokenBucket
from service.payments.common import connection, log, validate_project_id
from service.payments.model import AuditCause, Outcome, PaymentStatus
from service.payments.session_reads import store_session_read
from service.stripe_gateway import StripeGateway


@dataclass(frozen=True)
class ProjectPayment:
    project_id: str
    status: PaymentStatus
    updated_at: datetime


async def payment_status(
    pool: asyncpg.Pool,
    queries: Queries,
    gateway: StripeGateway,
    settings: Settings,
    project_id: str,
    stripe_reads: TokenBucket | None = None,
) -> ProjectPayment:
    """The project's status. A pending project's session is also read from Stripe (at most
    once per STRIPE_CONFIRM_INTERVAL_SECONDS, across replicas), because the buyer may land
    on the success page before the webhook does; what Stripe says is stored as a fact and
    settles the status through the same derivation, and the webhook arriving later adds
    nothing new."""
    validate_project_id(project_id)
    async with connection(pool) as conn:
        row = await queries.get_project_payment(conn, project_id=project_id)
    if row is None:
        raise ProjectNotFound("no checkout was ever started for this project")
    confirm = (
        row["status"] == PaymentStatus.PENDING and settings.stripe_confirm_interval_seconds > 0
    )
    session_id = await _claim_stripe_check(pool, queries, settings, project_id) if confirm else None
    if (
        session_id is not None
        and (
            session := await _read_session(gateway, settings, session_id, project_id, stripe_reads)
        )
        is not None
    ):
        result = await store_session_read(
            pool,
            queries,
            session,
            session_id,
            livemode=settings.stripe_livemode,
            cause=AuditCause.API_CONFIRMATION,
        )
        if result is not None and result.outcome is Outcome.APPLIED:
            async with connection(pool) as conn:
                row = await queries.get_project_payment(conn, project_id=project_id)
            assert row is not None  # it was there a moment ago, and projects are never deleted
    return ProjectPayment(
        project_id=row["project_id"],
        status=PaymentStatus(row["status"]),
        updated_at=row["updated_at"],
    )


async def _claim_stripe_check(
    pool: asyncpg.Pool, queries: Queries, settings: Settings, project_id: str
) -> str | None:
    """The pending session to read from Stripe now, if no replica read it within
    STRIPE_CONFIRM_INTERVAL_SECONDS."""
    checked_before = datetime.now(UTC) - timedelta(seconds=settings.stripe_confirm_interval_seconds)
    async with connection(pool) as conn:
        session_id: str | None = await queries.claim_stripe_check(
            conn, project_id=project_id, checked_before=checked_before
        )
    return session_id


async def _read_session(
    gateway: StripeGateway,
    settings: Settings,
    session_id: str,
    project_id: str,
    stripe_reads: TokenBucket | None,
) -> dict[str, Any] | None:
    """The session as Stripe has it, or None: over the per-replica cap
    (STRIPE_CONFIRM_MAX_PER_SECOND: the page simply sees the stored status, and the webhook
    still comes), or Stripe did not answer in time."""
    if stripe_reads is not None and not stripe_reads.take():
        return None
    try:
        return await asyncio.wait_for(
            gateway.retrieve_checkout_session(session_id), settings.stripe_timeout_seconds
        )
    except (StripeFailed, TimeoutError):
        # The webhook will still come; the page simply sees "pending" a little longer.
        log.warning(
            "could not confirm a session with Stripe", extra={"fields": {"project_id": project_id}}
        )
        return None
