"""Apply a Stripe event (a webhook delivery, or reconcile): once, in order, audited."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from service.config import Settings
from service.db import Queries
from service.logs import actor_var, request_id_var
from service.payments.common import StatusChange, connection, log_change, transaction
from service.transitions import CHECKOUT_SESSION_TYPES, HANDLED_TYPES, moves_for, next_status
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
    project_id, payment_intent = project_reference(event)
    async with connection(pool) as conn:
        if handled and project_id is None and payment_intent is not None:
            project_id = await queries.find_project_by_payment_intent(
                conn, payment_intent_id=payment_intent
            )
        record = {
            "event_id": event.event_id,
            "event_type": event.event_type,
            "stripe_created_at": event.created,
            "livemode": event.livemode,
            "received_at": received_at,
            "project_id": project_id,
        }
        if not handled or project_id is None:
            outcome = "ignored" if not handled else "unknown_project"
            return await _record_only(conn, queries, event, record, outcome)

        payment_intent_id, amount, currency = payment_details(event)
        change = {
            "payment_intent_id": payment_intent_id,
            "amount_total": amount,
            "currency": currency,
            "request_id": request_id_var.get(),
            "actor": actor_var.get(),
        }
        moves = moves_for(event.event_type, event.obj)
        # One statement: row lock, decision, event record, status change, audit row.
        row = await queries.apply_event(
            conn,
            statuses=moves.statuses,
            to_if_current_session=moves.to_if_current_session,
            to_otherwise=moves.to_otherwise,
            event_session_id=moves.event_session_id,
            **record,
            **change,
        )
    if row["found_status"] is None:  # nothing was written
        return await _apply_to_new_project(pool, queries, event, record, change)
    if row["event_id"] is None:
        return EventResult(event.event_id, event.event_type, True, "duplicate")
    if row["outcome"] != "applied":
        return EventResult(event.event_id, event.event_type, False, row["outcome"])
    if not row["changed"]:
        # Cannot happen: the statement moves the row it has locked. Should it ever, the event
        # is recorded as applied without a change, and this error is what says so.
        raise RuntimeError(f"event {event.event_id} was recorded but its project did not move")
    status_change = StatusChange(project_id, row["found_status"], row["to_status"])
    log_change(status_change, f"stripe_event:{event.event_id}")
    return EventResult(event.event_id, event.event_type, False, "applied", status_change)


async def _record_only(
    conn: asyncpg.Connection,
    queries: Queries,
    event: StripeEvent,
    record: Mapping[str, object],
    outcome: str,
) -> EventResult:
    """An event that changes no status is only recorded, once."""
    if await queries.record_event(conn, outcome=outcome, **record) is None:
        return EventResult(event.event_id, event.event_type, True, "duplicate")
    return EventResult(event.event_id, event.event_type, False, outcome)


async def _apply_to_new_project(
    pool: asyncpg.Pool,
    queries: Queries,
    event: StripeEvent,
    record: Mapping[str, object],
    change: Mapping[str, object],
) -> EventResult:
    """An event about a project with no row yet (paid without a checkout through this
    service, or an event that overtook the checkout's own write): the event record, the new
    row and its audit row, in a transaction that rolls back if the row appeared meanwhile.
    An event with no edge from "no row" is only recorded, as unchanged."""
    target = next_status(event.event_type, event.obj, None, None)
    if target is None:
        async with connection(pool) as conn:
            return await _record_only(conn, queries, event, record, "unchanged")
    session_id = event.obj.get("id") if event.event_type in CHECKOUT_SESSION_TYPES else None
    async with transaction(pool) as conn:
        row = await queries.apply_event_to_new_project(
            conn,
            to_status=target,
            checkout_session_id=session_id if isinstance(session_id, str) else None,
            **record,
            **change,
        )
        if row["event_id"] is None:
            return EventResult(event.event_id, event.event_type, True, "duplicate")
        if not row["changed"]:
            raise _ProjectAppeared  # rolls the event record back; decided again on the row
    project_id = str(record["project_id"])
    status_change = StatusChange(project_id, None, target)
    log_change(status_change, f"stripe_event:{event.event_id}")
    return EventResult(event.event_id, event.event_type, False, "applied", status_change)


def event_summary(result: EventResult) -> Mapping[str, object]:
    """What the webhook answers Stripe: never more than it needs."""
    if result.duplicate:
        return {"received": True, "duplicate": True}
    return {"received": True}
