"""Ways to bring a test's project into a given status through the public API only."""

from __future__ import annotations

import asyncio
import copy
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from helpers import ServiceClient, StripeStandIn, event_for, new_id
from query_types import FixtureQueries

from service.http.context import AppContext
from service.payments import checkout_params


async def history(ctx: AppContext, project_id: str) -> list[dict[str, Any]]:
    """The project's audit rows, oldest first."""
    async with ctx.pool.acquire() as conn:
        rows = ctx.queries.list_project_history(conn, project_id=project_id)
        return [dict(r) async for r in rows]


async def deliver(client: ServiceClient, event: dict[str, Any]) -> dict[str, Any]:
    response = await client.webhook(event)
    assert response.code == 200, response.body
    body: dict[str, Any] = response.json()
    return body


async def status_of(client: ServiceClient, project_id: str) -> str | None:
    response = await client.status(project_id)
    if response.code == 404:
        return None
    assert response.code == 200, response.body
    status: str = response.json()["status"]
    return status


async def checked_out(client: ServiceClient, project_id: str) -> str:
    """Start the project's checkout through the API; returns the session the service made."""
    response = await client.checkout(project_id)
    assert response.code == 200, response.body
    session: str = response.json()["session_id"]
    return session


async def new_checkout(client: ServiceClient) -> tuple[str, str]:
    """A new project checked out through the API: the project and the session the service made."""
    project = new_id()
    return project, await checked_out(client, project)


async def checked_out_event(
    client: ServiceClient,
    name: str = "checkout.session.completed.paid",
    project_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A checkout for a (new) project, and the example event `name` for the session it made."""
    project_id = project_id or new_id()
    session = await checked_out(client, project_id)
    return event_for(name, project_id, session_id=session, **fields)


async def bring_to(client: ServiceClient, project_id: str, status: str | None) -> dict[str, str]:
    """Walk the project to `status` through a checkout of its own and the events Stripe sends
    for that session; returns the ids used (session, payment intent)."""
    ids = {"payment_intent": new_id("pi"), "session": ""}
    if status is None:
        return ids
    ids["session"] = session = await checked_out(client, project_id)
    targeted = {"session_id": session, "payment_intent": ids["payment_intent"]}
    names: list[str] = {
        "pending": [],
        "expired": ["checkout.session.expired"],
        "processing": ["checkout.session.completed.unpaid"],
        "failed": ["checkout.session.completed.unpaid", "checkout.session.async_payment_failed"],
        "paid": ["checkout.session.completed.paid"],
        "disputed": ["checkout.session.completed.paid", "charge.dispute.created"],
        "refunded": [
            "checkout.session.completed.paid",
            "charge.dispute.created",
            "charge.dispute.closed.lost",
        ],
    }[status]
    for name in names:
        project = project_id if name.startswith("checkout.session.") else None
        await deliver(client, event_for(name, project, **targeted))
    assert await status_of(client, project_id) == status
    return ids


async def two_paid_sessions(
    client: ServiceClient,
    ctx: AppContext,
    stripe_api: StripeStandIn,
    test_queries: FixtureQueries,
    project: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two sessions of the project, both the service's and both paid in Stripe: the checkout's,
    and one from before this release (two tabs; no checkout now makes a second while the first
    may be paid), made through the same gateway and registered as the service's. The first is
    paid 20 s before the second. Returns their completed events, not yet delivered."""
    first = await checked_out(client, project)
    expires = datetime.now(UTC) + timedelta(hours=1)
    older = await ctx.gateway.create_checkout_session(
        checkout_params(ctx.settings, project, expires), new_id("legacy")
    )
    async with ctx.pool.acquire() as conn:
        await test_queries.add_checkout_session(
            conn, session_id=older.session_id, project_id=project
        )
    now = int(time.time())
    paid_first = copy.deepcopy(stripe_api.state.complete_session(first))
    paid_second = copy.deepcopy(stripe_api.state.complete_session(older.session_id))
    paid_first["created"], paid_second["created"] = now - 30, now - 10
    return paid_first, paid_second


def refunds_for(stripe_api: StripeStandIn, project: str) -> list[Any]:
    return [
        r for r in stripe_api.state.refund_log if r.refund["metadata"].get("project_id") == project
    ]


async def checkout_flood(
    client: ServiceClient,
    stripe_api: StripeStandIn,
    *,
    count: int,
    headers: dict[str, str],
    allowed: int,
    seconds_per_token: int,
    status_headers: dict[str, str] | None = None,
) -> None:
    """`count` concurrent checkouts of new projects by one caller (`headers`) against its rate
    limit: `allowed` of them answer 200 and make a Stripe session; the rest answer 429 with a
    Retry-After of at most one token's time, and store nothing (the project stays unknown)."""
    sessions_before = stripe_api.state.create_calls
    projects = [new_id() for _ in range(count)]
    responses = await asyncio.gather(*(client.checkout(p, headers=headers) for p in projects))
    assert sorted(r.code for r in responses) == [200] * allowed + [429] * (count - allowed)
    assert stripe_api.state.create_calls == sessions_before + allowed
    for project, response in zip(projects, responses, strict=True):
        if response.code == 429:
            assert response.json() == {"error": "too many requests; try again later"}
            assert 1 <= int(response.headers["Retry-After"]) <= seconds_per_token
            assert (await client.status(project, headers=status_headers)).code == 404
