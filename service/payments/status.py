"""A project's payment status, confirmed with Stripe while a session is pending."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from service.config import Settings
from service.db import Queries
from service.errors import ProjectNotFound, StripeFailed
from service.http.limits import TokenBucket
from service.payments.common import connection, validate_project_id
from service.payments.events import store_fact
from service.payments.facts import fact_of_session
from service.payments.model import AuditCause, Outcome, PaymentStatus
from service.stripe_gateway import StripeGateway

log = logging.getLogger("service.payments")


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
    if confirm and await _confirm_with_stripe(
        pool, queries, gateway, settings, project_id, stripe_reads
    ):
        async with connection(pool) as conn:
            row = await queries.get_project_payment(conn, project_id=project_id)
    return ProjectPayment(row["project_id"], PaymentStatus(row["status"]), row["updated_at"])


async def _confirm_with_stripe(
    pool: asyncpg.Pool,
    queries: Queries,
    gateway: StripeGateway,
    settings: Settings,
    project_id: str,
    stripe_reads: TokenBucket | None = None,
) -> bool:
    """True when Stripe's view of the session changed the project's status."""
    checked_before = datetime.now(UTC) - timedelta(seconds=settings.stripe_confirm_interval_seconds)
    async with connection(pool) as conn:
        session_id = await queries.claim_stripe_check(
            conn, project_id=project_id, checked_before=checked_before
        )
    if session_id is None:
        return False
    # The per-replica cap (STRIPE_CONFIRM_MAX_PER_SECOND): beyond it the page simply sees
    # the stored status, and the webhook still comes.
    if stripe_reads is not None and not stripe_reads.take():
        return False
    try:
        session = await asyncio.wait_for(
            gateway.retrieve_checkout_session(session_id), settings.stripe_timeout_seconds
        )
    except (StripeFailed, TimeoutError):
        # The webhook will still come; the page simply sees "pending" a little longer.
        log.warning(
            "could not confirm a session with Stripe", extra={"fields": {"project_id": project_id}}
        )
        return False
    fact = fact_of_session(session, livemode=settings.stripe_livemode)
    if fact is None or fact.object_id != session_id:
        return False
    result = await store_fact(pool, queries, fact, cause=AuditCause.API_CONFIRMATION)
    return result.outcome is Outcome.APPLIED
