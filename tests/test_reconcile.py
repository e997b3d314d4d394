"""`python -m service reconcile`: events whose webhooks never arrived are applied, once,
oldest first, through the webhook's own code path."""

from __future__ import annotations

import asyncio
import io
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from flows import checked_out, deliver, history, status_of
from helpers import ServiceClient, StripeStandIn, event_for, new_id
from processes import free_port, run_to_end, service_environment

from service.http.context import AppContext
from service.reconcile import parse_window, reconcile

ROOT = Path(__file__).resolve().parent.parent
HOURS_72 = parse_window("72h")


def missed(
    stripe_api: StripeStandIn, name: str, project: str | None, *, age: float = 60, **kwargs: Any
) -> dict[str, Any]:
    """An event Stripe has (GET /v1/events lists it) but never delivered."""
    event = event_for(name, project, **kwargs)
    event["created"] = int(time.time() - age)
    return stripe_api.state.add_event(event)


async def missed_payment(
    client: ServiceClient, stripe_api: StripeStandIn, project: str, *, age: float = 60
) -> dict[str, Any]:
    """The project checked out, and its session's paid completion never delivered."""
    session = await checked_out(client, project)
    return missed(
        stripe_api, "checkout.session.completed.paid", project, age=age, session_id=session
    )


async def test_reconcile_applies_missed_events_over_several_pages_once(
    client: ServiceClient, ctx: AppContext, stripe_api: StripeStandIn
) -> None:
    projects = [new_id() for _ in range(130)]
    for n, project in enumerate(projects):
        await missed_payment(client, stripe_api, project, age=3600 - n)
    delivered_project = new_id()
    delivered = await missed_payment(client, stripe_api, delivered_project)
    await deliver(client, delivered)
    old_project = new_id()
    await missed_payment(client, stripe_api, old_project, age=73 * 3600)

    summary = await reconcile(
        ctx.pool, ctx.queries, ctx.gateway, HOURS_72, livemode=False, progress=io.StringIO()
    )
    assert (summary.seen, summary.applied, summary.already_recorded) == (131, 130, 1)
    assert all([await status_of(client, p) == "paid" for p in projects[:5] + projects[-5:]])
    assert await status_of(client, old_project) == "pending"
    event_pages = [r for r in stripe_api.state.requests if r.path == "/v1/events"]
    assert len(event_pages) == 2
    assert event_pages[0].params["limit"] == "100"

    again = await reconcile(
        ctx.pool, ctx.queries, ctx.gateway, HOURS_72, livemode=False, progress=io.StringIO()
    )
    assert (again.seen, again.applied, again.already_recorded) == (131, 0, 131)
    assert [r["to_status"] for r in await history(ctx, projects[0])] == ["pending", "paid"]


async def test_reconcile_of_events_listed_newest_first_some_delivered_early_ends_the_same(
    client: ServiceClient, ctx: AppContext, stripe_api: StripeStandIn
) -> None:
    """Stripe lists newest first, and the newest (the dispute lost) was delivered long before
    the payment it is about: reconcile feeds the rest in the order listed, and the project
    ends `refunded`, as delivery in Stripe's order would end."""
    project = new_id()
    ids = {"payment_intent": new_id("pi"), "session_id": await checked_out(client, project)}
    missed(stripe_api, "checkout.session.completed.paid", project, age=300, **ids)
    missed(stripe_api, "charge.dispute.created", None, age=200, **ids)
    early = missed(stripe_api, "charge.dispute.closed.lost", None, age=100, **ids)
    await deliver(client, early)
    assert await status_of(client, project) == "pending"  # its payment is not known yet
    await reconcile(
        ctx.pool, ctx.queries, ctx.gateway, HOURS_72, livemode=False, progress=io.StringIO()
    )
    assert await status_of(client, project) == "refunded"
    assert [r["to_status"] for r in await history(ctx, project)] == ["pending", "refunded"]
    listed = [r for r in stripe_api.state.requests if r.path == "/v1/events"]
    assert listed, "reconcile did not ask Stripe"


async def test_a_dry_run_changes_nothing(
    client: ServiceClient, ctx: AppContext, stripe_api: StripeStandIn
) -> None:
    project = new_id()
    event = await missed_payment(client, stripe_api, project)
    summary = await reconcile(
        ctx.pool,
        ctx.queries,
        ctx.gateway,
        HOURS_72,
        livemode=False,
        dry_run=True,
        progress=io.StringIO(),
    )
    assert event["id"] in summary.would_apply
    assert await status_of(client, project) == "pending"


async def test_the_command_reconciles_and_prints_a_summary(
    client: ServiceClient, stripe_api: StripeStandIn, database_url: str
) -> None:
    project = new_id()
    await missed_payment(client, stripe_api, project)
    # More than a page of others, so the progress shows a line per page.
    for _ in range(120):
        missed(stripe_api, "checkout.session.expired", new_id())
    environment = service_environment(database_url, stripe_api, free_port())
    result = await asyncio.to_thread(
        run_to_end, [sys.executable, "-m", "service", "reconcile", "--since", "2h"], environment
    )
    assert result.returncode == 0, result.stderr
    [summary] = [line for line in result.stdout.splitlines() if line.startswith("seen ")]
    # The README's words, in the README's order.
    words = r"seen 121, applied 1, already recorded 0, unchanged \d+, ignored \d+, malformed 0"
    assert re.fullmatch(words, summary), summary
    assert await status_of(client, project) == "paid"
    progress = result.stderr.splitlines()
    # One line per page as it streams (no total: it never holds the whole window).
    assert any(line.startswith("reconcile: events since ") for line in progress)
    assert "reconcile: 100 events so far" in progress
    # The SDK's own request/response lines are kept at WARNING: nothing of them anywhere.
    assert '"logger":"stripe"' not in result.stdout + result.stderr
    assert "Request to Stripe api" not in result.stdout + result.stderr


def test_reconcile_help_gives_the_defaults_and_what_it_needs() -> None:
    result = run_to_end([sys.executable, "-m", "service", "reconcile", "--help"], check=True)
    text = " ".join(result.stdout.split())
    assert "(default: 72h)" in text
    for needed in ("DATABASE_URL", "STRIPE_SECRET_KEY", "STRIPE_API_BASE", "make reconcile"):
        assert needed in text


@pytest.mark.parametrize("since", ["31d", "745h", "0h", "yesterday", "-5h"])
def test_a_window_stripe_cannot_serve_is_refused(since: str) -> None:
    result = run_to_end(
        [sys.executable, "-m", "service", "reconcile", "--since", since],
        dict(os.environ) | {"PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 2
    assert "--since" in result.stderr


def test_windows_up_to_thirty_days_are_accepted() -> None:
    assert parse_window("30d").days == 30
    assert parse_window("720h").days == 30
    assert parse_window("90m").seconds == 5400
