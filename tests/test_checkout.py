"""POST /api/checkout: one open Stripe Checkout Session per project, asked for exactly right."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flows import bring_to, deliver, history, status_of
from helpers import PRICE_ID, ServiceClient, StripeStandIn, new_id, session_creations
from query_types import FixtureQueries

from service.config import Settings
from service.http.context import AppContext


async def test_checkout_opens_a_stripe_session_for_the_project(
    client: ServiceClient, ctx: AppContext, stripe_api: StripeStandIn, test_queries: FixtureQueries
) -> None:
    project = new_id()
    before = int(time.time())
    response = await client.checkout(project)
    assert response.code == 200, response.body
    body = response.json()
    assert set(body) == {"checkout_url", "session_id", "expires_at"}
    assert body["session_id"].startswith("cs_")
    session = stripe_api.state.sessions[body["session_id"]]
    assert body["checkout_url"] == session["url"]
    assert before + 3600 - 5 <= body["expires_at"] <= int(time.time()) + 3600
    assert await status_of(client, project) == "pending"
    [audit] = await history(ctx, project)
    assert (audit["from_status"], audit["to_status"], audit["cause"]) == (
        None,
        "pending",
        "api_checkout",
    )
    async with ctx.pool.acquire() as conn:
        row = await test_queries.get_project_row(conn, project_id=project)
    assert row is not None
    assert (row["amount_total"], row["currency"]) == (session["amount_total"], "usd")
    assert row["checkout_session_id"] == body["session_id"]


async def test_stripe_is_asked_for_exactly_the_contracted_session(
    client: ServiceClient, stripe_api: StripeStandIn, settings: Settings
) -> None:
    project = new_id()
    body = (await client.checkout(project)).json()
    [request] = session_creations(stripe_api)
    assert request.idempotency_key
    assert request.params == {
        "mode": "payment",
        "line_items[0][price]": PRICE_ID,
        "line_items[0][quantity]": "1",
        "success_url": settings.stripe_success_url,
        "cancel_url": settings.stripe_cancel_url,
        "client_reference_id": project,
        "metadata[project_id]": project,
        "payment_intent_data[metadata][project_id]": project,
        "expires_at": str(body["expires_at"]),
    }


async def test_a_repeated_checkout_returns_the_open_session_without_calling_stripe(
    client: ServiceClient, stripe_api: StripeStandIn
) -> None:
    project = new_id()
    first = (await client.checkout(project)).json()
    second = (await client.checkout(project)).json()
    assert second == first
    assert len(session_creations(stripe_api)) == 1


async def test_twenty_concurrent_checkouts_yield_one_session(
    client: ServiceClient, stripe_api: StripeStandIn, ctx: AppContext
) -> None:
    stripe_api.state.faults.delay_seconds = 0.3  # keep the first call in flight while others arrive
    project = new_id()
    responses = await asyncio.gather(*(client.checkout(project) for _ in range(20)))
    assert [r.code for r in responses] == [200] * 20
    assert len({r.json()["checkout_url"] for r in responses}) == 1
    assert stripe_api.state.create_calls == 1
    assert len(await history(ctx, project)) == 1


async def test_sixteen_checkouts_against_a_slow_stripe_run_concurrently(
    client: ServiceClient, stripe_api: StripeStandIn
) -> None:
    stripe_api.state.faults.delay_seconds = 1.0
    started = time.monotonic()
    responses = await asyncio.gather(*(client.checkout(new_id()) for _ in range(16)))
    elapsed = time.monotonic() - started
    assert [r.code for r in responses] == [200] * 16
    assert elapsed < 2.5, f"16 checkouts took {elapsed:.2f}s: something blocks the event loop"


async def checked_out_near_expiry(
    client: ServiceClient, ctx: AppContext, test_queries: FixtureQueries
) -> tuple[str, dict[str, Any]]:
    """A new project checked out, its open session pretended to expire in four minutes
    (within REUSE_MARGIN): the project and the checkout's answer."""
    project = new_id()
    first: dict[str, Any] = (await client.checkout(project)).json()
    async with ctx.pool.acquire() as conn:
        await test_queries.move_checkout_expiry(
            conn, project_id=project, expires_at=datetime.now(UTC) + timedelta(minutes=4)
        )
    return project, first


