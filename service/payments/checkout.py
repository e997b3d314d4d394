"""Start a checkout: the project's one open Stripe Checkout Session.

Never holds a connection or a lock while it waits for Stripe.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from service.config import Settings
from service.db import Queries
from service.errors import CheckoutBusy, DatabaseUnavailable, ProjectNotPayable, StripeFailed
from service.logs import actor_var, request_id_var
from service.payments.common import (
    StatusChange,
    connection,
    log,
    log_change,
    transaction,
    validate_project_id,
)
from service.payments.model import NOT_PAYABLE, AuditCause, PaymentStatus
from service.payments.outbox import Outbox
from service.payments.session_reads import store_session_read
from service.stripe_gateway import CheckoutSession, StripeGateway

# An open session this close to expiry is not handed out again: the buyer needs time to pay.
# It is expired in Stripe before another replaces it, so that it can never be paid too.
REUSE_MARGIN = timedelta(minutes=5)
# Stripe refuses an expires_at less than 30 minutes after it receives the request.
STRIPE_MIN_AHEAD = timedelta(minutes=30)
# How far this machine's clock may be behind Stripe's.
CLOCK_SKEW = timedelta(seconds=60)
# How long a replica is presumed to be calling Stripe for an attempt it claimed. Short, so
# that a replica dying mid-call wedges nothing: after it, the next checkout re-sends the very
# same request with the same Idempotency-Key. Should the first still be in flight, Stripe
# answers 409 idempotency_key_in_use and the re-sender waits and tries again; when it is done,
# Stripe hands back the session it made. One session either way.
LEASE = timedelta(seconds=2.5)
# How often a checkout waiting on another replica's Stripe call looks again.
WAIT_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class CheckoutResult:
    checkout_url: str
    session_id: str
    expires_at: int
    created: bool = False  # made in Stripe by this call, rather than an open one reused


@dataclass(frozen=True)
class _Attempt:
    """One request for a session, claimed: re-sent to the letter (same key, same expiry)
    until Stripe answers it."""

    idempotency_key: str
    expires_at: datetime


@dataclass(frozen=True)
class _Wait:
    """Another caller's request for the project's session is in flight: look again soon."""


@dataclass(frozen=True)
class _Supersede:
    """The project's session may still be open but is near its expiry: expire it first."""

    session_id: str


async def start_checkout(
    pool: asyncpg.Pool,
    queries: Queries,
    gateway: StripeGateway,
    settings: Settings,
    project_id: str,
    outbox: Outbox | None = None,
) -> CheckoutResult:
    """The project's one open Checkout Session, created in Stripe only when there is none.

    Checkouts for one project take turns through an advisory lock, held only for the short
    claim. The claim leaves a committed attempt row (idempotency key + expiry) before Stripe
    is called, so if this replica dies mid-call the next checkout re-sends the very same
    request and Stripe hands back the session it already made.
    """
    validate_project_id(project_id)
    deadline = time.monotonic() + settings.stripe_call_budget_seconds + 5.0
    first = await _claim_first_checkout(pool, queries, settings, project_id)
    if first is not None:
        session = await _create_in_stripe(pool, queries, gateway, settings, project_id, first)
        stored = await _store_session(pool, queries, project_id, first, session, outbox)
        if stored is not None:
            return stored
    while True:
        async with transaction(pool) as conn:
            step = await _claim_checkout(conn, queries, settings, project_id)
        if isinstance(step, CheckoutResult):
            return step
        if time.monotonic() > deadline:
            raise CheckoutBusy("another request is still creating this project's checkout")
        if isinstance(step, _Wait):
            await asyncio.sleep(WAIT_POLL_SECONDS)
            continue
        if isinstance(step, _Supersede):
            await _expire_in_stripe(pool, queries, gateway, settings, step.session_id)
            continue  # decided again on what Stripe said: expired (a new one), or paid (409)
        try:
            session = await _create_in_stripe(pool, queries, gateway, settings, project_id, step)
        except StripeFailed as failure:
            if failure.code != "idempotency_key_in_use":
                raise
            await asyncio.sleep(WAIT_POLL_SECONDS)  # the same request is still in flight
            continue
        stored = await _store_session(pool, queries, project_id, step, session, outbox)
        if stored is not None:
            return stored


def _least_ahead(settings: Settings) -> timedelta:
    """How far ahead an attempt's expires_at must be when it is (re)sent, for Stripe to see it
    at least 30 minutes ahead after every retry of the SDK and a clock difference."""
    return STRIPE_MIN_AHEAD + timedelta(seconds=settings.stripe_call_budget_seconds) + CLOCK_SKEW


def _new_attempt(settings: Settings, project_id: str, now: datetime) -> _Attempt:
    ttl = timedelta(minutes=settings.checkout_session_ttl_minutes)
    # TTL 30 (Stripe's least) would arrive a little under 30 minutes ahead: lift it just enough,
    # with a minute to spare so that a prompt retry can still send the identical request.
    ahead = max(ttl, _least_ahead(settings) + timedelta(minutes=1))
    return _Attempt(
        idempotency_key=f"checkout-{project_id}-{uuid.uuid4().hex}",
        expires_at=(now + ahead).replace(microsecond=0),
    )


def _lease_until(now: datetime) -> datetime:
    return now + LEASE


