"""The API version the stand-in answers in: the one a request names in `Stripe-Version`,
else the account's default, which every event carries too."""

from __future__ import annotations

import httpx
from sandbox_helpers import KEY, MakeClient, Served, open_session, session_params

from sandbox.objects import API_VERSION

pytest_plugins = ["sandbox_fixtures"]


async def test_answers_name_the_version_the_sdk_asks_for(make_client: MakeClient) -> None:
    session = await make_client().v1.checkout.sessions.create_async(params=session_params())
    assert session.last_response is not None
    # The SDK pins its version on every request (16.1.0: 2026-10-28.endive).
    assert session.last_response.headers["Stripe-Version"] == "2026-10-28.endive"


async def test_a_named_version_is_echoed_else_the_accounts_default(served: Served) -> None:
    state = served.state
    auth = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=served.url, headers=auth) as http:
        asked = await http.get("/v1/events", headers={"Stripe-Version": "2025-03-31.basil"})
        default = await http.get("/v1/events")
        state.api_version = "2025-09-30.clover"
        account = await http.get("/v1/events")
        missing = await http.get(
            "/v1/checkout/sessions/cs_nope", headers={"Stripe-Version": "2024-06-20"}
        )
        bad = await http.get("/v1/events", headers={"Stripe-Version": "2019-2-19"})
    assert asked.headers["Stripe-Version"] == "2025-03-31.basil"
    assert default.headers["Stripe-Version"] == API_VERSION
    assert account.headers["Stripe-Version"] == "2025-09-30.clover"
    assert (missing.status_code, missing.headers["Stripe-Version"]) == (404, "2024-06-20")
    assert bad.status_code == 400
    assert bad.json()["error"] == {
        "type": "invalid_request_error",
        "message": "Invalid Stripe API version: 2019-2-19",
    }
    assert bad.headers["Stripe-Version"] == "2025-09-30.clover"


async def test_events_carry_the_accounts_version(served: Served) -> None:
    state = served.state
    session_id = open_session(state)
    paid = state.complete_session(session_id)
    state.api_version = "2025-09-30.clover"
    refunded = state.refund(session_id)
    assert (paid["api_version"], refunded["api_version"]) == (API_VERSION, "2025-09-30.clover")
