"""SPEC "Duplicate payments", the pinned API version, a safe TTL and the sweep: a project is
sold once, whatever the delivery order, the retries or the replicas, and the service heals by
itself. Real PostgreSQL, the real SDK against the sandbox, Stripe-signed events."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import pytest
from flows import checked_out, deliver, history, refunds_for, status_of, two_paid_sessions
from helpers import ServiceClient, StripeStandIn, event_for, new_id
from query_types import FixtureQueries

from service.config import Settings
from service.http.context import AppContext
from service.payments.sweep import Sweeper, SweepResult


@pytest.mark.parametrize("order", ["first paid first", "second paid first"])
async def test_a_duplicate_payment_is_refunded_once_whatever_the_order(
    client: ServiceClient,
    ctx: AppContext,
    stripe_api: StripeStandIn,
    test_queries: FixtureQueries,
    order: str,
) -> None:
    project = new_id()
    paid_first, paid_second = await two_paid_sessions(
        client, ctx, stripe_api, test_queries, project
    )
    deliveries = (
        [paid_first, paid_second] if order == "first paid first" else [paid_second, paid_first]
    )
    for event in deliveries + deliveries:  # and every one delivered again
        await deliver(client, event)
    await ctx.outbox.drain()

    [refund] = refunds_for(stripe_api, project)
    duplicate_pi = paid_second["data"]["object"]["payment_intent"]
    assert refund.refund["payment_intent"] == duplicate_pi  # the later payment, never the kept
    assert refund.refund["reason"] == "duplicate"
    assert refund.refund["amount"] == paid_second["data"]["object"]["amount_total"]
    assert refund.request is not None
    assert refund.request.idempotency_key == f"refund-duplicate-{duplicate_pi}"
    rows = [r for r in await history(ctx, project) if r["cause"] == "duplicate_payment"]
    assert [(r["to_status"], r["payment_intent_id"]) for r in rows] == [("paid", duplicate_pi)]
    assert await status_of(client, project) == "paid"

    # Stripe tells of the refund; the project keeps the kept payment's status, and nothing
    # more is refunded however often anything is delivered again.
    refunded = next(e for e in stripe_api.state.events if e["type"] == "charge.refunded")
    for event in [refunded, *deliveries, refunded]:
        await deliver(client, event)
    await ctx.outbox.drain()
    assert len(refunds_for(stripe_api, project)) == 1
    assert await status_of(client, project) == "paid"
    assert stripe_api.state.refund_calls == 1


async def test_a_refund_stripe_fails_is_sent_by_the_sweep_once(
    client: ServiceClient, ctx: AppContext, stripe_api: StripeStandIn, test_queries: FixtureQueries
) -> None:
    project = new_id()
    paid_first, paid_second = await two_paid_sessions(
        client, ctx, stripe_api, test_queries, project
    )
    stripe_api.state.faults.fail_next(2, status=500, path_prefix="/v1/refunds")  # + SDK retry
    await deliver(client, paid_first)
    await deliver(client, paid_second)
    await ctx.outbox.drain()
    assert refunds_for(stripe_api, project) == []  # Stripe failed: still owed

    sweeper = Sweeper(ctx.pool, ctx.queries, ctx.gateway, ctx.settings, ctx.metrics, ctx.outbox)
    assert await sweeper.sweep_once() is SweepResult.OK
    assert len(refunds_for(stripe_api, project)) == 1
    assert await sweeper.sweep_once() is SweepResult.OK
    assert len(refunds_for(stripe_api, project)) == 1


class TestWithRefundsOff:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return replace(settings, duplicate_payment_refunds=False)

    async def test_a_duplicate_is_recorded_and_alerted_not_refunded(
        self,
        client: ServiceClient,
        ctx: AppContext,
        stripe_api: StripeStandIn,
        test_queries: FixtureQueries,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.WARNING)
        project = new_id()
        paid_first, paid_second = await two_paid_sessions(
            client, ctx, stripe_api, test_queries, project
        )
        for event in (paid_second, paid_first):
            await deliver(client, event)
        await ctx.outbox.drain()
        await ctx.outbox.send_owed(project)  # as the sweep does: still not sent
        assert refunds_for(stripe_api, project) == []
        assert caplog.text.count("duplicate payment NOT refunded") == 1
        causes = [r["cause"] for r in await history(ctx, project)]
        assert causes.count("duplicate_payment") == 1


async def test_the_sweep_applies_a_missed_webhook_with_no_operator(
    client: ServiceClient, ctx: AppContext, stripe_api: StripeStandIn
) -> None:
    project = new_id()
    session = await checked_out(client, project)
    stripe_api.state.complete_session(session)  # Stripe has the event; no webhook came
    async with ctx.pool.acquire() as conn:
        before = await ctx.queries.get_project_payment(conn, project_id=project)
    assert before is not None
    assert before["status"] == "pending"
    sweeper = Sweeper(ctx.pool, ctx.queries, ctx.gateway, ctx.settings, ctx.metrics, ctx.outbox)
    assert await sweeper.sweep_once() is SweepResult.OK
    async with ctx.pool.acquire() as conn:
        row = await ctx.queries.get_project_payment(conn, project_id=project)
    assert row is not None
    assert row["status"] == "paid"


async def test_every_stripe_call_pins_the_api_version(
    client: ServiceClient, stripe_api: StripeStandIn, settings: Settings
) -> None:
    await checked_out(client, new_id())
    versions = {r.stripe_version for r in stripe_api.state.requests}
    assert versions == {settings.stripe_api_version}


@pytest.fixture
def shortest_ttl(make_ctx: Any, settings: Settings) -> AppContext:
    ctx: AppContext = make_ctx(replace(settings, checkout_session_ttl_minutes=30))
    return ctx


async def test_the_shortest_ttl_stripe_allows_still_gets_a_session(
    shortest_ttl: AppContext, stripe_api: StripeStandIn
) -> None:
    from service.payments import start_checkout  # noqa: PLC0415

    started = await start_checkout(
        shortest_ttl.pool,
        shortest_ttl.queries,
        shortest_ttl.gateway,
        shortest_ttl.settings,
        new_id(),
    )
    assert started.expires_at - time.time() >= 30 * 60  # Stripe saw it 30 minutes ahead or more
    assert stripe_api.state.create_calls == 1


async def test_an_event_of_another_api_version_is_logged_once(
    client: ServiceClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        event = event_for("checkout.session.completed.paid", new_id())
        event["api_version"] = "2024-06-20"
        await deliver(client, event)
    lines = [r for r in caplog.records if "another Stripe API version" in r.getMessage()]
    assert len(lines) == 1
