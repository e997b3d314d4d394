"""POST /webhooks/stripe: only Stripe's signed events get in, and each takes effect once."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from flows import bring_to, checked_out, checked_out_event, deliver, history, status_of
from helpers import WEBHOOK_SECRET, ServiceClient, event_for, new_id, sign

from service.config import Settings
from service.http.context import AppContext
from service.payments import receive_webhook, start_checkout

pytestmark = pytest.mark.usefixtures("app")


async def recorded(ctx: AppContext, event_id: str) -> dict[str, Any] | None:
    async with ctx.pool.acquire() as conn:
        row = await ctx.queries.get_event(conn, event_id=event_id)
    return dict(row) if row is not None else None


async def outcome_of(ctx: AppContext, event_id: str) -> str | None:
    """What the service recorded doing with the event; None when it recorded nothing."""
    outcome: str | None = (await recorded(ctx, event_id) or {}).get("outcome")
    return outcome


async def test_a_signed_completed_event_marks_the_project_paid(
    client: ServiceClient, ctx: AppContext
) -> None:
    project = new_id()
    event = await checked_out_event(client, project_id=project)
    response = await client.webhook(event)
    assert response.code == 200
    assert response.json() == {"received": True}
    assert await status_of(client, project) == "paid"
    row = await recorded(ctx, event["id"])
    assert row is not None
    assert (row["event_type"], row["project_id"], row["outcome"]) == (
        "checkout.session.completed",
        project,
        "applied",
    )
    assert row["livemode"] is False
    assert row["applied_at"] >= row["received_at"]
    assert int(row["stripe_created_at"].timestamp()) == event["created"]
    opened, audit = await history(ctx, project)
    assert (opened["from_status"], opened["to_status"], opened["cause"]) == (
        None,
        "pending",
        "api_checkout",
    )
    assert (audit["from_status"], audit["to_status"], audit["cause"], audit["cause_event_id"]) == (
        "pending",
        "paid",
        "stripe_event",
        event["id"],
    )


@pytest.fixture
def rolled(make_ctx: Any, settings: Settings) -> AppContext:
    """A service configured with two webhook secrets, as while rolling them."""
    ctx: AppContext = make_ctx(
        replace(settings, stripe_webhook_secrets=("whsec_old", WEBHOOK_SECRET))
    )
    return ctx


async def test_any_configured_secret_verifies_so_secrets_can_be_rolled(rolled: AppContext) -> None:
    for secret in ("whsec_old", WEBHOOK_SECRET):
        project = new_id()
        started = await start_checkout(
            rolled.pool, rolled.queries, rolled.gateway, rolled.settings, project
        )
        event = event_for("checkout.session.completed.paid", project, session_id=started.session_id)
        payload = json.dumps(event).encode()
        result = await receive_webhook(
            rolled.pool,
            rolled.queries,
            rolled.settings,
            payload,
            sign(payload, secret),
            datetime.now(UTC),
        )
        assert result.outcome == "applied"


async def test_a_duplicate_delivery_is_acknowledged_and_changes_nothing(
    client: ServiceClient, ctx: AppContext
) -> None:
    project = new_id()
    event = await checked_out_event(client, project_id=project)
    assert (await client.webhook(event)).json() == {"received": True}
    again = await client.webhook(event)
    assert again.code == 200
    assert again.json() == {"received": True, "duplicate": True}
    assert len(await history(ctx, project)) == 2  # opened, then paid


async def test_concurrent_duplicates_take_effect_once(
    client: ServiceClient, ctx: AppContext
) -> None:
    project = new_id()
    event = await checked_out_event(client, project_id=project)
    responses = await asyncio.gather(*(client.webhook(event) for _ in range(12)))
    assert [r.code for r in responses] == [200] * 12
    duplicates = [r.json().get("duplicate", False) for r in responses]
    assert duplicates.count(False) == 1
    assert len(await history(ctx, project)) == 2
    assert await status_of(client, project) == "paid"


async def test_different_events_racing_for_one_project_each_count_once(
    client: ServiceClient, ctx: AppContext
) -> None:
    """Four events for one session, each delivered four times, all at once: every event is
    recorded once, the audit trail is one unbroken chain, each link caused by an event that
    is recorded `applied`, and the project ends where in-order delivery ends (paid, the
    dispute won)."""
    project = new_id()
    session = await checked_out(client, project)
    pi = new_id("pi")
    ids = {"session_id": session, "payment_intent": pi}
    events = [
        event_for("checkout.session.completed.unpaid", project, **ids),
        event_for("checkout.session.async_payment_succeeded", project, **ids),
        event_for("charge.dispute.created", None, **ids),
        event_for("charge.dispute.closed.won", None, **ids),
    ]
    deliveries = [event for event in events for _ in range(4)]
    responses = await asyncio.gather(*(client.webhook(event) for event in deliveries))
    assert [r.code for r in responses] == [200] * len(deliveries)
    for event in events:
        firsts = [
            r
            for r, e in zip(responses, deliveries, strict=True)
            if e["id"] == event["id"] and not r.json().get("duplicate")
        ]
        assert len(firsts) == 1, event["type"]
        assert await outcome_of(ctx, event["id"]) in {"applied", "unchanged"}

    rows = await history(ctx, project)
    assert (rows[0]["from_status"], rows[0]["to_status"]) == (None, "pending")
    for before, row in itertools.pairwise(rows):
        assert row["from_status"] == before["to_status"] != row["to_status"]
        assert await outcome_of(ctx, row["cause_event_id"]) == "applied"
    applied = {row["cause_event_id"] for row in rows[1:]}
    for event in events:
        outcome = await outcome_of(ctx, event["id"])
        assert (outcome == "applied") == (event["id"] in applied)
    assert rows[-1]["to_status"] == await status_of(client, project) == "paid"


async def test_two_events_telling_the_same_payment_at_once_change_the_status_once(
    client: ServiceClient, ctx: AppContext
) -> None:
    """A card payment's completed event and a (duplicated) succeeded event race: one moves
    the project to paid, the other is recorded `unchanged`. One audit row for the change."""
    project = new_id()
    session = await checked_out(client, project)
    events = [
        event_for("checkout.session.completed.paid", project, session_id=session),
        event_for("checkout.session.async_payment_succeeded", project, session_id=session),
    ]
    deliveries = [event for _ in range(4) for event in events]
    responses = await asyncio.gather(*(client.webhook(event) for event in deliveries))
    assert [r.code for r in responses] == [200] * len(deliveries)
    outcomes = [str(await outcome_of(ctx, e["id"])) for e in events]
    assert sorted(outcomes) == ["applied", "unchanged"]
    rows = await history(ctx, project)
    assert [(r["from_status"], r["to_status"]) for r in rows] == [
        (None, "pending"),
        ("pending", "paid"),
    ]
    by_outcome = {await outcome_of(ctx, e["id"]): e["id"] for e in events}
    assert rows[1]["cause_event_id"] == by_outcome["applied"]


async def test_an_ignored_event_type_is_recorded_and_acknowledged(
    client: ServiceClient, ctx: AppContext
) -> None:
    event = event_for("checkout.session.completed.paid", new_id())
    event["type"] = "customer.created"
    response = await client.webhook(event)
    assert response.code == 200
    assert response.json() == {"received": True}
    assert await outcome_of(ctx, event["id"]) == "ignored"


async def test_an_event_naming_no_known_project_is_recorded_without_effect(
    client: ServiceClient, ctx: AppContext
) -> None:
    event = event_for("charge.refunded.full", None, payment_intent=new_id("pi"))
    assert (await client.webhook(event)).code == 200
    assert await outcome_of(ctx, event["id"]) == "unattributed"


async def test_a_dispute_finds_its_project_through_the_payment_intent(
    client: ServiceClient, ctx: AppContext
) -> None:
    project = new_id()
    ids = await bring_to(client, project, "paid")
    dispute = event_for("charge.dispute.created", None, payment_intent=ids["payment_intent"])
    assert dispute["data"]["object"]["metadata"] == {}
    await deliver(client, dispute)
    assert await status_of(client, project) == "disputed"


# --- what must be refused, changing nothing ---------------------------------------------


async def _refused(client: ServiceClient, ctx: AppContext, event_id: str, response: Any) -> str:
    assert response.code == 400, response.body
    assert await recorded(ctx, event_id) is None
    message: str = response.json()["error"]
    return message


async def test_missing_signature_header_is_refused(client: ServiceClient, ctx: AppContext) -> None:
    event = event_for("checkout.session.completed.paid", new_id())
    response = await client.request("POST", "/webhooks/stripe", json.dumps(event))
    assert "Stripe-Signature" in await _refused(client, ctx, event["id"], response)


async def test_signature_with_another_secret_is_refused(
    client: ServiceClient, ctx: AppContext
) -> None:
    event = event_for("checkout.session.completed.paid", new_id())
    response = await client.webhook(event, secret="whsec_someone_else")
    await _refused(client, ctx, event["id"], response)


async def test_garbled_signature_header_is_refused(client: ServiceClient, ctx: AppContext) -> None:
    event = event_for("checkout.session.completed.paid", new_id())
    for header in ("garbage", "t=abc,v1=00", "t=123", "v1=deadbeef", "t=,v1="):
        response = await client.request(
            "POST", "/webhooks/stripe", json.dumps(event), headers={"Stripe-Signature": header}
        )
        await _refused(client, ctx, event["id"], response)


async def test_stale_timestamp_is_refused(client: ServiceClient, ctx: AppContext) -> None:
    event = event_for("checkout.session.completed.paid", new_id())
    response = await client.webhook(event, timestamp=int(time.time()) - 301)
    assert "tolerance" in await _refused(client, ctx, event["id"], response)


async def test_timestamp_far_in_the_future_is_refused(
    client: ServiceClient, ctx: AppContext
) -> None:
    event = event_for("checkout.session.completed.paid", new_id())
    response = await client.webhook(event, timestamp=int(time.time()) + 3600)
    await _refused(client, ctx, event["id"], response)


async def test_tampered_body_is_refused(client: ServiceClient, ctx: AppContext) -> None:
    event = event_for("checkout.session.completed.paid", new_id())
    payload = json.dumps(event).encode()
    header = sign(payload)
    tampered = payload.replace(b'"paid"', b'"unpaid"', 1)
    response = await client.request(
        "POST", "/webhooks/stripe", tampered, headers={"Stripe-Signature": header}
    )
    await _refused(client, ctx, event["id"], response)


async def test_signature_of_another_payload_is_refused(
    client: ServiceClient, ctx: AppContext
) -> None:
    event = event_for("checkout.session.completed.paid", new_id())
    other = json.dumps(event_for("checkout.session.completed.paid", new_id())).encode()
    response = await client.request(
        "POST", "/webhooks/stripe", json.dumps(event), headers={"Stripe-Signature": sign(other)}
    )
    await _refused(client, ctx, event["id"], response)


@pytest.mark.parametrize(
    "payload",
    [
        b"not json at all",
        b"[1, 2, 3]",
        b'{"object": "event"}',
        b'{"id": "evt_1", "object": "event", "type": "x", "created": "yesterday", "data": {}}',
        b'{"id": "cus_1", "object": "customer"}',
        b"\xff\xfe invalid utf-8",
        b"[" * 5000 + b"]" * 5000,
    ],
)
async def test_a_validly_signed_body_that_is_not_an_event_is_refused(
    client: ServiceClient, payload: bytes
) -> None:
    try:
        header = sign(payload)
    except UnicodeDecodeError:
        header = "t=1,v1=00"  # cannot even be signed as text; must still be a clean 400
    response = await client.request(
        "POST", "/webhooks/stripe", payload, headers={"Stripe-Signature": header}
    )
    assert response.code == 400
    assert "error" in response.json()


async def test_body_over_one_mebibyte_is_refused_with_413(client: ServiceClient) -> None:
    event = event_for("checkout.session.completed.paid", new_id())
    event["data"]["object"]["padding"] = "x" * (1024 * 1024)
    response = await client.webhook(event)
    assert response.code == 413
    assert "error" in response.json()


async def test_get_on_the_webhook_is_not_allowed(client: ServiceClient) -> None:
    response = await client.request("GET", "/webhooks/stripe")
    assert response.code == 405
    assert "error" in response.json()
