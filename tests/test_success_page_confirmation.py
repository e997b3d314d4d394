"""The success page may arrive before the webhook: GET /api/projects/{id}/payment then asks
Stripe for the session (rate-limited per project) and applies it through the status table;
the webhook arriving afterwards is a no-op."""

from __future__ import annotations

import asyncio

from flows import deliver, history, new_checkout, status_of
from helpers import ServiceClient, StripeStandIn

from service.http.context import AppContext


def session_reads(stripe_api: StripeStandIn, session_id: str) -> int:
    return sum(
        1
        for r in stripe_api.state.requests
        if r.method == "GET" and r.path == f"/v1/checkout/sessions/{session_id}"
    )


async def test_paid_before_the_webhook_shows_paid_and_the_webhook_is_a_no_op(
    client: ServiceClient, ctx: AppContext, stripe_api: StripeStandIn
) -> None:
    project, session_id = await new_checkout(client)
    event = stripe_api.state.complete_session(session_id)  # paid in Stripe, webhook not yet sent
    assert await status_of(client, project) == "paid"
    rows = await history(ctx, project)
    assert [(r["to_status"], r["cause"], r["cause_event_id"]) for r in rows] == [
        ("pending", "api_checkout", None),
        ("paid", "api_confirmation", None),
    ]
    assert (await deliver(client, event)) == {"received": True}
    assert await status_of(client, project) == "paid"
    assert len(await history(ctx, project)) == 2


async def test_webhook_first_then_the_page_asks_stripe_nothing(
    client: ServiceClient, ctx: AppContext, stripe_api: StripeStandIn
) -> None:
    project, session_id = await new_checkout(client)
    await deliver(client, stripe_api.state.complete_session(session_id))
    assert await status_of(client, project) == "paid"
    assert session_reads(stripe_api, session_id) == 0
    assert len(await history(ctx, project)) == 2


async def test_a_polling_page_reads_stripe_at_most_once_per_interval(
    client: ServiceClient, stripe_api: StripeStandIn
) -> None:
    project, session_id = await new_checkout(client)
    statuses = await asyncio.gather(*(status_of(client, project) for _ in range(20)))
    assert set(statuses) == {"pending"}
    assert session_reads(stripe_api, session_id) == 1


async def test_an_expired_session_read_from_stripe_expires_the_project(
    client: ServiceClient, stripe_api: StripeStandIn
) -> None:
    project, session_id = await new_checkout(client)
    stripe_api.state.expire_session(session_id)
    assert await status_of(client, project) == "expired"


async def test_stripe_failing_during_confirmation_still_answers_the_page(
    client: ServiceClient, stripe_api: StripeStandIn
) -> None:
    project, session_id = await new_checkout(client)
    stripe_api.state.complete_session(session_id)
    stripe_api.state.faults.fail_next(5, status=500)
    response = await client.status(project)
    assert response.code == 200
    assert response.json()["status"] == "pending"
