"""The Stripe stand-in is as strict as Stripe where the service relies on it, and the real
SDK talks to it as to Stripe."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

import pytest
import stripe
import tornado.httpserver
import tornado.ioloop
import tornado.testing

from sandbox.api import make_api_app
from sandbox.state import SandboxState

KEY = "sk_test_sandboxapitests"
PRICE = "price_SandboxTests"


@pytest.fixture
def state(io_loop: tornado.ioloop.IOLoop) -> Any:
    sock, port = tornado.testing.bind_unused_port()
    sandbox = SandboxState(api_key=KEY, price_id=PRICE, public_base_url=f"http://127.0.0.1:{port}")
    server = tornado.httpserver.HTTPServer(make_api_app(sandbox))
    server.add_sockets([sock])
    yield sandbox
    server.stop()


@pytest.fixture
def sdk(state: SandboxState, io_loop: tornado.ioloop.IOLoop) -> Any:
    """Makes SDK clients inside the test's loop; closes them afterwards."""
    made: list[stripe.HTTPXClient] = []

    def make(key: str = KEY, *, timeout: float = 5, retries: int = 0) -> stripe.StripeClient:
        http = stripe.HTTPXClient(timeout=timeout)
        made.append(http)
        return stripe.StripeClient(
            key,
            http_client=http,
            max_network_retries=retries,
            base_addresses=cast(Any, {"api": state.public_base_url}),
        )

    yield make
    for http in made:
        io_loop.run_sync(http.close_async)


def params(project: str = "proj_1", **changes: Any) -> Any:
    """The service's request, typed loosely: the SDK's TypedDicts would refuse the bad ones."""
    base: dict[str, Any] = {
        "mode": "payment",
        "line_items": [{"price": PRICE, "quantity": 1}],
        "success_url": "https://app.example/ok?s={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://app.example/cancel",
        "client_reference_id": project,
        "metadata": {"project_id": project},
        "payment_intent_data": {"metadata": {"project_id": project}},
        "expires_at": int(time.time()) + 3600,
    }
    return base | changes


Make = Callable[..., stripe.StripeClient]


async def test_creates_a_session_from_the_services_exact_request(
    sdk: Make, state: SandboxState
) -> None:
    session = await sdk().v1.checkout.sessions.create_async(params=params())
    assert session.id.startswith("cs_test_")
    assert session.status == "open"
    assert session.client_reference_id == "proj_1"
    assert session.amount_total == 250000
    assert session.url == f"{state.public_base_url}/c/pay/{session.id}"
    fetched = await sdk().v1.checkout.sessions.retrieve_async(session.id)
    assert fetched.id == session.id


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"bogus_param": "x"}, "bogus_param"),
        ({"expires_at": int(time.time()) + 29 * 60}, "expires_at"),
        ({"expires_at": int(time.time()) + 25 * 3600}, "expires_at"),
        ({"line_items": [{"price": "price_Other", "quantity": 1}]}, "line_items[0][price]"),
        ({"mode": "rental"}, "mode"),
        ({"success_url": "/relative"}, "success_url"),
    ],
)
async def test_refuses_what_stripe_refuses(sdk: Make, changes: dict[str, Any], param: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await sdk().v1.checkout.sessions.create_async(params=params(**changes))
    assert caught.value.param == param
    assert caught.value.http_status == 400


async def test_a_wrong_key_is_an_authentication_error(sdk: Make) -> None:
    with pytest.raises(stripe.AuthenticationError):
        await sdk("sk_test_wrong").v1.checkout.sessions.create_async(params=params())


async def test_same_idempotency_key_and_params_replay_the_same_session(
    sdk: Make, state: SandboxState
) -> None:
    body = params()
    first = await sdk().v1.checkout.sessions.create_async(
        params=body, options={"idempotency_key": "k1"}
    )
    again = await sdk().v1.checkout.sessions.create_async(
        params=body, options={"idempotency_key": "k1"}
    )
    assert again.id == first.id
    assert state.create_calls == 1
    with pytest.raises(stripe.IdempotencyError):
        await sdk().v1.checkout.sessions.create_async(
            params=params("proj_2"), options={"idempotency_key": "k1"}
        )


async def test_unknown_session_is_resource_missing(sdk: Make) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await sdk().v1.checkout.sessions.retrieve_async("cs_test_nope")
    assert caught.value.code == "resource_missing"


async def test_injected_faults_surface_as_the_sdks_errors(sdk: Make, state: SandboxState) -> None:
    state.faults.fail_next(1, status=500)
    with pytest.raises(stripe.APIError):
        await sdk().v1.checkout.sessions.create_async(params=params())
    state.faults.fail_next(1, status=429)
    with pytest.raises(stripe.RateLimitError):
        await sdk().v1.checkout.sessions.create_async(params=params())
    state.faults.hang_next(1)
    with pytest.raises(stripe.APIConnectionError):
        await sdk(timeout=0.5).v1.checkout.sessions.create_async(params=params())
    assert state.create_calls == 0


async def _all_events(client: stripe.StripeClient, **query: Any) -> list[str]:
    page = await client.v1.events.list_async(params=cast(Any, query))
    return [event.id async for event in page.auto_paging_iter()]


async def test_events_list_paginates_filters_and_refuses_unknown_params(
    sdk: Make, state: SandboxState
) -> None:
    for n in range(250):
        state.add_event(
            {
                "id": f"evt_{n:04d}",
                "object": "event",
                "created": 1_700_000_000 + n,
                "type": "charge.refunded" if n % 2 else "customer.created",
                "data": {"object": {}},
            }
        )
    everything = await _all_events(sdk(), limit=100)
    assert everything == [f"evt_{n:04d}" for n in reversed(range(250))]
    refunds = await _all_events(
        sdk(), limit=100, types=["charge.refunded"], created={"gte": 1_700_000_100}
    )
    assert refunds == [f"evt_{n:04d}" for n in reversed(range(100, 250)) if n % 2]
    wildcard = await _all_events(sdk(), limit=100, type="charge.*")
    assert len(wildcard) == 125
    with pytest.raises(stripe.InvalidRequestError):
        await sdk().v1.events.list_async(params=cast(Any, {"limit": 101}))
    with pytest.raises(stripe.InvalidRequestError):
        await sdk().v1.events.list_async(params=cast(Any, {"bogus": 1}))


async def test_lifecycle_events_carry_what_the_service_needs(
    sdk: Make, state: SandboxState
) -> None:
    session = await sdk().v1.checkout.sessions.create_async(params=params("proj_life"))
    completed = state.complete_session(session.id)
    obj = completed["data"]["object"]
    assert (completed["type"], obj["payment_status"], obj["client_reference_id"]) == (
        "checkout.session.completed",
        "paid",
        "proj_life",
    )
    assert obj["payment_intent"].startswith("pi_")
    refund = state.refund(session.id, amount=100)["data"]["object"]
    assert (refund["amount_refunded"], refund["metadata"]) == (100, {"project_id": "proj_life"})
    assert refund["payment_intent"] == obj["payment_intent"]
    dispute = state.open_dispute(session.id)["data"]["object"]
    assert dispute["metadata"] == {}
    assert dispute["payment_intent"] == obj["payment_intent"]
    closed = state.close_dispute(session.id, won=False)
    assert closed["data"]["object"]["status"] == "lost"
    listed = await _all_events(sdk(), limit=100)
    assert listed == [e["id"] for e in reversed(state.events)]
