"""POST /v1/refunds through the real SDK: full and partial refunds by payment_intent,
idempotent, refused as Stripe refuses them, each followed by `charge.refunded`; and the
dashboard's list of refunds and who asked for them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, cast

import pytest
import stripe
import tornado.httpclient
from sandbox_helpers import MakeClient, WithWebhooks, open_session

from sandbox.refunds import RefundOrigin
from sandbox.state import SandboxState

pytest_plugins = ["sandbox_fixtures"]

FIXTURE = json.loads((Path(__file__).parent / "data" / "refund.json").read_text())


def paid_intent(state: SandboxState, project: str = "proj_r") -> str:
    session_id = open_session(state, project)
    intent = state.complete_session(session_id)["data"]["object"]["payment_intent"]
    return str(intent)


def duplicate_refund(intent: str, **changes: Any) -> Any:
    """What the service sends for a duplicate payment, typed loosely."""
    return {
        "payment_intent": intent,
        "reason": "duplicate",
        "metadata": {"project_id": "proj_r"},
    } | changes


async def test_a_full_refund_returns_the_refund_and_sends_charge_refunded(
    make_hooked_client: MakeClient, with_webhooks: WithWebhooks
) -> None:
    state = with_webhooks.state
    intent = paid_intent(state)
    refund = await make_hooked_client().v1.refunds.create_async(
        params=duplicate_refund(intent), options={"idempotency_key": f"refund-{intent}"}
    )
    assert refund.id.startswith("re_")
    assert set(refund.to_dict()) == set(FIXTURE), "Stripe's full field set"
    charge = state.payments[state.session_of_payment_intent(intent)].charge
    assert (refund.object, refund.amount, refund.currency, refund.status) == (
        "refund",
        250000,
        "usd",
        "succeeded",
    )
    assert (refund.payment_intent, refund.charge, refund.reason) == (intent, charge, "duplicate")
    assert refund.metadata is not None
    assert refund.metadata.to_dict() == {"project_id": "proj_r"}
    assert state.refund_calls == 1
    recorded = state.requests[-1]
    assert (recorded.method, recorded.path, recorded.idempotency_key) == (
        "POST",
        "/v1/refunds",
        f"refund-{intent}",
    )
    assert recorded.params["metadata[project_id]"] == "proj_r"

    event = state.events[-1]
    assert event["type"] == "charge.refunded"
    obj = event["data"]["object"]
    assert (obj["id"], obj["amount_refunded"], obj["refunded"], obj["payment_intent"]) == (
        charge,
        250000,
        True,
        intent,
    )
    assert obj["refunds"]["data"] == [refund.to_dict()]
    assert refund.last_response is not None
    assert event["request"] == {
        "id": refund.last_response.request_id,
        "idempotency_key": f"refund-{intent}",
    }
    [record] = state.refund_log
    assert (record.origin, record.refund["id"], record.request.id) == (
        RefundOrigin.API,
        refund.id,
        refund.last_response.request_id,
    )
    async with asyncio.timeout(20):
        await state.settled()
    delivered = [json.loads(got.body)["type"] for got in with_webhooks.receiver.got]
    assert delivered == ["checkout.session.completed", "charge.refunded"]


async def test_partial_refunds_add_up_and_then_nothing_is_left(
    make_client: MakeClient, state: SandboxState
) -> None:
    client = make_client()
    intent = paid_intent(state)
    first = await client.v1.refunds.create_async(
        params={"payment_intent": intent, "amount": 100000}
    )
    assert first.amount == 100000
    assert first.reason is None
    assert state.events[-1]["data"]["object"]["amount_refunded"] == 100000
    assert state.events[-1]["data"]["object"]["refunded"] is False
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        await client.v1.refunds.create_async(params={"payment_intent": intent, "amount": 150001})
    assert (too_much.value.http_status, too_much.value.code, too_much.value.param) == (
        400,
        "amount_too_large",
        "amount",
    )
    assert too_much.value.user_message == (
        "Refund amount ($1,500.01) is greater than unrefunded amount on charge ($1,500.00)"
    )
    rest = await client.v1.refunds.create_async(params={"payment_intent": intent})
    assert rest.amount == 150000
    charge = state.events[-1]["data"]["object"]
    assert (charge["amount_refunded"], charge["refunded"]) == (250000, True)
    assert [r["id"] for r in charge["refunds"]["data"]] == [rest.id, first.id]
    with pytest.raises(stripe.InvalidRequestError) as nothing_left:
        await client.v1.refunds.create_async(params={"payment_intent": intent, "amount": 1})
    assert nothing_left.value.code == "charge_already_refunded"
    assert nothing_left.value.user_message == f"Charge {charge['id']} has already been refunded."
    assert state.refund_calls == 2
    assert [e["type"] for e in state.events].count("charge.refunded") == 2


async def test_more_than_the_charge_is_refused_before_any_refund(
    make_client: MakeClient, state: SandboxState
) -> None:
    intent = paid_intent(state)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await make_client().v1.refunds.create_async(
            params={"payment_intent": intent, "amount": 250001}
        )
    assert caught.value.code == "amount_too_large"
    assert caught.value.user_message == (
        "Refund amount ($2,500.01) is greater than charge amount ($2,500.00)"
    )
    assert state.refund_log == []


async def test_same_key_replays_the_refund_and_other_params_are_an_idempotency_error(
    make_client: MakeClient, state: SandboxState
) -> None:
    client = make_client()
    intent = paid_intent(state)
    key: stripe.RequestOptions = {"idempotency_key": f"refund-{intent}"}
    first = await client.v1.refunds.create_async(params=duplicate_refund(intent), options=key)
    again = await client.v1.refunds.create_async(params=duplicate_refund(intent), options=key)
    assert again.to_dict() == first.to_dict()
    assert again.last_response is not None
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    with pytest.raises(stripe.IdempotencyError) as other:
        await client.v1.refunds.create_async(params=duplicate_refund(intent, amount=5), options=key)
    assert other.value.http_status == 400
    assert "same parameters" in other.value.user_message
    assert state.refund_calls == 1
    assert len(state.refund_log) == 1
    assert [e["type"] for e in state.events] == ["checkout.session.completed", "charge.refunded"]
    assert [r.path for r in state.requests] == ["/v1/refunds"] * 3


async def test_a_refund_failing_with_500_is_sent_again_and_made_once(
    make_client: MakeClient, state: SandboxState
) -> None:
    intent = paid_intent(state)
    key: stripe.RequestOptions = {"idempotency_key": f"refund-{intent}"}
    state.faults.fail_next(1, status=500, path_prefix="/v1/refunds")
    with pytest.raises(stripe.APIError):
        await make_client().v1.refunds.create_async(params=duplicate_refund(intent), options=key)
    assert state.refund_log == []
    state.faults.lose_answer_next(1, path_prefix="/v1/refunds")
    with pytest.raises(stripe.APIConnectionError):
        await make_client().v1.refunds.create_async(params=duplicate_refund(intent), options=key)
    assert len(state.refund_log) == 1  # made, but its answer was lost
    refund = await make_client().v1.refunds.create_async(
        params=duplicate_refund(intent), options=key
    )
    assert refund.id == state.refund_log[0].refund["id"]
    assert state.refund_calls == 1


PI = "the paid payment_intent"


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"amount": 5}, "payment_intent", "parameter_missing"),
        ({"payment_intent": "pi_nope"}, "payment_intent", "resource_missing"),
        ({"payment_intent": PI, "amount": 0}, "amount", None),
        ({"payment_intent": PI, "amount": "1.5"}, "amount", None),
        ({"payment_intent": PI, "reason": "changed_mind"}, "reason", None),
        ({"payment_intent": PI, "colour": "red"}, "colour", "parameter_unknown"),
        ({"payment_intent": PI, "metadata": {"k": "v" * 501}}, "metadata[k]", None),
        ({"charge": "ch_x"}, "charge", None),
        ({"payment_intent": PI, "reverse_transfer": True}, "reverse_transfer", None),
    ],
)
async def test_refuses_what_stripe_refuses(
    make_client: MakeClient,
    state: SandboxState,
    params: dict[str, Any],
    param: str,
    code: str | None,
) -> None:
    intent = paid_intent(state)
    body = {name: intent if value == PI else value for name, value in params.items()}
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await make_client().v1.refunds.create_async(
            params=cast(Any, body), options={"idempotency_key": "refused"}
        )
    assert (caught.value.http_status, caught.value.param, caught.value.code) == (400, param, code)
    assert state.refund_log == []
    assert [e["type"] for e in state.events] == ["checkout.session.completed"]


async def test_unsettled_failed_and_disputed_payments_cannot_be_refunded(
    make_client: MakeClient, state: SandboxState
) -> None:
    client = make_client()
    pending = open_session(state, "proj_ach")
    state.complete_session(pending, payment_status="unpaid")
    failed = open_session(state, "proj_ach_failed")
    state.complete_session(failed, payment_status="unpaid")
    state.async_payment_failed(failed)
    for session_id in (pending, failed):
        intent = state.payments[session_id].payment_intent
        with pytest.raises(stripe.InvalidRequestError) as caught:
            await client.v1.refunds.create_async(params={"payment_intent": intent})
        assert caught.value.user_message == (
            f"This PaymentIntent ({intent}) does not have a successful charge to refund."
        )
    disputed = open_session(state, "proj_disputed")
    state.complete_session(disputed)
    state.open_dispute(disputed)
    with pytest.raises(stripe.InvalidRequestError) as charged_back:
        await client.v1.refunds.create_async(
            params={"payment_intent": state.payments[disputed].payment_intent}
        )
    assert charged_back.value.code == "charge_disputed"
    assert state.refund_log == []


async def test_the_dashboard_lists_refunds_and_who_asked(
    make_hooked_client: MakeClient,
    with_webhooks: WithWebhooks,
    browser_like: tornado.httpclient.AsyncHTTPClient,
) -> None:
    state = with_webhooks.state
    intent = paid_intent(state, "proj_twice")
    by_api = await make_hooked_client().v1.refunds.create_async(
        params=duplicate_refund(intent, amount=100000, metadata={"project_id": "proj_twice"}),
        options={"idempotency_key": f"refund-{intent}"},
    )
    by_hand = open_session(state, "proj_by_hand")
    state.complete_session(by_hand)
    response = await browser_like.fetch(
        f"{with_webhooks.url}/dashboard/sessions/{by_hand}/refund",
        method="POST",
        body="",
        follow_redirects=False,
        raise_error=False,
    )
    assert response.code == 303
    [api_record, hand_record] = state.refund_log
    assert hand_record.origin is RefundOrigin.DASHBOARD
    assert hand_record.refund["reason"] is None
    assert state.refund_calls == 1  # the dashboard's is not an API call

    page = (await browser_like.fetch(f"{with_webhooks.url}/dashboard")).body.decode()
    table = page[page.index('<table id="refunds">') :]
    table = table[: table.index("</table>")]
    api_row = table[table.index(f'id="refund-{by_api.id}"') :].split("</tr>")[0]
    assert 'data-origin="api"' in api_row
    assert '<td data-label="metadata[project_id]" class="project">proj_twice</td>' in api_row
    assert "1,000.00 USD" in api_row
    assert '<td data-label="reason" class="reason">duplicate</td>' in api_row
    assert f"API request {api_record.request.id} (Idempotency-Key refund-{intent})" in api_row
    hand_row = table[table.index(f'id="refund-{hand_record.refund["id"]}"') :].split("</tr>")[0]
    assert 'data-origin="dashboard"' in hand_row
    assert "2,500.00 USD" in hand_row
    assert "(none given)" in hand_row
    assert "dashboard (a person)" in hand_row
    # Newest first, as the rest of the dashboard.
    assert table.index(hand_record.refund["id"]) < table.index(by_api.id)
