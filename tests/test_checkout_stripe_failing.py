"""POST /api/checkout while Stripe fails, hangs or loses its answer: a 502 in bounded time,
nothing half-done, and the retry (or another replica) ends with the one session Stripe made."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flows import deliver, history, status_of
from helpers import ServiceClient, StripeStandIn, event_for, new_id, session_creations
from query_types import FixtureQueries

from service.config import Settings
from service.errors import StripeFailed
from service.http.context import AppContext
from service.payments import checkout_params, start_checkout


@pytest.fixture
def wrong_price(make_ctx: Any, settings: Settings) -> AppContext:
    ctx: AppContext = make_ctx(replace(settings, stripe_price_id="price_DoesNotExist"))
    return ctx


async def test_stripe_refusing_the_request_is_a_502_and_changes_nothing(
    client: ServiceClient, wrong_price: AppContext
) -> None:
    wrong = wrong_price
    project = new_id()
    with pytest.raises(StripeFailed, match="refused"):
        await start_checkout(wrong.pool, wrong.queries, wrong.gateway, wrong.settings, project)
    assert await status_of(client, project) is None


async def test_stripe_4xx_through_http_is_a_502_saying_it_refused(
    client: ServiceClient, stripe_api: StripeStandIn
) -> None:
    stripe_api.state.faults.fail_next(1, status=400, error_type="invalid_request_error")
    project = new_id()
    response = await client.checkout(project)
    assert response.code == 502
    assert "refused" in response.json()["error"]
    assert await status_of(client, project) is None


async def test_stripe_5xx_is_a_502_and_a_retry_then_succeeds(
    client: ServiceClient, stripe_api: StripeStandIn, ctx: AppContext, test_queries: FixtureQueries
) -> None:
    stripe_api.state.faults.fail_next(2, status=500)  # the SDK retries once in these tests
    project = new_id()
    response = await client.checkout(project)
    assert response.code == 502
    assert "failed" in response.json()["error"]
    assert await status_of(client, project) is None
    retry = await client.checkout(project)
    assert retry.code == 200
    assert stripe_api.state.create_calls == 1


async def test_stripe_hanging_is_a_502_within_the_time_budget(
    client: ServiceClient, stripe_api: StripeStandIn, settings: Settings
) -> None:
    stripe_api.state.faults.hang_next(5)
    project = new_id()
    started = time.monotonic()
    response = await client.checkout(project)
    elapsed = time.monotonic() - started
    assert response.code == 502
    assert "could not be reached" in response.json()["error"]
    assert elapsed < settings.stripe_call_budget_seconds + 1
    assert await status_of(client, project) is None


async def test_after_a_timeout_the_retry_resends_the_same_idempotency_key(
    client: ServiceClient, stripe_api: StripeStandIn
) -> None:
    stripe_api.state.faults.hang_next(2)
    project = new_id()
    assert (await client.checkout(project)).code == 502
    assert (await client.checkout(project)).code == 200
    keys = {r.idempotency_key for r in session_creations(stripe_api)}
    params = {json.dumps(r.params, sort_keys=True) for r in session_creations(stripe_api)}
    assert len(keys) == 1
    assert len(params) == 1


async def another_replicas_attempt(
    ctx: AppContext, project: str, key: str, expires_at: datetime, lease_seconds: float
) -> None:
    """Stores the checkout attempt another replica made, its lease running out in
    `lease_seconds` (already run out when negative)."""
    async with ctx.pool.acquire() as conn:
        await ctx.queries.save_checkout_attempt(
            conn,
            project_id=project,
            idempotency_key=key,
            expires_at=expires_at,
            lease_until=datetime.now(UTC) + timedelta(seconds=lease_seconds),
        )


async def test_a_replica_that_died_mid_call_does_not_cause_a_second_session(
    client: ServiceClient, ctx: AppContext, stripe_api: StripeStandIn, settings: Settings
) -> None:
    """The dead replica's attempt is in the database and its session exists in Stripe, but
    the session was never stored: the next checkout must get that same session back."""
    project = new_id()
    key = f"checkout-{project}-dead"
    expires_at = (datetime.now(UTC) + timedelta(minutes=60)).replace(microsecond=0)
    orphan = await ctx.gateway.create_checkout_session(
        checkout_params(settings, project, expires_at), key
    )
    await another_replicas_attempt(ctx, project, key, expires_at, lease_seconds=-1)
    response = await client.checkout(project)
    assert response.code == 200
    assert response.json()["session_id"] == orphan.session_id
    assert stripe_api.state.create_calls == 1


async def test_a_checkout_waits_for_another_replicas_call_in_flight(
    client: ServiceClient, ctx: AppContext, stripe_api: StripeStandIn, settings: Settings
) -> None:
    """While another replica holds the lease, a checkout waits for its session instead of
    calling Stripe itself."""
    project = new_id()
    key = f"checkout-{project}-other"
    expires_at = (datetime.now(UTC) + timedelta(minutes=60)).replace(microsecond=0)
    await another_replicas_attempt(ctx, project, key, expires_at, lease_seconds=1)
    waiting = asyncio.ensure_future(client.checkout(project))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    # The other replica's lease runs out without it storing anything: this one takes over
    # with the very same request.
    response = await waiting
    assert response.code == 200
    [request] = session_creations(stripe_api)
    assert request.idempotency_key == key
    assert request.params["expires_at"] == str(int(expires_at.timestamp()))


@pytest.mark.parametrize(
    ("early", "expected"),
    [
        (["checkout.session.completed.paid"], "paid"),
        (["checkout.session.completed.unpaid"], "processing"),
        (["checkout.session.completed.paid", "charge.dispute.created"], "disputed"),
    ],
)
async def test_events_of_a_session_not_yet_stored_count_once_the_retried_checkout_stores_it(
    client: ServiceClient,
    ctx: AppContext,
    stripe_api: StripeStandIn,
    early: list[str],
    expected: str,
) -> None:
    """Stripe made the session but its answer never arrived (the SDK's retry lost too): the
    buyer pays and the events arrive before the service stored the session, so they name a
    session it does not know yet and are kept. The retried checkout re-sends the same
    request, Stripe hands back that session, and storing it lets the kept events count, in
    the same transaction: the project is `expected` and the checkout answers 409."""
    project = new_id()
    stripe_api.state.faults.lose_answer_next(2, path_prefix="/v1/checkout/sessions")
    lost = await client.checkout(project)
    assert lost.code == 502, lost.body
    [session] = list(stripe_api.state.sessions)
    pi = new_id("pi")
    for name in early:
        project_field = project if name.startswith("checkout.session.") else None
        body = await deliver(
            client, event_for(name, project_field, session_id=session, payment_intent=pi)
        )
        assert body == {"received": True}
    assert await status_of(client, project) is None  # not stored yet: no project row

    retried = await client.checkout(project)
    assert retried.code == 409, retried.body
    assert expected in retried.json()["error"]
    assert stripe_api.state.create_calls == 1  # the retry was Stripe's replay, not a new one
    assert await status_of(client, project) == expected
    rows = await history(ctx, project)
    assert [(r["from_status"], r["to_status"], r["cause"]) for r in rows] == [
        (None, expected, "api_checkout")
    ]


async def test_a_session_stored_after_its_expiry_event_is_replaced_by_a_new_one(
    client: ServiceClient, ctx: AppContext, stripe_api: StripeStandIn
) -> None:
    """The lost session expired before the retry stored it: storing it settles `expired`, and
    the same checkout goes on to make a new session, which it hands out."""
    project = new_id()
    stripe_api.state.faults.lose_answer_next(2, path_prefix="/v1/checkout/sessions")
    assert (await client.checkout(project)).code == 502
    [session] = list(stripe_api.state.sessions)
    await deliver(client, event_for("checkout.session.expired", project, session_id=session))
    retried = await client.checkout(project)
    assert retried.code == 200, retried.body
    assert retried.json()["session_id"] != session
    assert stripe_api.state.create_calls == 2
    assert await status_of(client, project) == "pending"
    assert [(r["from_status"], r["to_status"]) for r in await history(ctx, project)] == [
        (None, "expired"),
        ("expired", "pending"),
    ]
