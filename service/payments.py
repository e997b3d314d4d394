"""The domain: start a checkout, apply a Stripe event, report a project's payment status.

Each use case runs its database work in short transactions on a connection taken from the
pool, and never holds a connection or a lock while it waits for Stripe.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from service.config import Settings
from service.db import Queries, is_unavailable
from service.errors import (
    CheckoutBusy,
    DatabaseUnavailable,
    InvalidProjectId,
    ProjectNotFound,
    ProjectNotPayable,
    StripeFailed,
)
from service.logs import request_id_var
from service.stripe_gateway import StripeGateway
from service.transitions import (
    CHECKOUT_SESSION_TYPES,
    HANDLED_TYPES,
    NOT_PAYABLE,
    PENDING,
    next_status,
)
from service.webhook_events import (
    PROJECT_ID,
    StripeEvent,
    parse_event,
    payment_details,
    project_reference,
    verify_signature,
)

log = logging.getLogger("service.payments")

# An open session this close to expiry is not handed out again: the buyer needs time to pay.
REUSE_MARGIN = timedelta(minutes=5)
# Stripe refuses expires_at sooner than 30 minutes ahead; a retried attempt must still fit.
STRIPE_MIN_TTL = timedelta(minutes=30, seconds=60)
# How often a checkout waiting on another replica's Stripe call looks again.
WAIT_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class CheckoutResult:
    checkout_url: str
    session_id: str
    expires_at: int
    created: bool = False  # made in Stripe by this call, rather than an open one reused


@dataclass(frozen=True)
class ProjectPayment:
    project_id: str
    status: str
    updated_at: datetime


@dataclass(frozen=True)
class StatusChange:
    project_id: str
    from_status: str | None
    to_status: str


@dataclass(frozen=True)
class EventResult:
    event_id: str
    event_type: str
    duplicate: bool
    outcome: str
    change: StatusChange | None = None


def validate_project_id(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidProjectId("project_id must be a string")
    if not PROJECT_ID.fullmatch(value):
        raise InvalidProjectId(
            "project_id must be 1-64 characters of A-Z, a-z, 0-9, underscore or hyphen"
        )
    return value


@asynccontextmanager
async def _transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """One transaction on a pooled connection; an unreachable database becomes one error."""
    try:
        async with pool.acquire() as conn, conn.transaction():
            yield conn
    except Exception as error:
        if is_unavailable(error):
            raise DatabaseUnavailable("the database is unavailable") from error
        raise


def _log_change(change: StatusChange, cause: str) -> None:
    log.info(
        "payment status changed",
        extra={
            "fields": {
                "event": "status_change",
                "project_id": change.project_id,
                "from_status": change.from_status,
                "to_status": change.to_status,
                "cause": cause,
            }
        },
    )


# --- health -----------------------------------------------------------------------------


async def check_database(pool: asyncpg.Pool, queries: Queries, within_seconds: float) -> None:
    """Raise DatabaseUnavailable unless a pooled `SELECT 1` answers within `within_seconds`.

    The reason names only the kind of failure: exception texts can carry host and user.
    """

    async def ping() -> None:
        async with pool.acquire() as conn:
            await queries.ping(conn)

    try:
        await asyncio.wait_for(ping(), within_seconds)
    except TimeoutError:
        raise DatabaseUnavailable(
            f"database unavailable: no answer within {within_seconds:g} s"
        ) from None
    except Exception as error:
        if is_unavailable(error) or isinstance(error, asyncpg.PostgresError):
            kind = type(error).__name__
            raise DatabaseUnavailable(f"database unavailable: {kind}") from None
        raise


# --- status -----------------------------------------------------------------------------


async def payment_status(
    pool: asyncpg.Pool,
    queries: Queries,
    gateway: StripeGateway,
    settings: Settings,
    project_id: str,
) -> ProjectPayment:
    """The project's status. A pending project's session is also read from Stripe (at most
    once per STRIPE_CONFIRM_INTERVAL_SECONDS, across replicas), because the buyer may land
    on the success page before the webhook does; what Stripe says is applied through the
    same status table, and the webhook arriving later is a no-op."""
    validate_project_id(project_id)
    async with _transaction(pool) as conn:
        row = await queries.get_project_payment(conn, project_id=project_id)
    if row is None:
        raise ProjectNotFound("no checkout was ever started for this project")
    confirm = row["status"] == PENDING and settings.stripe_confirm_interval_seconds > 0
    if confirm and await _confirm_with_stripe(pool, queries, gateway, settings, project_id):
        async with _transaction(pool) as conn:
            row = await queries.get_project_payment(conn, project_id=project_id)
    return ProjectPayment(row["project_id"], row["status"], row["updated_at"])


async def _confirm_with_stripe(
    pool: asyncpg.Pool,
    queries: Queries,
    gateway: StripeGateway,
    settings: Settings,
    project_id: str,
) -> bool:
    """True when Stripe's view of the session changed the project's status."""
    checked_before = datetime.now(UTC) - timedelta(seconds=settings.stripe_confirm_interval_seconds)
    async with _transaction(pool) as conn:
        session_id = await queries.claim_stripe_check(
            conn, project_id=project_id, checked_before=checked_before
        )
    if session_id is None:
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
    async with _transaction(pool) as conn:
        change = await _apply_confirmation(conn, queries, as_event, project_id)
    if change is not None:
        _log_change(change, "api_confirmation")
    return change is not None


# --- checkout ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Attempt:
    idempotency_key: str
    expires_at: datetime


@dataclass(frozen=True)
class _Wait:
    pass


async def start_checkout(
    pool: asyncpg.Pool,
    queries: Queries,
    gateway: StripeGateway,
    settings: Settings,
    project_id: str,
) -> CheckoutResult:
    """The project's one open Checkout Session, created in Stripe only when there is none.

    Checkouts for one project take turns through an advisory lock, held only for the short
    claim. The claim leaves a committed attempt row (idempotency key + expiry) before Stripe
    is called, so if this replica dies mid-call the next checkout re-sends the very same
    request and Stripe hands back the session it already made.
    """
    validate_project_id(project_id)
    deadline = time.monotonic() + settings.stripe_call_budget_seconds + 5.0
    while True:
        async with _transaction(pool) as conn:
            step = await _claim_checkout(conn, queries, settings, project_id)
        if isinstance(step, CheckoutResult):
            return step
        if isinstance(step, _Wait):
            if time.monotonic() > deadline:
                raise CheckoutBusy("another request is still creating this project's checkout")
            await asyncio.sleep(WAIT_POLL_SECONDS)
            continue
        session = await _create_in_stripe(pool, queries, gateway, settings, project_id, step)
        stored = await _store_session(pool, queries, project_id, step, session)
        if stored is not None:
            return stored


async def _claim_checkout(
    conn: asyncpg.Connection, queries: Queries, settings: Settings, project_id: str
) -> CheckoutResult | _Wait | _Attempt:
    await queries.lock_checkout(conn, project_id=project_id)
    now = datetime.now(UTC)
    project = await queries.get_project_for_checkout(conn, project_id=project_id)
    if project is not None:
        if project["status"] in NOT_PAYABLE:
            raise ProjectNotPayable(f"the project is already {project['status']}")
        expires_at = project["checkout_expires_at"]
        if (
            project["status"] == PENDING
            and project["checkout_session_id"]
            and expires_at is not None
            and expires_at - now > REUSE_MARGIN
        ):
            return CheckoutResult(
                project["checkout_url"], project["checkout_session_id"], int(expires_at.timestamp())
            )

    attempt = await queries.get_checkout_attempt(conn, project_id=project_id)
    if attempt is not None and attempt["lease_until"] > now:
        return _Wait()
    if attempt is not None and attempt["expires_at"] - now > STRIPE_MIN_TTL:
        # An earlier attempt got no answer (or its replica died): repeat it to the letter.
        claim = _Attempt(attempt["idempotency_key"], attempt["expires_at"])
    else:
        ttl = timedelta(minutes=settings.checkout_session_ttl_minutes)
        claim = _Attempt(
            f"checkout-{project_id}-{uuid.uuid4().hex}",
            (now + ttl).replace(microsecond=0),
        )
    lease = timedelta(seconds=settings.stripe_call_budget_seconds + 2.0)
    await queries.save_checkout_attempt(
        conn,
        project_id=project_id,
        idempotency_key=claim.idempotency_key,
        expires_at=claim.expires_at,
        lease_until=now + lease,
    )
    return claim


def checkout_params(settings: Settings, project_id: str, expires_at: datetime) -> dict[str, Any]:
    """Everything Stripe is asked for; identical on every retry of one attempt."""
    return {
        "mode": "payment",
        "line_items": [{"price": settings.stripe_price_id, "quantity": 1}],
        "success_url": settings.stripe_success_url,
        "cancel_url": settings.stripe_cancel_url,
        "client_reference_id": project_id,
        "metadata": {"project_id": project_id},
        "payment_intent_data": {"metadata": {"project_id": project_id}},
        "expires_at": int(expires_at.timestamp()),
    }


async def _create_in_stripe(
    pool: asyncpg.Pool,
    queries: Queries,
    gateway: StripeGateway,
    settings: Settings,
    project_id: str,
    attempt: _Attempt,
) -> CheckoutResult:
    params = checkout_params(settings, project_id, attempt.expires_at)
    try:
        session = await gateway.create_checkout_session(params, attempt.idempotency_key)
    except StripeFailed as failure:
        await _end_attempt(pool, queries, project_id, attempt, keep=failure.ambiguous)
        raise
    except BaseException:
        # Cancelled (client gone, shutdown): Stripe may have acted, so keep the key for a retry.
        await asyncio.shield(_end_attempt(pool, queries, project_id, attempt, keep=True))
        raise
    return CheckoutResult(session.url, session.session_id, session.expires_at, created=True)


async def _end_attempt(
    pool: asyncpg.Pool, queries: Queries, project_id: str, attempt: _Attempt, *, keep: bool
) -> None:
    """After a failed call: forget the attempt if Stripe answered, else free it for a retry."""
    try:
        async with _transaction(pool) as conn:
            if keep:
                await queries.save_checkout_attempt(
                    conn,
                    project_id=project_id,
                    idempotency_key=attempt.idempotency_key,
                    expires_at=attempt.expires_at,
                    lease_until=datetime.now(UTC),
                )
            else:
                await queries.delete_checkout_attempt(
                    conn, project_id=project_id, idempotency_key=attempt.idempotency_key
                )
    except DatabaseUnavailable:
        # The lease runs out by itself; the caller is told about Stripe, the real failure.
        log.warning(
            "could not release a checkout attempt", extra={"fields": {"project_id": project_id}}
        )


async def _store_session(
    pool: asyncpg.Pool,
    queries: Queries,
    project_id: str,
    attempt: _Attempt,
    session: CheckoutResult,
) -> CheckoutResult | None:
    """Point the project at its new session; None if another caller took the attempt over."""
    change: StatusChange | None = None
    refused: str | None = None
    async with _transaction(pool) as conn:
        await queries.lock_checkout(conn, project_id=project_id)
        current = await queries.get_checkout_attempt(conn, project_id=project_id)
        if current is None or current["idempotency_key"] != attempt.idempotency_key:
            return None
        expires_at = datetime.fromtimestamp(session.expires_at, UTC)
        while True:
            project = await queries.lock_project(conn, project_id=project_id)
            if project is not None:
                break
            created = await queries.insert_project(
                conn,
                project_id=project_id,
                status=PENDING,
                checkout_session_id=session.session_id,
                checkout_url=session.checkout_url,
                checkout_expires_at=expires_at,
                payment_intent_id=None,
                amount_total=None,
                currency=None,
            )
            if created is not None:
                break
        from_status = project["status"] if project is not None else None
        if from_status in NOT_PAYABLE:
            # A webhook paid the project while Stripe was being asked: the new session is
            # left to expire unused.
            refused = str(from_status)
        elif project is not None:
            await queries.set_checkout_session(
                conn,
                project_id=project_id,
                status=PENDING,
                checkout_session_id=session.session_id,
                checkout_url=session.checkout_url,
                checkout_expires_at=expires_at,
            )
        if refused is None and from_status != PENDING:
            change = StatusChange(project_id, from_status, PENDING)
            await queries.add_audit_row(
                conn,
                project_id=project_id,
                from_status=from_status,
                to_status=PENDING,
                cause="api_checkout",
                cause_event_id=None,
                request_id=request_id_var.get(),
            )
        await queries.delete_checkout_attempt(
            conn, project_id=project_id, idempotency_key=attempt.idempotency_key
        )
    if refused is not None:
        raise ProjectNotPayable(f"the project is already {refused}")
    if change is not None:
        _log_change(change, "api_checkout")
    return session


# --- webhooks ---------------------------------------------------------------------------


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
    async with _transaction(pool) as conn:
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
    _log_change(status_change, f"stripe_event:{event.event_id}")
    return EventResult(event.event_id, event.event_type, False, "applied", status_change)


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


def event_summary(result: EventResult) -> Mapping[str, object]:
    """What the webhook answers Stripe: never more than it needs."""
    if result.duplicate:
        return {"received": True, "duplicate": True}
    return {"received": True}
