"""SPEC "POST /webhooks/stripe", the guarantees: any order, any duplicates, nothing dropped for
arriving early, and only the service's own sessions count. Over HTTP, with Stripe-signed
events, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import tornado.ioloop
from flows import checked_out, deliver, history, status_of
from helpers import ServiceClient, event_for, new_id
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lifecycles import LIFECYCLES, Lifecycle, set_up

from service.http.context import AppContext


async def recorded_outcome(ctx: AppContext, event_id: str) -> str | None:
    async with ctx.pool.acquire() as conn:
        row = await ctx.queries.get_event(conn, event_id=event_id)
    return None if row is None else str(row["outcome"])


async def in_order(client: ServiceClient, lifecycle: Lifecycle) -> str | None:
    """Where delivering the lifecycle once, in Stripe's order, ends (on a project of its own)."""
    played = await set_up(client, lifecycle)
    for event in played.events:
        await deliver(client, event)
    return await status_of(client, played.project)


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[Lifecycle, list[int]]:
    """A lifecycle and an order of delivery: a permutation of its events, with repeats."""
    lifecycle = draw(st.sampled_from(LIFECYCLES))
    count = len(lifecycle.steps)
    order = draw(st.permutations(range(count)))
    repeats = draw(st.lists(st.integers(0, count - 1), max_size=3))
    positions = [draw(st.integers(0, count + n)) for n in range(len(repeats))]
    order = list(order)
    for position, index in zip(positions, repeats, strict=True):
        order.insert(position, index)
    return lifecycle, order


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=deliveries())
def test_any_order_with_duplicates_ends_where_stripes_order_ends(
    io_loop: tornado.ioloop.IOLoop, client: ServiceClient, case: tuple[Lifecycle, list[int]]
) -> None:
    lifecycle, order = case

    async def run() -> None:
        expected = await in_order(client, lifecycle)
        assert expected == lifecycle.expected
        played = await set_up(client, lifecycle)
        for index in order:
            await deliver(client, played.events[index])
        assert await status_of(client, played.project) == expected, (lifecycle.name, order)

    io_loop.run_sync(run, timeout=60)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=deliveries())
def test_all_at_once_with_duplicates_ends_where_stripes_order_ends(
    io_loop: tornado.ioloop.IOLoop, client: ServiceClient, case: tuple[Lifecycle, list[int]]
) -> None:
    """Concurrent deliveries: every event (and its repeats) in flight together."""
    lifecycle, order = case

    async def run() -> None:
        played = await set_up(client, lifecycle)
        await asyncio.gather(*(deliver(client, played.events[index]) for index in order))
        assert await status_of(client, played.project) == lifecycle.expected, lifecycle.name

    io_loop.run_sync(run, timeout=60)


# --- each case the issue found, by name ---------------------------------------------------


async def _paid_session(client: ServiceClient) -> tuple[str, dict[str, str]]:
    project = new_id()
    ids = {"session_id": await checked_out(client, project), "payment_intent": new_id("pi")}
    return project, ids


async def test_a_refund_delivered_before_the_payment_ends_refunded(client: ServiceClient) -> None:
    project, ids = await _paid_session(client)
    refund = event_for("charge.refunded.full", None, **ids)
    paid = event_for("checkout.session.completed.paid", project, **ids)
    refund["created"] = paid["created"] + 5
    await deliver(client, refund)
    await deliver(client, paid)
    assert await status_of(client, project) == "refunded"


async def test_a_delayed_failure_delivered_before_the_completion_ends_failed(
    client: ServiceClient,
) -> None:
    project, ids = await _paid_session(client)
    completed = event_for("checkout.session.completed.unpaid", project, **ids)
    failed = event_for("checkout.session.async_payment_failed", project, **ids)
    failed["created"] = completed["created"] + 5
    await deliver(client, failed)
    await deliver(client, completed)
    assert await status_of(client, project) == "failed"
    again = await client.checkout(project)  # the buyer may try again
    assert again.code == 200, again.body


async def test_a_dispute_before_its_payment_is_known_is_kept_and_counts_later(
    client: ServiceClient, ctx: AppContext
) -> None:
    project, ids = await _paid_session(client)
    dispute = event_for("charge.dispute.created", None, **ids)
    await deliver(client, dispute)
    assert await recorded_outcome(ctx, dispute["id"]) == "unattributed"
    assert await status_of(client, project) == "pending"
    paid = event_for("checkout.session.completed.paid", project, **ids)
    await deliver(client, paid)
    assert await status_of(client, project) == "disputed"
    rows = await history(ctx, project)
    assert [(r["to_status"], r["cause_event_id"]) for r in rows] == [
        ("pending", None),
        ("disputed", paid["id"]),  # in the transaction that made the payment known
    ]


