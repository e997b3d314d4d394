"""Apply a Stripe event (a webhook delivery, or reconcile): once, in order, audited."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from service.config import Settings
from service.db import Queries
from service.logs import request_id_var
from service.payments.common import StatusChange, log_change, transaction
from service.transitions import CHECKOUT_SESSION_TYPES, HANDLED_TYPES, next_status
from service.webhook_events import (
    StripeEvent,
    parse_event,
    payment_details,
    project_reference,
    verify_signature,
)


@dataclass(frozen=True)
class EventResult:
    event_id: str
    event_type: str
    duplicate: bool
    outcome: str
    change: StatusChange | None = None


async def receive_webhook(
    pool: asyncpg.Pool,
    queries: Queries,
    settings: Settings,
    payload: bytes,
    signature: str | None,
    received_at: datetime,
) -> EventResult:
    """Verify a delivery, then apply it. Nothing is read from the database before the
    signature is proven."""
    verify_signature(
        payload, signature, settings.stripe_webhook_secrets, settings.webhook_tolerance_seconds
    )
    event = parse_event(payload)
    return await apply_event(pool, queries, event, received_at)


class _ProjectAppeared(Exception):
    """Another transaction created the project between our read and our write."""


async def apply_event(
    pool: asyncpg.Pool, queries: Queries, event: StripeEvent, received_at: datetime
) -> EventResult:
    """Record the event and apply it, once: record, status change and audit row commit
    together, and a second delivery of the same id (even a concurrent one) is a no-op."""
    while True:
        try:
            return await _apply_once(pool, queries, event, received_at)
        except _ProjectAppeared:
            continue  # decide again, now on the row the other transaction created


async def _apply_once(
    pool: asyncpg.Pool, queries: Queries, event: StripeEvent, received_at: datetime
) -> EventResult:
    handled = event.event_type in HANDLED_TYPES
    async with transaction(pool) as conn:
        project_id, payment_intent = project_reference(event)
        if handled and project_id is None and payment_intent is not None:
            project_id = await queries.find_project_by_payment_intent(
                conn, payment_intent_id=payment_intent
            )
        project = None
        target = None
        if handled and project_id is not None:
            # The row lock orders concurrent events for one project; the decision below is
            # made on the status as it is now, not as it was when the event was sent.
            project = await queries.lock_project(conn, project_id=project_id)
            target = next_status(
                event.event_type,
                event.obj,
                project["status"] if project is not None else None,
                project["checkout_session_id"] if project is not None else None,
            )
        record = {
            "event_id": event.event_id,
            "event_type": event.event_type,
            "stripe_created_at": event.created,
            "livemode": event.livemode,
            "received_at": received_at,
            "project_id": project_id,
        }
        if target is None or project_id is None:
            outcome = (
                "ignored"
                if not handled
                else "unknown_project"
                if project_id is None
                else "unchanged"
            )
            if await queries.record_event(conn, outcome=outcome, **record) is None:
                return EventResult(event.event_id, event.event_type, True, "duplicate")
            return EventResult(event.event_id, event.event_type, False, outcome)

        payment_intent_id, amount, currency = payment_details(event)
        change = {
            "to_status": target,
            "payment_intent_id": payment_intent_id,
            "amount_total": amount,
            "currency": currency,
            "request_id": request_id_var.get(),
        }
        if project is not None:
            from_status: str | None = project["status"]
            row = await queries.apply_event_to_project(
                conn, from_status=from_status, **record, **change
            )
        else:
            from_status = None
            session_id = event.obj.get("id") if event.event_type in CHECKOUT_SESSION_TYPES else None
            row = await queries.apply_event_to_new_project(
                conn,
                checkout_session_id=session_id if isinstance(session_id, str) else None,
                **record,
                **change,
            )
        if row["event_id"] is None:
            return EventResult(event.event_id, event.event_type, True, "duplicate")
        if not row["changed"]:
            if project is not None:
                raise RuntimeError("a locked project changed under its lock")
            raise _ProjectAppeared
    status_change = StatusChange(project_id, from_status, target)
    log_change(status_change, f"stripe_event:{event.event_id}")
    return EventResult(event.event_id, event.event_type, False, "applied", status_change)


def event_summary(result: EventResult) -> Mapping[str, object]:
    """What the webhook answers Stripe: never more than it needs."""
    if result.duplicate:
        return {"received": True, "duplicate": True}
    return {"received": True}
