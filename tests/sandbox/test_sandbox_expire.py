"""Expiring checkout sessions, through the real SDK: POST /v1/checkout/sessions/{id}/expire
with Stripe's rules and error, and sessions that expire by themselves at `expires_at`."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, cast

import pytest
import stripe
from sandbox_helpers import (
    KEY,
    PRICE,
    MakeClient,
    WithWebhooks,
    assert_no_such_session,
    open_session,
    session_params,
    settle,
)

from sandbox.server import ThreadedSandbox
from sandbox.state import SandboxState

pytest_plugins = ["sandbox_fixtures"]

NOT_OPEN = (
    'Only Checkout Sessions with a status in ["open"] can be expired. '
    "This Checkout Session has a status of `{}`."
)


async def delivered_alone(with_webhooks: WithWebhooks, event: dict[str, Any]) -> None:
    """Once the stand-in settles, `event` is the one webhook its receiver got."""
    await settle(with_webhooks.state)
    [got] = with_webhooks.receiver.got
    assert json.loads(got.body)["id"] == event["id"]


async def test_expire_closes_an_open_session_and_sends_the_event(
    make_hooked_client: MakeClient, with_webhooks: WithWebhooks
) -> None:
    state = with_webhooks.state
    client = make_hooked_client()
    created = await client.v1.checkout.sessions.create_async(params=session_params("proj_x"))
    expired = await client.v1.checkout.sessions.expire_async(
        created.id, options={"idempotency_key": "expire-1"}
    )
    assert (expired.id, expired.status, expired.url, expired.payment_status) == (
        created.id,
        "expired",
        None,
        "unpaid",
    )
    assert expired.to_dict() == state.sessions[created.id]
    assert state.expire_calls == 1
    recorded = state.requests[-1]
    assert (recorded.method, recorded.path, recorded.idempotency_key) == (
        "POST",
        f"/v1/checkout/sessions/{created.id}/expire",
        "expire-1",
    )
    [event] = state.events
    assert event["type"] == "checkout.session.expired"
    assert event["data"]["object"]["id"] == created.id
    assert event["data"]["object"]["status"] == "expired"
    # The event names the request that caused it, as Stripe's do.
    assert expired.last_response is not None
    assert event["request"] == {
        "id": expired.last_response.request_id,
        "idempotency_key": "expire-1",
    }
    await delivered_alone(with_webhooks, event)
    page = await client.v1.checkout.sessions.retrieve_async(created.id)
    assert page.status == "expired"


@pytest.mark.parametrize("status", ["complete", "expired"])
async def test_only_an_open_session_can_be_expired(
    make_client: MakeClient, state: SandboxState, status: str
) -> None:
    client = make_client()
    session_id = open_session(state)
    if status == "complete":
        state.complete_session(session_id)
    else:
        state.expire_session(session_id)
    before = list(state.events)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.expire_async(
            session_id, options={"idempotency_key": "late"}
        )
    assert caught.value.http_status == 400
    assert caught.value.user_message == NOT_OPEN.format(status)
    assert caught.value.error is not None
    assert (caught.value.error.type, caught.value.code, caught.value.param) == (
        "invalid_request_error",
        None,
        None,
    )
    assert state.events == before
    assert state.sessions[session_id]["status"] == status
    assert state.expire_calls == 0
    # The request ran, so its answer is kept under its key, as Stripe keeps it.
    with pytest.raises(stripe.InvalidRequestError) as again:
        await client.v1.checkout.sessions.expire_async(
            session_id, options={"idempotency_key": "late"}
        )
    assert again.value.user_message == caught.value.user_message
    assert again.value.headers is not None
    assert again.value.headers["Idempotent-Replayed"] == "true"


async def test_expire_of_an_unknown_session_is_404_and_odd_params_are_refused(
    make_client: MakeClient, state: SandboxState
) -> None:
    client = make_client()
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.expire_async("cs_test_nope")
    assert_no_such_session(caught.value, "cs_test_nope")
    session_id = open_session(state)
    with pytest.raises(stripe.InvalidRequestError) as odd:
        await client.v1.checkout.sessions.expire_async(
            session_id,
            params=cast(Any, {"reason": "x"}),
        )
    assert (odd.value.code, odd.value.param) == ("parameter_unknown", "reason")
    assert state.sessions[session_id]["status"] == "open"
    assert state.events == []


async def test_expire_is_idempotent_by_key(make_client: MakeClient, state: SandboxState) -> None:
    client = make_client()
    session_id = open_session(state)
    first = await client.v1.checkout.sessions.expire_async(
        session_id, options={"idempotency_key": "k"}
    )
    again = await client.v1.checkout.sessions.expire_async(
        session_id, options={"idempotency_key": "k"}
    )
    assert again.to_dict() == first.to_dict()
    assert again.last_response is not None
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert [e["type"] for e in state.events] == ["checkout.session.expired"]
    assert state.expire_calls == 1
    assert [r.path.endswith("/expire") for r in state.requests] == [True, True]


async def test_the_sdk_retry_of_a_failed_expire_expires_once(
    make_client: MakeClient, state: SandboxState
) -> None:
    session_id = open_session(state)
    state.faults.fail_next(1, status=500, path_prefix="/v1/checkout/sessions/")
    with pytest.raises(stripe.APIError):
        await make_client().v1.checkout.sessions.expire_async(session_id)
    assert state.sessions[session_id]["status"] == "open"
    state.faults.fail_next(1, status=500, path_prefix="/v1/checkout/sessions/")
    expired = await make_client(retries=1).v1.checkout.sessions.expire_async(session_id)
    assert expired.status == "expired"
    assert state.expire_calls == 1
    assert len([r for r in state.requests if r.path.endswith("/expire")]) == 3


async def test_a_session_expires_by_itself_at_expires_at(
    make_hooked_client: MakeClient, with_webhooks: WithWebhooks
) -> None:
    state = with_webhooks.state
    client = make_hooked_client()
    soon = await client.v1.checkout.sessions.create_async(params=session_params("proj_soon"))
    later = await client.v1.checkout.sessions.create_async(params=session_params("proj_later"))
    # The API refuses an expires_at under 30 minutes away, as Stripe does; tests move it.
    state.set_expires_at(soon.id, time.time() + 0.3)
    assert state.sessions[soon.id]["status"] == "open"
    async with asyncio.timeout(5):
        while not state.events:
            await asyncio.sleep(0.05)
    [event] = state.events
    assert event["type"] == "checkout.session.expired"
    assert event["data"]["object"]["id"] == soon.id
    # Nobody asked: time ran out.
    assert event["request"] == {"id": None, "idempotency_key": None}
    assert state.expire_calls == 0
    await delivered_alone(with_webhooks, event)
    assert (await client.v1.checkout.sessions.retrieve_async(soon.id)).status == "expired"
    assert (await client.v1.checkout.sessions.retrieve_async(later.id)).status == "open"
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.checkout.sessions.expire_async(soon.id)


async def test_a_session_past_its_time_is_expired_before_anything_answers(
    make_client: MakeClient, state: SandboxState
) -> None:
    client = make_client()
    created = await client.v1.checkout.sessions.create_async(params=session_params())
    # As if an hour had passed: the clock is not needed to let time pass.
    [event] = state.expire_due(now=time.time() + 3601)
    assert event["data"]["object"]["id"] == created.id
    assert state.expire_due(now=time.time() + 7200) == []  # each session expires once
    assert (await client.v1.checkout.sessions.retrieve_async(created.id)).status == "expired"

    # Overdue the moment it is set: the very next answer already says so (the request
    # expires it if the timer has not run yet).
    overdue = open_session(state)
    state.set_expires_at(overdue, time.time() - 1)
    assert (await client.v1.checkout.sessions.retrieve_async(overdue)).status == "expired"
    assert [e["type"] for e in state.events] == ["checkout.session.expired"] * 2


async def test_paid_or_moved_sessions_do_not_expire_on_their_old_time(
    state: SandboxState,
) -> None:
    paid, moved = open_session(state), open_session(state)
    state.set_expires_at(paid, time.time() + 0.2)
    state.set_expires_at(moved, time.time() + 0.2)
    state.complete_session(paid)
    state.set_expires_at(moved, time.time() + 3600)
    await asyncio.sleep(0.5)
    assert (state.sessions[paid]["status"], state.sessions[moved]["status"]) == (
        "complete",
        "open",
    )
    assert [e["type"] for e in state.events] == ["checkout.session.completed"]
    with pytest.raises(ValueError, match="complete, not open"):
        state.set_expires_at(paid, time.time())


def test_sessions_expire_on_the_servers_thread_too() -> None:
    """A sandbox on its own thread (ThreadedSandbox, as `python -m sandbox` on its loop)
    runs the timer there, whichever thread set the time."""
    state = SandboxState(api_key=KEY, price_id=PRICE)
    with ThreadedSandbox(state):
        session_id = open_session(state)
        state.set_expires_at(session_id, time.time() + 0.3)
        deadline = time.monotonic() + 5
        while state.sessions[session_id]["status"] == "open" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state.sessions[session_id]["status"] == "expired"
        assert [e["type"] for e in state.events] == ["checkout.session.expired"]