async def test_a_dispute_closed_won_before_it_was_opened_ends_paid(client: ServiceClient) -> None:
    project, ids = await _paid_session(client)
    dispute = {"id": new_id("dp"), **ids}
    paid = event_for("checkout.session.completed.paid", project, **ids)
    opened = event_for("charge.dispute.created", None, **dispute)
    closed = event_for("charge.dispute.closed.won", None, **dispute)
    opened["created"], closed["created"] = paid["created"] + 1, paid["created"] + 2
    for event in (paid, closed, opened):
        await deliver(client, event)
    assert await status_of(client, project) == "paid"


@pytest.mark.parametrize(
    "foreign",
    [
        {"amount_total": 100, "currency": "eur"},  # a $1 EUR Payment Link
        {"mode": "setup"},
        {},
    ],
    ids=["payment-link", "setup-mode", "another-integration"],
)
async def test_a_session_the_service_never_made_moves_nothing(
    client: ServiceClient, ctx: AppContext, foreign: dict[str, Any]
) -> None:
    project = new_id()
    await checked_out(client, project)
    for name in ("checkout.session.completed.paid", "checkout.session.completed.unpaid"):
        event = event_for(name, project, session_id=new_id("cs_test"), **foreign)
        await deliver(client, event)
        assert await recorded_outcome(ctx, event["id"]) == "unattributed"
    assert await status_of(client, project) == "pending"
    assert (await client.checkout(project)).code == 200  # its real buyer is not refused
    assert [r["to_status"] for r in await history(ctx, project)] == ["pending"]


async def test_a_payment_links_session_never_creates_a_project(
    client: ServiceClient, ctx: AppContext
) -> None:
    project = new_id()
    event = event_for("checkout.session.completed.paid", project, session_id=new_id("cs_test"))
    await deliver(client, event)
    assert await status_of(client, project) is None
    assert await recorded_outcome(ctx, event["id"]) == "unattributed"


async def test_a_refund_of_an_unrelated_charge_naming_the_project_moves_nothing(
    client: ServiceClient, ctx: AppContext
) -> None:
    project, ids = await _paid_session(client)
    await deliver(client, event_for("checkout.session.completed.paid", project, **ids))
    unrelated = event_for(
        "charge.refunded.full",
        project,
        payment_intent=new_id("pi"),
        amount=100,
        amount_refunded=100,
    )
    assert unrelated["data"]["object"]["metadata"] == {"project_id": project}
    await deliver(client, unrelated)
    assert await recorded_outcome(ctx, unrelated["id"]) == "unattributed"
    assert await status_of(client, project) == "paid"


async def test_an_event_of_the_other_mode_moves_nothing(
    client: ServiceClient, ctx: AppContext
) -> None:
    project, ids = await _paid_session(client)
    live = event_for("checkout.session.completed.paid", project, **ids)
    live["livemode"] = True
    live["data"]["object"]["livemode"] = True
    await deliver(client, live)
    assert await recorded_outcome(ctx, live["id"]) == "livemode_mismatch"
    assert await status_of(client, project) == "pending"


async def test_an_event_of_a_connected_account_moves_nothing(
    client: ServiceClient, ctx: AppContext
) -> None:
    project, ids = await _paid_session(client)
    connected = event_for("checkout.session.completed.paid", project, **ids)
    connected["account"] = "acct_1ConnectedBusiness"
    await deliver(client, connected)
    assert await recorded_outcome(ctx, connected["id"]) == "connect_account"
    assert await status_of(client, project) == "pending"


async def test_a_delivery_that_changes_nothing_writes_no_audit_row(
    client: ServiceClient, ctx: AppContext
) -> None:
    project, ids = await _paid_session(client)
    await deliver(client, event_for("checkout.session.completed.paid", project, **ids))
    partial = event_for("charge.refunded.partial", None, **ids)
    await deliver(client, partial)
    assert await recorded_outcome(ctx, partial["id"]) == "unchanged"
    assert [r["to_status"] for r in await history(ctx, project)] == ["pending", "paid"]