async def _claim_first_checkout(
    pool: asyncpg.Pool, queries: Queries, settings: Settings, project_id: str
) -> _Attempt | None:
    """One statement for the common case, a project never seen before; None otherwise."""
    now = datetime.now(UTC)
    claim = _new_attempt(settings, project_id, now)
    async with connection(pool) as conn:
        key = await queries.claim_first_checkout(
            conn,
            project_id=project_id,
            idempotency_key=claim.idempotency_key,
            expires_at=claim.expires_at,
            lease_until=_lease_until(now),
        )
    return claim if key is not None else None


async def _claim_checkout(
    conn: asyncpg.Connection, queries: Queries, settings: Settings, project_id: str
) -> CheckoutResult | _Wait | _Supersede | _Attempt:
    await queries.lock_checkout(conn, project_id=project_id)
    now = datetime.now(UTC)
    # The attempt is read before the project: the fast path stores a first session without
    # this lock, in one statement, so an attempt seen stored here guarantees that the project
    # read next sees its session.
    attempt = await queries.get_checkout_attempt(conn, project_id=project_id)
    project = await queries.get_project_for_checkout(conn, project_id=project_id)
    if project is not None:
        if project["status"] in NOT_PAYABLE:
            raise ProjectNotPayable(f"the project is already {project['status']}")
        expires_at = project["checkout_expires_at"]
        if (
            project["status"] == PaymentStatus.PENDING
            and project["checkout_session_id"]
            and expires_at is not None
            and expires_at - now > REUSE_MARGIN
        ):
            return CheckoutResult(
                checkout_url=project["checkout_url"],
                session_id=project["checkout_session_id"],
                expires_at=int(expires_at.timestamp()),
            )

    # The attempt while its session is not stored (in flight, or interrupted), else None.
    unstored = attempt if attempt is not None and attempt["session_id"] is None else None
    if unstored is not None and unstored["lease_until"] > now:
        return _Wait()
    if unstored is not None and unstored["expires_at"] - now > _least_ahead(settings):
        # An earlier attempt got no answer (or its replica died): repeat it to the letter.
        claim = _Attempt(
            idempotency_key=unstored["idempotency_key"], expires_at=unstored["expires_at"]
        )
    elif (
        project is not None
        and project["status"] == PaymentStatus.PENDING
        and project["checkout_session_id"]
    ):
        # Its session is near (or past) its expiry and may still be payable in Stripe.
        return _Supersede(project["checkout_session_id"])
    else:
        claim = _new_attempt(settings, project_id, now)
    await queries.save_checkout_attempt(
        conn,
        project_id=project_id,
        idempotency_key=claim.idempotency_key,
        expires_at=claim.expires_at,
        lease_until=_lease_until(now),
    )
    return claim


async def _expire_in_stripe(
    pool: asyncpg.Pool,
    queries: Queries,
    gateway: StripeGateway,
    settings: Settings,
    session_id: str,
) -> None:
    """Expire the session about to be replaced, and store what Stripe says it now is: expired,
    or (it could not be expired) complete, read from Stripe, through the one derivation. A
    Stripe failure stops the checkout here (502): no new session while the old may be paid."""
    session = await gateway.expire_checkout_session(session_id)
    if session is None:  # not open any more: complete (paid, or a delayed payment) or expired
        session = await gateway.retrieve_checkout_session(session_id)
    stored = await store_session_read(
        pool,
        queries,
        session,
        session_id,
        livemode=settings.stripe_livemode,
        cause=AuditCause.API_CHECKOUT,
    )
    if stored is None:
        raise StripeFailed("Stripe says the session cannot be expired, yet does not say why")


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
) -> CheckoutSession:
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
    return session


async def _end_attempt(
    pool: asyncpg.Pool, queries: Queries, project_id: str, attempt: _Attempt, *, keep: bool
) -> None:
    """After a failed call: forget the attempt if Stripe answered, else free it for a retry."""
    try:
        async with transaction(pool) as conn:
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
    session: CheckoutSession,
    outbox: Outbox | None,
) -> CheckoutResult | None:
    """Store the new session as the service's and the project's current one and settle the
    status, in one statement; None if another caller took the attempt over. A project that
    meanwhile came to hold money (or await a delayed payment) refuses it: the session stays
    recorded as the service's, so a payment on it is caught as a duplicate."""
    async with connection(pool) as conn:
        row = await queries.store_checkout_session(
            conn,
            project_id=project_id,
            idempotency_key=attempt.idempotency_key,
            expires_at=datetime.fromtimestamp(session.expires_at, UTC),
            session_id=session.session_id,
            checkout_url=session.url,
            amount_total=session.amount_total,
            currency=session.currency,
            request_id=request_id_var.get(),
            actor=actor_var.get(),
        )
    assert row is not None  # store_checkout_session() returns one row, always
    if not row["stored"]:
        return None
    if row["to_status"] != row["from_status"]:
        log_change(StatusChange.of_row(project_id, row), str(AuditCause.API_CHECKOUT))
    if row["new_actions"] and outbox is not None:
        outbox.schedule(project_id)  # the refused session's expiry, owed to Stripe
    if row["refused"]:
        raise ProjectNotPayable(f"the project is already {row['to_status']}")
    if row["to_status"] != PaymentStatus.PENDING:
        # Its facts arrived before it was stored (the answer was lost, or a replica died):
        # the session is over (expired, failed, refunded); the caller makes a new one.
        return None
    return CheckoutResult(
        checkout_url=session.url,
        session_id=session.session_id,
        expires_at=session.expires_at,
        created=True,
    )
