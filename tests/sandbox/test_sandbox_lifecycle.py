"""The lifecycle actions produce the events Stripe sends, shaped like Stripe's examples
(sandbox/data/events, copied from Stripe's reference payloads), listable through the API and
valid as signed webhooks."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import stripe
from sandbox_helpers import MakeClient, session_params

from sandbox.examples import example_event
from sandbox.state import SandboxState

pytest_plugins = ["sandbox_fixtures"]

PII = ("Jenny Rosen", "jenny.rosen@example.com", "510 Townsend St")
WEBHOOK_SECRET = "whsec_sandboxLifecycleTests"


def assert_same_shape(actual: Any, expected: Any, where: str = "event") -> None:
    """Same keys at every level; same JSON types wherever both sides have a value."""
    if actual is None or expected is None:
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        assert set(actual) == set(expected), f"{where}: {set(actual) ^ set(expected)}"
        for key, value in expected.items():
            assert_same_shape(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), where
        for item in actual[:1]:
            for sample in expected[:1]:
                assert_same_shape(item, sample, f"{where}[0]")
    else:
        numbers = (int, float)
        same = isinstance(actual, numbers) and isinstance(expected, numbers)
        assert same or type(actual) is type(expected), f"{where}: {actual!r} vs {expected!r}"


def assert_like(event: dict[str, Any], name: str) -> dict[str, Any]:
    reference = example_event(name)
    assert_same_shape(event, reference)
    assert event["type"] == reference["type"]
    assert event["id"].startswith("evt_")
    assert (event["object"], event["api_version"], event["livemode"]) == (
        "event",
        "2026-10-28.endive",
        False,
    )
    assert event["pending_webhooks"] == 1
    assert abs(event["created"] - time.time()) < 5
    obj: dict[str, Any] = event["data"]["object"]
    return obj


def assert_valid_webhook(event: dict[str, Any]) -> None:
    payload = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(
        payload, WEBHOOK_SECRET, int(time.time())
    )
    parsed = stripe.Webhook.construct_event(payload, header, WEBHOOK_SECRET)
    assert (parsed.id, parsed.type) == (event["id"], event["type"])
    assert parsed.data.object["id"] == event["data"]["object"]["id"]


async def new_session(make_client: MakeClient, project: str) -> str:
    session = await make_client().v1.checkout.sessions.create_async(params=session_params(project))
    return session.id


async def test_card_payment_then_refunds(make_client: MakeClient, state: SandboxState) -> None:
    session_id = await new_session(make_client, "proj_card")
    completed = assert_like(state.complete_session(session_id), "checkout.session.completed.paid")
    assert (completed["id"], completed["status"], completed["payment_status"]) == (
        session_id,
        "complete",
        "paid",
    )
    assert completed["url"] is None
    assert completed["client_reference_id"] == "proj_card"
    assert completed["metadata"] == {"project_id": "proj_card"}
    intent = completed["payment_intent"]
    assert intent.startswith("pi_")
    details = json.dumps(completed["customer_details"])
    assert all(pii in details for pii in PII)

    partial = assert_like(state.refund(session_id, amount=100000), "charge.refunded.partial")
    assert (partial["amount"], partial["amount_refunded"], partial["refunded"]) == (
        250000,
        100000,
        False,
    )
    assert partial["metadata"] == {"project_id": "proj_card"}
    assert partial["payment_intent"] == intent
    assert [r["amount"] for r in partial["refunds"]["data"]] == [100000]

    full = assert_like(state.refund(session_id), "charge.refunded.full")
    assert (full["id"], full["amount_refunded"], full["refunded"]) == (partial["id"], 250000, True)
    assert [r["amount"] for r in full["refunds"]["data"]] == [150000, 100000]
    assert all(r["payment_intent"] == intent for r in full["refunds"]["data"])
    with pytest.raises(ValueError, match="refund"):
        state.refund(session_id, amount=1)

    fetched = await make_client().v1.checkout.sessions.retrieve_async(session_id)
    assert (fetched.status, fetched.payment_status, fetched.payment_intent) == (
        "complete",
        "paid",
        intent,
    )


async def test_dispute_opened_then_won_or_lost(
    make_client: MakeClient, state: SandboxState
) -> None:
    for won in (True, False):
        session_id = await new_session(make_client, f"proj_dispute_{won}")
        intent = state.complete_session(session_id)["data"]["object"]["payment_intent"]
        opened = assert_like(state.open_dispute(session_id), "charge.dispute.created")
        assert opened["id"].startswith("dp_")
        assert (opened["status"], opened["metadata"], opened["payment_intent"]) == (
            "needs_response",
            {},
            intent,
        )
        assert opened["charge"] == state.payments[session_id].charge
        outcome = "won" if won else "lost"
        closed = assert_like(
            state.close_dispute(session_id, won=won), f"charge.dispute.closed.{outcome}"
        )
        assert (closed["id"], closed["status"], closed["payment_intent"]) == (
            opened["id"],
            outcome,
            intent,
        )
        assert closed["charge"] == opened["charge"]
        with pytest.raises(ValueError, match="no open dispute"):
            state.close_dispute(session_id, won=won)


async def test_bank_debit_settles_or_fails_later(
    make_client: MakeClient, state: SandboxState
) -> None:
    for succeeds in (True, False):
        session_id = await new_session(make_client, "proj_ach")
        completed = assert_like(
            state.complete_session(session_id, payment_status="unpaid"),
            "checkout.session.completed.unpaid",
        )
        assert (completed["status"], completed["payment_status"]) == ("complete", "unpaid")
        assert completed["payment_intent"].startswith("pi_")
        if succeeds:
            settled = assert_like(
                state.async_payment_succeeded(session_id),
                "checkout.session.async_payment_succeeded",
            )
            assert settled["payment_status"] == "paid"
        else:
            failed = assert_like(
                state.async_payment_failed(session_id), "checkout.session.async_payment_failed"
            )
            assert failed["payment_status"] == "unpaid"
            with pytest.raises(ValueError, match="does not have a successful charge"):
                state.refund(session_id)
        assert state.sessions[session_id]["payment_intent"] == completed["payment_intent"]
        with pytest.raises(ValueError, match="no bank debit pending"):
            state.async_payment_succeeded(session_id)


async def test_expiry(make_client: MakeClient, state: SandboxState) -> None:
    session_id = await new_session(make_client, "proj_exp")
    expired = assert_like(state.expire_session(session_id), "checkout.session.expired")
    assert (expired["status"], expired["payment_intent"], expired["url"]) == (
        "expired",
        None,
        None,
    )
    with pytest.raises(ValueError, match="expired, not open"):
        state.complete_session(session_id)
    with pytest.raises(KeyError):
        state.expire_session("cs_test_unknown")


async def test_every_event_is_listed_in_order_and_is_a_valid_webhook(
    make_client: MakeClient, state: SandboxState
) -> None:
    paid, ach, gone = [await new_session(make_client, f"proj_{n}") for n in range(3)]
    state.complete_session(paid)
    state.refund(paid, amount=5)
    state.open_dispute(paid)
    state.close_dispute(paid, won=True)
    state.complete_session(ach, payment_status="unpaid")
    state.async_payment_succeeded(ach)
    state.expire_session(gone)
    created = [e["created"] for e in state.events]
    assert created == sorted(created)
    assert len({e["id"] for e in state.events}) == len(state.events) == 7
    page = await make_client().v1.events.list_async(params={"limit": 3})
    listed = [event.id async for event in page.auto_paging_iter()]
    assert listed == [e["id"] for e in reversed(state.events)]
    for event in state.events:
        assert_valid_webhook(event)
    sessions_only = await make_client().v1.events.list_async(
        params={"type": "checkout.session.*", "limit": 100}
    )
    assert [e.type for e in sessions_only.data] == [
        "checkout.session.expired",
        "checkout.session.async_payment_succeeded",
        "checkout.session.completed",
        "checkout.session.completed",
    ]
