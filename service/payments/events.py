"""Receive a Stripe event (a webhook delivery, or reconcile): record its fact, settle the status.

The data path reads straight down: verify the signature -> parse the event -> the fact it
tells (payments/facts.py) -> one statement that stores the fact once, re-derives the
project's status from all its facts and records the event with its outcome (queries/facts.sql
apply-fact).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from service.config import Settings
from service.db import Queries
from service.logs import actor_var, request_id_var
from service.payments.common import StatusChange, connection, log, log_change
from service.payments.facts import Fact, NoFact, fact_of_event
from service.payments.model import AuditCause, Outcome
from service.payments.outbox import Outbox
from service.webhook_events import StripeEvent, parse_event, verify_signature


@dataclass(frozen=True)
class EventResult:
    event_id: str
    event_type: str
    outcome: Outcome
    api_version: str | None = None

    @property
    def duplicate(self) -> bool:
        return self.outcome is Outcome.DUPLICATE


@dataclass(frozen=True)
class FactResult:
    """What storing one fact did to the project it belongs to (if any is known)."""

    outcome: Outcome
    project_id: str | None = None


async def receive_webhook(
    pool: asyncpg.Pool,
    queries: Queries,
    settings: Settings,
    payload: bytes,
    signature: str | None,
    received_at: datetime,
    outbox: Outbox | None = None,
) -> EventResult:
    """Verify a delivery, then apply it. Nothing is read from the database before the
    signature is proven."""
    verify_signature(
        payload, signature, settings.stripe_webhook_secrets, settings.webhook_tolerance_seconds
    )
    event = parse_event(payload)
    return await apply_event(
        pool, queries, event, received_at, livemode=settings.stripe_livemode, outbox=outbox
    )


async def apply_event(
    pool: asyncpg.Pool,
    queries: Queries,
    event: StripeEvent,
    received_at: datetime,
    *,
    livemode: bool,
    outbox: Outbox | None = None,
) -> EventResult:
    """Record the event once and let its fact count: the event record, the fact, any status
    change and its audit row commit together; a second delivery of the same id (even a
    concurrent one) changes nothing. What it made owed to Stripe (a duplicate's refund) is
    sent after the commit, by `outbox`."""
    fact = fact_of_event(event, livemode=livemode)
    if isinstance(fact, NoFact):
        return await _record_only(pool, queries, event, received_at, fact)
    result = await store_fact(
        pool,
        queries,
        fact,
        cause=AuditCause.STRIPE_EVENT,
        event=event,
        received_at=received_at,
        outbox=outbox,
    )
    if result.outcome is Outcome.UNATTRIBUTED:
        # A Payment Link's session, another integration's charge, or an object whose session
        # is not stored yet: kept, and counted the moment its session becomes known.
        log.warning(
            "event names no session or payment of this service; kept, not counted",
            extra={"fields": _event_fields(event, fact)},
        )
    elif result.outcome is Outcome.UNCHANGED:
        log.info(
            "event changed no status",
            extra={
                "fields": _event_fields(event, fact)
                | {"project_id": result.project_id, "reason": "the derived status is the same"}
            },
        )
    return EventResult(
        event_id=event.event_id,
        event_type=event.event_type,
        outcome=result.outcome,
        api_version=event.api_version,
    )


async def store_fact(
    pool: asyncpg.Pool,
    queries: Queries,
    fact: Fact,
    *,
    cause: AuditCause,
    event: StripeEvent | None = None,
    received_at: datetime | None = None,
    outbox: Outbox | None = None,
) -> FactResult:
    """Store one fact (from an event, or read from Stripe when `event` is None) and settle the
    status of the project it belongs to, in one statement. The one way a status changes
    after a checkout stored its session."""
    async with connection(pool) as conn:
        row = await queries.apply_fact(
            conn,
            event_id=event.event_id if event else None,
            event_type=event.event_type if event else None,
            event_created_at=event.created if event else None,
            livemode=event.livemode if event else None,
            received_at=received_at,
            object_kind=str(fact.kind),
            object_id=fact.object_id,
            payment_intent_id=fact.payment_intent_id,
            state=str(fact.state),
            stage=int(fact.stage),
            amount=fact.amount,
            amount_refunded=fact.amount_refunded,
            fact_created_at=fact.created,
            cause=str(cause),
            request_id=request_id_var.get(),
            actor=actor_var.get(),
        )
    assert row is not None  # apply_stripe_fact() returns one row, always
    if row["duplicate"]:
        return FactResult(outcome=Outcome.DUPLICATE)
    outcome = Outcome(row["outcome"])
    if outcome is Outcome.APPLIED:
        change = StatusChange.of_row(row["project_id"], row)
        log_change(change, f"{cause}:{event.event_id}" if event else str(cause))
    if row["new_actions"]:
        log.warning(
            "duplicate payment: a refund is owed",
            extra={"fields": {"event": "duplicate_payment", "project_id": row["project_id"]}},
        )
        if outbox is not None:
            outbox.schedule(row["project_id"])
    return FactResult(outcome=outcome, project_id=row["project_id"])


async def _record_only(
    pool: asyncpg.Pool,
    queries: Queries,
    event: StripeEvent,
    received_at: datetime,
    no_fact: NoFact,
) -> EventResult:
    """An event that tells no fact the service may count is only recorded, once."""
    async with connection(pool) as conn:
        recorded = await queries.record_event(
            conn,
            event_id=event.event_id,
            event_type=event.event_type,
            stripe_created_at=event.created,
            livemode=event.livemode,
            project_id=None,
            outcome=str(no_fact.outcome),
            received_at=received_at,
        )
    if recorded is None:
        return EventResult(
            event_id=event.event_id, event_type=event.event_type, outcome=Outcome.DUPLICATE
        )
    if no_fact.outcome is not Outcome.IGNORED:
        log.warning(
            "event recorded and not counted",
            extra={
                "fields": {
                    "event_id": event.event_id,
                    "event_type": event.event_type,
                    "outcome": str(no_fact.outcome),
                    "reason": no_fact.reason,
                }
            },
        )
    return EventResult(
        event_id=event.event_id,
        event_type=event.event_type,
        outcome=no_fact.outcome,
        api_version=event.api_version,
    )


def _event_fields(event: StripeEvent, fact: Fact) -> dict[str, object]:
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "object_kind": str(fact.kind),
        "object_id": fact.object_id,
        "payment_intent_id": fact.payment_intent_id,
    }


class ApiVersionWatch:
    """Logs, once per version, events rendered in another Stripe API version than the one the
    service is built for: the webhook endpoint's version should be aligned with it."""

    def __init__(self, expected: str) -> None:
        self._expected = expected
        self._seen: set[str] = set()

    def note(self, version: str | None) -> None:
        if version is None or version == self._expected or version in self._seen:
            return
        self._seen.add(version)
        log.warning(
            "an event of another Stripe API version: align the webhook endpoint's version",
            extra={
                "fields": {
                    "event": "api_version_mismatch",
                    "api_version": version,
                    "expected": self._expected,
                }
            },
        )


def event_summary(result: EventResult) -> Mapping[str, object]:
    """What the webhook answers Stripe: never more than it needs."""
    if result.duplicate:
        return {"received": True, "duplicate": True}
    return {"received": True}
