"""POST /api/checkout: one open Stripe Checkout Session per project, asked for exactly right."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flows import bring_to, deliver, history, status_of
from helpers import PRICE_ID, ServiceClient, StripeStandIn, event_for, new_id

from service import db
from service.config import Settings
from service.errors import StripeFailed
from service.handlers import AppContext
from service.payments import checkout_params, start_checkout


def creates(stripe_api: StripeStandIn) -> list[Any]:
    return [
        r
        for r in stripe_api.state.requests
        if r.method == "POST" and r.path == "/v1/checkout/sessions"
    ]


async def test_checkout_opens_a_stripe_session_for_the_project(
    client: ServiceClient, ctx: AppContext, stripe_api: StripeStandIn, test_queries: db.Queries
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
    assert (row["amount_total"], row["currency"]) == (session["amount_total"], "usd")
    assert row["checkout_session_id"] == body["session_id"]


async def test_stripe_is_asked_for_exactly_the_contracted_session(
    client: ServiceClient, stripe_api: StripeStandIn, settings: Settings
) -> None:
    project = new_id()
    body = (await client.checkout(project)).json()
    [request] = creates(stripe_api)
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
    assert len(creates(stripe_api)) == 1


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


async def near_expiry(ctx: AppContext, test_queries: db.Queries, project: str) -> None:
    """Pretend the project's open session expires in four minutes (within REUSE_MARGIN)."""
    async with ctx.pool.acquire() as conn:
        await test_queries.move_checkout_expiry(
            conn, project_id=project, expires_at=datetime.now(UTC) + timedelta(minutes=4)
        )


async def test_a_session_close_to_expiry_is_expired_in_stripe_before_it_is_replaced(
    client: ServiceClient, ctx: AppContext, stripe_api: StripeStandIn, test_queries: db.Queries
) -> None:
    project = new_id()
    first = (await client.checkout(project)).json()
    await near_expiry(ctx, test_queries, project)
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
    test_queries: db.Queries,
    complete: str,
    expected: str,
) -> None:
    """The buyer paid in the first tab but its webhook has not arrived: expiring fails (the
    session is complete), the service reads it and learns the payment: 409, no new session."""
    project = new_id()
    first = (await client.checkout(project)).json()
    stripe_api.state.complete_session(first["session_id"], payment_status=complete)
    await near_expiry(ctx, test_queries, project)
    again = await client.checkout(project)
    assert again.code == 409, again.body
    assert expected in again.json()["error"]
    assert stripe_api.state.create_calls == 1
    assert await status_of(client, project) == expected


async def test_stripe_failing_on_expire_answers_502_and_makes_no_new_session(
    client: ServiceClient, ctx: AppContext, stripe_api: StripeStandIn, test_queries: db.Queries
) -> None:
    project = new_id()
    first = (await client.checkout(project)).json()
    await near_expiry(ctx, test_queries, project)
    stripe_api.state.faults.fail_next(5, status=500, path_prefix="/v1/checkout/sessions/")
    again = await client.checkout(project)
    assert again.code == 502, again.body
    assert stripe_api.state.create_calls == 1
    assert stripe_api.state.sessions[first["session_id"]]["status"] == "open"
    assert await status_of(client, project) == "pending"


async def test_two_tabs_can_never_both_pay(
    client: ServiceClient, ctx: AppContext, stripe_api: StripeStandIn, test_queries: db.Queries
) -> None:
    """Tab 1's session is near its expiry when tab 2 checks out: tab 1's session is expired in
    Stripe first, so paying it is refused by Stripe; only tab 2's can be paid."""
    project = new_id()
    tab1 = (await client.checkout(project)).json()
    await near_expiry(ctx, test_queries, project)
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


# --- bad input: a clear 400/413 and nothing changed -------------------------------------


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "JSON object"),
        (b"", "JSON object"),
        (b"[1, 2]", "JSON object"),
        (b'"proj_1"', "JSON object"),
        (b"{}", "required"),
        (b'{"project": "proj_1"}', "required"),
        (b'{"project_id": 42}', "string"),
        (b'{"project_id": null}', "string"),
        (b'{"project_id": ["proj_1"]}', "string"),
        (b'{"project_id": ""}', "1-64"),
        (json.dumps({"project_id": "p" * 65}).encode(), "1-64"),
        (b'{"project_id": "proj 1"}', "1-64"),
        (b'{"project_id": "proj/../1"}', "1-64"),
        (b'{"project_id": "proj\\u00e91"}', "1-64"),
        (b'{"project_id": "proj_1\\n"}', "1-64"),
        (b"\xff\xfe\x00", "JSON object"),
        (b'{"project_id": ' * 1000, "JSON object"),
        (b"[" * 5000 + b"]" * 5000, "JSON object"),
    ],
)
async def test_malformed_checkout_request_is_refused_with_400(
    client: ServiceClient, stripe_api: StripeStandIn, body: bytes, fragment: str
) -> None:
    response = await client.request("POST", "/api/checkout", body)
    assert response.code == 400
    assert fragment in response.json()["error"]
    assert stripe_api.state.create_calls == 0


async def test_a_64_character_id_is_accepted(client: ServiceClient) -> None:
    project = ("p" * 48 + new_id("")[:16])[:64]
    assert len(project) == 64
    assert (await client.checkout(project)).code == 200


async def test_body_over_16_kib_is_refused_with_413(
    client: ServiceClient, stripe_api: StripeStandIn
) -> None:
    project = new_id()
    body = json.dumps({"project_id": project, "padding": "x" * (17 * 1024)})
    response = await client.request("POST", "/api/checkout", body)
    assert response.code == 413
    assert "error" in response.json()
    assert stripe_api.state.create_calls == 0
    assert await status_of(client, project) is None


# --- Stripe failing: 502 in bounded time, nothing half-done -----------------------------


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
    client: ServiceClient, stripe_api: StripeStandIn, ctx: AppContext, test_queries: db.Queries
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
    keys = {r.idempotency_key for r in creates(stripe_api)}
    params = {json.dumps(r.params, sort_keys=True) for r in creates(stripe_api)}
    assert len(keys) == 1
    assert len(params) == 1


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
    async with ctx.pool.acquire() as conn:
        await ctx.queries.save_checkout_attempt(
            conn,
            project_id=project,
            idempotency_key=key,
            expires_at=expires_at,
            lease_until=datetime.now(UTC) - timedelta(seconds=1),
        )
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
    async with ctx.pool.acquire() as conn:
        await ctx.queries.save_checkout_attempt(
            conn,
            project_id=project,
            idempotency_key=key,
            expires_at=expires_at,
            lease_until=datetime.now(UTC) + timedelta(seconds=1),
        )
    waiting = asyncio.ensure_future(client.checkout(project))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    # The other replica's lease runs out without it storing anything: this one takes over
    # with the very same request.
    response = await waiting
    assert response.code == 200
    [request] = creates(stripe_api)
    assert request.idempotency_key == key
    assert request.params["expires_at"] == str(int(expires_at.timestamp()))


# --- CORS -------------------------------------------------------------------------------


async def test_preflight_from_an_allowed_origin_is_answered(client: ServiceClient) -> None:
    response = await client.request(
        "OPTIONS",
        "/api/checkout",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Origin" in response.headers["Vary"]


async def test_preflight_from_another_origin_is_refused(client: ServiceClient) -> None:
    response = await client.request(
        "OPTIONS",
        "/api/checkout",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.code == 403
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_only_listed_origins_get_cors_headers(client: ServiceClient) -> None:
    allowed = await client.checkout(new_id(), headers={"Origin": "https://app.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
    other = await client.checkout(new_id(), headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


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
