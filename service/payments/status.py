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
from service.limits import TokenBucket
from service.logs import request_id_var
from service.payments.common import (
    StatusChange,
    connection,
    log_change,
    transaction,
    validate_project_id,
)
from service.stripe_gateway import StripeGateway
from service.transitions import PENDING, next_status
from service.webhook_events import StripeEvent, payment_details

log = logging.getLogger("service.payments")


@dataclass(frozen=True)
class ProjectPayment:
    project_id: str
    status: str
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
    on the success page before the webhook does; what Stripe says is applied through the
    same status table, and the webhook arriving later is a no-op."""
    validate_project_id(project_id)
    async with connection(pool) as conn:
        row = await queries.get_project_payment(conn, project_id=project_id)
    if row is None:
        raise ProjectNotFound("no checkout was ever started for this project")
    confirm = row["status"] == PENDING and settings.stripe_confirm_interval_seconds > 0
    if confirm and await _confirm_with_stripe(
        pool, queries, gateway, settings, project_id, stripe_reads
    ):
        async with connection(pool) as conn:
            row = await queries.get_project_payment(conn, project_id=project_id)
    return ProjectPayment(row["project_id"], row["status"], row["updated_at"])


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
    event_type = {
        "complete": "checkout.session.completed",
        "expired": "checkout.session.expired",
    }.get(str(session.get("status")))
    if event_type is None:
        return False
    as_event = StripeEvent(
        "", event_type, datetime.now(UTC), session.get("livemode") is True, session
    )
    async with transaction(pool) as conn:
        change = await _apply_confirmation(conn, queries, as_event, project_id)
    if change is not None:
        log_change(change, "api_confirmation")
    return change is not None


async def _apply_confirmation(
    conn: asyncpg.Connection, queries: Queries, session: StripeEvent, project_id: str
) -> StatusChange | None:
    """Apply a session read from Stripe (no event id: audit cause api_confirmation)."""
    project = await queries.lock_project(conn, project_id=project_id)
    if project is None:
        return None
    current = project["status"]
    target = next_status(session.event_type, session.obj, current, project["checkout_session_id"])
    if target is None:
        return None
    payment_intent, amount, currency = payment_details(session)
    await queries.set_project_status(
        conn,
        project_id=project_id,
        status=target,
        payment_intent_id=payment_intent,
        amount_total=amount,
        currency=currency,
    )
    await queries.add_audit_row(
        conn,
        project_id=project_id,
        from_status=current,
        to_status=target,
        cause="api_confirmation",
        cause_event_id=None,
        request_id=request_id_var.get(),
    )
    return StatusChange(project_id, current, target)
