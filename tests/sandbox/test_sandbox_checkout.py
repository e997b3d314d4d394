"""POST/GET /v1/checkout/sessions through the real SDK: as strict as Stripe, idempotent,
and able to misbehave on request."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import stripe
from sandbox_helpers import KEY, PRICE, MakeClient, Served, assert_no_such_session, session_params

from sandbox.state import SandboxState

FIXTURE = json.loads((Path(__file__).parent / "data" / "checkout_session.json").read_text())

pytest_plugins = ["sandbox_fixtures"]


async def test_the_services_request_creates_an_open_session(
    make_client: MakeClient, state: SandboxState
) -> None:
    session = await make_client().v1.checkout.sessions.create_async(
        params=session_params("proj_a"), options={"idempotency_key": "k1"}
    )
    assert session.id.startswith("cs_test_")
    assert len(session.id) > 60
    assert (session.object, session.mode, session.status, session.payment_status) == (
        "checkout.session",
        "payment",
        "open",
        "unpaid",
    )
    assert session.client_reference_id == "proj_a"
    assert session.metadata is not None
    assert session.metadata.to_dict() == {"project_id": "proj_a"}
    assert (session.amount_total, session.amount_subtotal, session.currency) == (
        250000,
        250000,
        "usd",
    )
    assert session.url == f"{state.public_base_url}/c/pay/{session.id}"
    assert session.payment_intent is None
    assert session.livemode is False
    assert session.expires_at - session.created == pytest.approx(3600, abs=2)
    assert set(state.sessions[session.id]) == set(FIXTURE), "Stripe's full field set"
    assert state.create_calls == 1
    recorded = state.requests[-1]
    assert (recorded.method, recorded.path, recorded.idempotency_key) == (
        "POST",
        "/v1/checkout/sessions",
        "k1",
    )
    assert recorded.params["payment_intent_data[metadata][project_id]"] == "proj_a"


async def test_quantity_multiplies_the_amount(make_client: MakeClient) -> None:
    session = await make_client().v1.checkout.sessions.create_async(
        params=session_params(line_items=[{"price": PRICE, "quantity": 3}])
    )
    assert session.amount_total == 750000


async def test_retrieve_returns_the_session_and_404s_an_unknown_one(
    make_client: MakeClient,
) -> None:
    client = make_client()
    created = await client.v1.checkout.sessions.create_async(params=session_params())
    fetched = await client.v1.checkout.sessions.retrieve_async(created.id)
    assert fetched.to_dict() == created.to_dict()
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.retrieve_async("cs_test_nope")
    assert_no_such_session(caught.value, "cs_test_nope")


@pytest.mark.parametrize(
    ("changes", "param", "code"),
    [
        ({"bogus_param": "x"}, "bogus_param", "parameter_unknown"),
        (
            {"metadata": {"project_id": "p"}, "payment_method_types": ["card"]},
            "payment_method_types[0]",
            "parameter_unknown",
        ),
        (
            {"line_items": [{"price": PRICE, "quantity": 1, "colour": "red"}]},
            "line_items[0][colour]",
            "parameter_unknown",
        ),
        (
            {"payment_intent_data": {"metadata": {"a": "b"}, "capture": "now"}},
            "payment_intent_data[capture]",
            "parameter_unknown",
        ),
        ({"expires_at": int(time.time()) + 29 * 60}, "expires_at", None),
        ({"expires_at": int(time.time()) + 25 * 3600}, "expires_at", None),
        ({"expires_at": "soon"}, "expires_at", None),
        (
            {"line_items": [{"price": "price_Other", "quantity": 1}]},
            "line_items[0][price]",
            "resource_missing",
        ),
        ({"line_items": [{"price": PRICE, "quantity": 0}]}, "line_items[0][quantity]", None),
        ({"line_items": [{"price": PRICE, "quantity": "1.5"}]}, "line_items[0][quantity]", None),
        ({"line_items": [{"price": PRICE}]}, "line_items[0][quantity]", "parameter_missing"),
        ({"line_items": None}, "line_items", "parameter_missing"),
        ({"mode": None}, "mode", "parameter_missing"),
        ({"mode": "rental"}, "mode", None),
        ({"success_url": "/relative"}, "success_url", "url_invalid"),
        ({"cancel_url": "https://app.example/{CHECKOUT_SESSION_ID}"}, "cancel_url", "url_invalid"),
        ({"client_reference_id": "x" * 201}, "client_reference_id", None),
        ({"metadata": {"k" * 41: "v"}}, "metadata[" + "k" * 41 + "]", None),
        ({"metadata": {"k": "v" * 501}}, "metadata[k]", None),
        ({"metadata": {f"k{n}": "v" for n in range(51)}}, "metadata", None),
        (
            {"payment_intent_data": {"metadata": {"k": "v" * 501}}},
            "payment_intent_data[metadata][k]",
            None,
        ),
        ({"allow_promotion_codes": "maybe"}, "allow_promotion_codes", None),
    ],
)
async def test_refuses_what_stripe_refuses(
    make_client: MakeClient,
    state: SandboxState,
    changes: dict[str, Any],
    param: str,
    code: str | None,
) -> None:
    params = {k: v for k, v in session_params(**changes).items() if v is not None}
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await make_client().v1.checkout.sessions.create_async(
            params=cast(Any, params), options={"idempotency_key": "refused"}
        )
    assert (caught.value.http_status, caught.value.param, caught.value.code) == (400, param, code)
    assert state.create_calls == 0
    assert state.sessions == {}


async def test_unknown_parameter_message_names_it(make_client: MakeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await make_client().v1.checkout.sessions.create_async(params=session_params(shiny=1))
    assert caught.value.user_message == "Received unknown parameter: shiny"
    assert caught.value.error is not None
    assert caught.value.error.type == "invalid_request_error"


async def test_metadata_keys_are_free_form_and_bounds_are_inclusive(
    make_client: MakeClient,
) -> None:
    metadata = {f"key_{n}": "v" * 500 for n in range(49)} | {"k" * 40: "x"}
    session = await make_client().v1.checkout.sessions.create_async(
        params=session_params(
            metadata=metadata,
            payment_intent_data={"metadata": {"project_id": "p", "any thing": "1"}},
            client_reference_id="r" * 200,
            expires_at=int(time.time()) + 24 * 3600,
        )
    )
    assert session.metadata is not None
    assert session.metadata.to_dict() == metadata


async def test_a_wrong_or_missing_key_is_an_authentication_error(
    make_client: MakeClient, served: Served
) -> None:
    with pytest.raises(stripe.AuthenticationError) as caught:
        await make_client("sk_test_wrongKey9876").v1.checkout.sessions.create_async(
            params=session_params()
        )
    assert caught.value.http_status == 401
    assert caught.value.user_message == "Invalid API Key provided: sk_test_****9876"
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{served.url}/v1/events")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert served.state.create_calls == 0


async def test_same_key_and_params_replay_the_first_answer(
    make_client: MakeClient, served: Served
) -> None:
    client = make_client()
    params = session_params()
    first = await client.v1.checkout.sessions.create_async(
        params=params, options={"idempotency_key": "k1"}
    )
    again = await client.v1.checkout.sessions.create_async(
        params=params, options={"idempotency_key": "k1"}
    )
    assert again.to_dict() == first.to_dict()
    assert served.state.create_calls == 1
    replay = again.last_response
    assert replay is not None
    assert replay.headers["Idempotent-Replayed"] == "true"
    other = await client.v1.checkout.sessions.create_async(
        params=params, options={"idempotency_key": "k2"}
    )
    assert other.id != first.id
    assert served.state.create_calls == 2


async def test_same_key_with_other_params_is_an_idempotency_error(
    make_client: MakeClient, state: SandboxState
) -> None:
    client = make_client()
    await client.v1.checkout.sessions.create_async(
        params=session_params("p1"), options={"idempotency_key": "k1"}
    )
    with pytest.raises(stripe.IdempotencyError) as caught:
        await client.v1.checkout.sessions.create_async(
            params=session_params("p2"), options={"idempotency_key": "k1"}
        )
    assert caught.value.http_status == 400
    assert "same parameters" in caught.value.user_message
    assert state.create_calls == 1


async def test_a_refused_request_does_not_use_up_its_key(
    make_client: MakeClient, state: SandboxState
) -> None:
    client = make_client()
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.checkout.sessions.create_async(
            params=session_params(bogus=1), options={"idempotency_key": "k1"}
        )
    state.faults.fail_next(status=500)
    with pytest.raises(stripe.APIError):
        await client.v1.checkout.sessions.create_async(
            params=session_params(), options={"idempotency_key": "k1"}
        )
    session = await client.v1.checkout.sessions.create_async(
        params=session_params(), options={"idempotency_key": "k1"}
    )
    assert session.status == "open"
    assert state.create_calls == 1


async def test_a_key_in_flight_is_409_and_the_sdks_retry_gets_the_replay(
    make_client: MakeClient, state: SandboxState
) -> None:
    state.faults.delay_seconds = 0.3
    params = session_params()

    async def create(retries: int) -> stripe.checkout.Session:
        return await make_client(retries=retries).v1.checkout.sessions.create_async(
            params=params, options={"idempotency_key": "k1"}
        )

    first, busy = await asyncio.gather(create(0), create(0), return_exceptions=True)
    assert isinstance(first, stripe.checkout.Session)
    # The SDK raises a 409 as a plain APIError (and retries it, when allowed to).
    assert isinstance(busy, stripe.APIError)
    assert busy.http_status == 409
    assert busy.error is not None
    assert (busy.error.type, busy.error.code) == ("idempotency_error", "idempotency_key_in_use")

    sessions = await asyncio.gather(*(create(3) for _ in range(2)))
    assert {s.id for s in sessions} == {first.id}
    assert state.create_calls == 1
    assert state.idempotency.in_flight == 0


async def test_failures_surface_as_the_sdks_errors_and_create_nothing(
    make_client: MakeClient, state: SandboxState
) -> None:
    client = make_client()
    state.faults.fail_next(1, status=500)
    with pytest.raises(stripe.APIError) as server_error:
        await client.v1.checkout.sessions.create_async(params=session_params())
    assert server_error.value.http_status == 500
    state.faults.fail_next(1, status=429)
    with pytest.raises(stripe.RateLimitError):
        await client.v1.checkout.sessions.create_async(params=session_params())
    state.faults.fail_next(1, status=402, error_type="card_error")
    with pytest.raises(stripe.CardError):
        await client.v1.checkout.sessions.create_async(params=session_params())
    assert state.create_calls == 0
    assert state.faults.pending == 0
    assert (await client.v1.checkout.sessions.create_async(params=session_params())).id


async def test_faults_match_their_path_prefix_only(
    make_client: MakeClient, state: SandboxState
) -> None:
    client = make_client()
    state.faults.fail_next(1, status=503, path_prefix="/v1/events")
    await client.v1.checkout.sessions.create_async(params=session_params())
    with pytest.raises(stripe.APIError):
        await client.v1.events.list_async()
    await client.v1.events.list_async()


async def test_the_sdk_retries_a_500_with_the_same_key(
    make_client: MakeClient, state: SandboxState
) -> None:
    state.faults.fail_next(1, status=500)
    session = await make_client(retries=1).v1.checkout.sessions.create_async(
        params=session_params(), options={"idempotency_key": "k1"}
    )
    assert session.status == "open"
    assert [r.idempotency_key for r in state.requests] == ["k1", "k1"]
    assert state.create_calls == 1


async def test_a_hung_request_times_out_and_creates_nothing(
    make_client: MakeClient, state: SandboxState
) -> None:
    state.faults.hang_next(1)
    started = time.monotonic()
    with pytest.raises(stripe.APIConnectionError):
        await make_client(timeout=0.5).v1.checkout.sessions.create_async(
            params=session_params(), options={"idempotency_key": "k1"}
        )
    assert time.monotonic() - started < 2
    assert state.create_calls == 0
    # The hung request held no key: the retry with it runs.
    session = await make_client().v1.checkout.sessions.create_async(
        params=session_params(), options={"idempotency_key": "k1"}
    )
    assert session.status == "open"


async def test_delay_does_not_block_the_loop(make_client: MakeClient, state: SandboxState) -> None:
    state.faults.delay_seconds = 0.5
    client = make_client()
    started = time.monotonic()
    await asyncio.gather(
        *(client.v1.checkout.sessions.create_async(params=session_params()) for _ in range(8))
    )
    assert 0.5 <= time.monotonic() - started < 1.5
    assert state.create_calls == 8


async def test_raw_http_shapes(served: Served) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=served.url, headers=auth) as http:
        unknown = await http.get("/v1/customers")
        wrong_method = await http.delete("/v1/checkout/sessions")
        outside = await http.get("/nothing-here", headers={"Authorization": ""})
        listed = await http.get("/v1/events")
    for response in (unknown, wrong_method, outside):
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "invalid_request_error"
        assert response.headers["Request-Id"].startswith("req_")
    assert unknown.json()["error"]["message"].startswith(
        "Unrecognized request URL (GET: /v1/customers)"
    )
    assert "(DELETE: /v1/checkout/sessions)" in wrong_method.json()["error"]["message"]
    assert listed.headers["Request-Id"].startswith("req_")
    assert listed.headers["Content-Type"].startswith("application/json")