async def test_a_session_close_to_expiry_is_expired_in_stripe_before_it_is_replaced(
    client: ServiceClient, ctx: AppContext, stripe_api: StripeStandIn, test_queries: FixtureQueries
) -> None:
    project, first = await checked_out_near_expiry(client, ctx, test_queries)
    second = (await client.checkout(project)).json()
    assert second["session_id"] != first["session_id"]
    assert stripe_api.state.sessions[first["session_id"]]["status"] == "expired"
    calls = [(r.method, r.path) for r in stripe_api.state.requests if r.method == "POST"]
    expire = ("POST", f"/v1/checkout/sessions/{first['session_id']}/expire")
    assert calls == [("POST", "/v1/checkout/sessions"), expire, ("POST", "/v1/checkout/sessions")]
    assert await status_of(client, project) == "pending"
    assert [(r["to_status"], r["cause"]) for r in await history(ctx, project)] == [
        ("pending", "api_checkout"),
        ("expired", "api_checkout"),  # what Stripe said the old session now is
        ("pending", "api_checkout"),  # the new one
    ]


@pytest.mark.parametrize(("complete", "expected"), [("paid", "paid"), ("unpaid", "processing")])
async def test_a_near_expiry_session_already_paid_answers_409_and_makes_no_new_session(
    client: ServiceClient,
    ctx: AppContext,
    stripe_api: StripeStandIn,
    test_queries: FixtureQueries,
    complete: str,
    expected: str,
) -> None:
    """The buyer paid in the first tab but its webhook has not arrived: expiring fails (the
    session is complete), the service reads it and learns the payment: 409, no new session."""
    project, first = await checked_out_near_expiry(client, ctx, test_queries)
    stripe_api.state.complete_session(first["session_id"], payment_status=complete)
    again = await client.checkout(project)
    assert again.code == 409, again.body
    assert expected in again.json()["error"]
    assert stripe_api.state.create_calls == 1
    assert await status_of(client, project) == expected


async def test_stripe_failing_on_expire_answers_502_and_makes_no_new_session(
    client: ServiceClient, ctx: AppContext, stripe_api: StripeStandIn, test_queries: FixtureQueries
) -> None:
    project, first = await checked_out_near_expiry(client, ctx, test_queries)
    stripe_api.state.faults.fail_next(5, status=500, path_prefix="/v1/checkout/sessions/")
    again = await client.checkout(project)
    assert again.code == 502, again.body
    assert stripe_api.state.create_calls == 1
    assert stripe_api.state.sessions[first["session_id"]]["status"] == "open"
    assert await status_of(client, project) == "pending"


async def test_two_tabs_can_never_both_pay(
    client: ServiceClient, ctx: AppContext, stripe_api: StripeStandIn, test_queries: FixtureQueries
) -> None:
    """Tab 1's session is near its expiry when tab 2 checks out: tab 1's session is expired in
    Stripe first, so paying it is refused by Stripe; only tab 2's can be paid."""
    project, tab1 = await checked_out_near_expiry(client, ctx, test_queries)
    tab2 = (await client.checkout(project)).json()
    with pytest.raises(ValueError, match="expired"):
        stripe_api.state.complete_session(tab1["session_id"])
    stripe_api.state.complete_session(tab2["session_id"])
    for event in stripe_api.state.events:
        if event["type"] != "checkout.session.expired":
            await deliver(client, event)
    assert await status_of(client, project) == "paid"


@pytest.mark.parametrize("status", ["paid", "processing", "disputed"])
async def test_a_project_paid_processing_or_disputed_cannot_check_out(
    client: ServiceClient, stripe_api: StripeStandIn, status: str
) -> None:
    project = new_id()
    await bring_to(client, project, status)
    made = stripe_api.state.create_calls
    response = await client.checkout(project)
    assert response.code == 409
    assert status in response.json()["error"]
    assert stripe_api.state.create_calls == made
    assert await status_of(client, project) == status


@pytest.mark.parametrize("status", ["expired", "failed", "refunded"])
async def test_a_project_whose_payment_ended_can_check_out_again(
    client: ServiceClient, ctx: AppContext, status: str
) -> None:
    project = new_id()
    await bring_to(client, project, status)
    response = await client.checkout(project)
    assert response.code == 200, response.body
    assert await status_of(client, project) == "pending"
    last = (await history(ctx, project))[-1]
    assert (last["from_status"], last["to_status"], last["cause"]) == (
        status,
        "pending",
        "api_checkout",
    )
