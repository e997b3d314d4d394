"""The pages for people: the hosted checkout page at each session's URL (Pay, Pay by bank
debit, Cancel), the dashboard's actions, and the demo frontend."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlencode

import pytest
import tornado.httpclient
from sandbox_helpers import WithWebhooks, open_session, settle

from sandbox.pages import format_amount
from sandbox.state import SandboxState

pytest_plugins = ["sandbox_fixtures"]

Client = tornado.httpclient.AsyncHTTPClient


async def get(http: Client, url: str) -> tornado.httpclient.HTTPResponse:
    return await http.fetch(url, raise_error=False, follow_redirects=False)


async def post(http: Client, url: str, **form: str) -> tornado.httpclient.HTTPResponse:
    return await http.fetch(
        url, method="POST", body=urlencode(form), raise_error=False, follow_redirects=False
    )


def pay_page(with_webhooks: WithWebhooks, session_id: str) -> str:
    """The hosted checkout page of a session (its `url`)."""
    return f"{with_webhooks.url}/c/pay/{session_id}"


async def pay_by_bank(
    http: Client, with_webhooks: WithWebhooks, session_id: str, choice: str
) -> tornado.httpclient.HTTPResponse:
    """The buyer's "Pay by bank debit" on the session's page, with a bank outcome chosen."""
    return await post(http, pay_page(with_webhooks, session_id), action="bank", bank_outcome=choice)


def assert_still_open(state: SandboxState, session_id: str) -> None:
    """Nothing happened: the session is open and no event was made."""
    assert state.events == []
    assert state.sessions[session_id]["status"] == "open"


def types(state: SandboxState) -> list[str]:
    return [e["type"] for e in state.events]


def last(state: SandboxState) -> dict[str, Any]:
    obj: dict[str, Any] = state.events[-1]["data"]["object"]
    return obj


async def test_the_checkout_page_shows_the_price_the_project_and_the_buttons(
    with_webhooks: WithWebhooks, browser_like: Client
) -> None:
    session_id = open_session(with_webhooks.state, "proj_page")
    url = with_webhooks.state.sessions[session_id]["url"]
    assert url == f"{with_webhooks.url}/c/pay/{session_id}"
    response = await get(browser_like, url)
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    page = response.body.decode()
    assert '<h1 id="project">proj_page</h1>' in page
    assert '<div class="price" id="price">2,500.00 USD</div>' in page
    for button in ('value="card">Pay</button>', ">Pay by bank debit</button>", ">Cancel</button>"):
        assert button in page
    for choice in ("succeed-2", "succeed-10", "succeed-60", "fail-2"):
        assert f'value="{choice}"' in page
    assert "no real money" in page
    assert "http://" not in page.replace(with_webhooks.url, "")  # nothing from elsewhere
    assert with_webhooks.state.events == []


async def test_pay_completes_the_session_and_redirects_to_the_success_url(
    with_webhooks: WithWebhooks, browser_like: Client
) -> None:
    state = with_webhooks.state
    session_id = open_session(state, "proj_pay")
    response = await post(browser_like, pay_page(with_webhooks, session_id), action="card")
    assert response.code == 303
    assert response.headers["Location"] == f"https://app.example/paid?session={session_id}"
    assert types(state) == ["checkout.session.completed"]
    assert (last(state)["payment_status"], last(state)["client_reference_id"]) == (
        "paid",
        "proj_pay",
    )
    await settle(state)
    assert len(with_webhooks.receiver.got) == 1

    # Paid: the page now says so instead of offering the buttons again.
    page = (await get(browser_like, pay_page(with_webhooks, session_id))).body.decode()
    assert "This checkout is complete" in page
    assert "<button" not in page
    again = await post(browser_like, pay_page(with_webhooks, session_id), action="card")
    assert again.code == 409
    assert types(state) == ["checkout.session.completed"]


@pytest.mark.parametrize(
    ("choice", "outcome"),
    [
        ("succeed-2", "checkout.session.async_payment_succeeded"),
        ("fail-2", "checkout.session.async_payment_failed"),
    ],
)
async def test_bank_debit_completes_unpaid_then_settles_after_the_chosen_delay(
    with_webhooks: WithWebhooks, browser_like: Client, choice: str, outcome: str
) -> None:
    state = with_webhooks.state
    session_id = open_session(state, "proj_bank")
    started = time.monotonic()
    response = await pay_by_bank(browser_like, with_webhooks, session_id, choice)
    assert response.code == 303
    assert response.headers["Location"] == f"https://app.example/paid?session={session_id}"
    assert types(state) == ["checkout.session.completed"]
    assert last(state)["payment_status"] == "unpaid"
    await asyncio.sleep(1.5)
    assert types(state) == ["checkout.session.completed"]
    await settle(state)
    assert 2 <= time.monotonic() - started < 4
    assert types(state) == ["checkout.session.completed", outcome]
    paid = outcome.endswith("succeeded")
    assert last(state)["payment_status"] == ("paid" if paid else "unpaid")
    assert len(with_webhooks.receiver.got) == 2


async def test_a_bad_bank_choice_is_refused(
    with_webhooks: WithWebhooks, browser_like: Client
) -> None:
    state = with_webhooks.state
    session_id = open_session(state)
    for choice in ("succeed-3", "maybe-2", ""):
        response = await pay_by_bank(browser_like, with_webhooks, session_id, choice)
        assert response.code == 400
    response = await post(browser_like, pay_page(with_webhooks, session_id), action="steal")
    assert response.code == 400
    assert_still_open(state, session_id)


async def test_cancel_redirects_to_the_cancel_url_and_leaves_the_session_open(
    with_webhooks: WithWebhooks, browser_like: Client
) -> None:
    state = with_webhooks.state
    session_id = open_session(state)
    response = await post(browser_like, pay_page(with_webhooks, session_id), action="cancel")
    assert response.code == 303
    assert response.headers["Location"] == "https://app.example/cancelled"
    assert_still_open(state, session_id)


async def test_expired_and_unknown_sessions_show_a_page_without_buttons(
    with_webhooks: WithWebhooks, browser_like: Client
) -> None:
    state = with_webhooks.state
    session_id = open_session(state, "proj_late")
    state.expire_session(session_id)
    response = await get(browser_like, pay_page(with_webhooks, session_id))
    assert response.code == 200
    page = response.body.decode()
    assert "This checkout has expired" in page
    assert "proj_late" in page
    assert "<button" not in page
    paying = await post(browser_like, pay_page(with_webhooks, session_id), action="card")
    assert paying.code == 409
    assert types(state) == ["checkout.session.expired"]

    overdue = open_session(state, "proj_overdue")
    state.set_expires_at(overdue, time.time() - 1)
    page = (await get(browser_like, pay_page(with_webhooks, overdue))).body.decode()
    assert "This checkout has expired" in page
    assert types(state) == ["checkout.session.expired"] * 2
    assert last(state)["id"] == overdue

    unknown = await get(browser_like, pay_page(with_webhooks, "cs_test_nothing"))
    assert unknown.code == 404
    assert "does not exist" in unknown.body.decode()


async def test_dashboard_actions_create_the_events_stripe_would_send(
    with_webhooks: WithWebhooks, browser_like: Client
) -> None:
    state, base = with_webhooks.state, with_webhooks.url

    async def act(session_id: str, action: str) -> str:
        response = await post(browser_like, f"{base}/dashboard/sessions/{session_id}/{action}")
        assert response.code == 303
        assert response.headers["Location"].startswith("/dashboard?")
        return response.headers["Location"]

    to_expire = open_session(state, "proj_expire")
    assert "done=" in await act(to_expire, "expire")
    assert types(state)[-1] == "checkout.session.expired"

    refunded = open_session(state, "proj_refund")
    state.complete_session(refunded)
    await act(refunded, "refund")
    assert types(state)[-1] == "charge.refunded"
    assert (last(state)["amount_refunded"], last(state)["refunded"]) == (250000, True)

    for won in (True, False):
        disputed = open_session(state, f"proj_dispute_{won}")
        state.complete_session(disputed)
        await act(disputed, "dispute")
        assert types(state)[-1] == "charge.dispute.created"
        await act(disputed, "dispute-won" if won else "dispute-lost")
        assert types(state)[-1] == "charge.dispute.closed"
        assert last(state)["status"] == ("won" if won else "lost")

    bank = open_session(state, "proj_bank_by_hand")
    state.complete_session(bank, payment_status="unpaid")
    await act(bank, "bank-succeeded")
    assert types(state)[-1] == "checkout.session.async_payment_succeeded"

    # What cannot happen is refused, with the reason shown and no event.
    count = len(state.events)
    location = await act(to_expire, "refund")
    assert "error=" in location
    assert "not+complete" in location or "not%20complete" in location
    assert len(state.events) == count
    missing = await post(browser_like, f"{base}/dashboard/sessions/{to_expire}/explode")
    assert missing.code == 404

    await settle(state)
    page = (await get(browser_like, f"{base}/dashboard")).body.decode()
    for session_id in (to_expire, refunded, bank):
        assert f'id="session-{session_id}"' in page
    assert "proj_refund" in page
    assert "2,500.00 USD" in page
    for event in state.events:
        assert f'id="event-{event["id"]}"' in page
    assert page.count("→ 200") == len(state.events)
    assert with_webhooks.receiver.url in page


async def test_the_dashboard_resends_the_same_event(
    with_webhooks: WithWebhooks, browser_like: Client
) -> None:
    state, base = with_webhooks.state, with_webhooks.url
    event = state.complete_session(open_session(state, "proj_again"))
    await settle(state)
    response = await post(browser_like, f"{base}/dashboard/events/{event['id']}/resend")
    assert response.code == 303
    assert "sent+again" in response.headers["Location"]
    await settle(state)
    got = with_webhooks.receiver.got
    assert [g.body for g in got] == [got[0].body] * 2
    assert f'"id": "{event["id"]}"' in got[0].body.decode()
    assert len(state.events) == 1
    page = (await get(browser_like, f"{base}/dashboard")).body.decode()
    assert "resend:" in page
    unknown = await post(browser_like, f"{base}/dashboard/events/evt_nope/resend")
    assert "error=" in unknown.headers["Location"]


async def test_the_demo_pages(with_webhooks: WithWebhooks, browser_like: Client) -> None:
    state, base = with_webhooks.state, with_webhooks.url
    root = await get(browser_like, f"{base}/")
    assert (root.code, root.headers["Location"]) == (302, "/demo")

    demo = await get(browser_like, f"{base}/demo")
    page = demo.body.decode()
    assert 'data-service="http://127.0.0.1:5003"' in page
    assert 'id="buy"' in page
    assert "/api/checkout" in page
    assert "connect-src 'self' http://127.0.0.1:5003" in demo.headers["Content-Security-Policy"]

    session_id = open_session(state, "proj_demo_success")
    success = await get(browser_like, f"{base}/demo/success?session_id={session_id}")
    page = success.body.decode()
    assert 'data-project="proj_demo_success"' in page
    assert "/api/projects/" in page
    unknown = (await get(browser_like, f"{base}/demo/success?session_id=cs_x")).body.decode()
    assert "knows no checkout session" in unknown
    cancelled = (await get(browser_like, f"{base}/demo/cancelled")).body.decode()
    assert "Payment cancelled" in cancelled


async def test_the_v1_api_still_answers_in_stripes_shape_next_to_the_pages(
    with_webhooks: WithWebhooks, browser_like: Client
) -> None:
    response = await get(browser_like, f"{with_webhooks.url}/v1/customers")
    assert response.code == 401  # authentication first, as on Stripe
    response = await get(browser_like, f"{with_webhooks.url}/nothing-here")
    assert response.code == 404
    assert response.headers["Content-Type"] == "application/json"


def test_amounts_are_shown_in_the_currencys_units() -> None:
    assert format_amount(250000, "usd") == "2,500.00 USD"
    assert format_amount(500, "jpy") == "500 JPY"
    assert format_amount(None, "usd") == "no payment"
