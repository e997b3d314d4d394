"""Webhook delivery like Stripe's: every event POSTed signed over the exact bytes sent,
retried with exponential back-off on non-2xx or timeout, logged per event, resendable."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
from collections.abc import Iterator

import pytest
import stripe
from sandbox_helpers import KEY, PRICE, WEBHOOK_SECRET, WithWebhooks, open_session, settle
from tornado.httpclient import AsyncHTTPClient

from sandbox.__main__ import parse_args
from sandbox.server import ThreadedSandbox
from sandbox.state import SandboxState
from sandbox.webhooks import Deliverer, WebhookTarget, signature_header

pytest_plugins = ["sandbox_fixtures"]


async def test_every_event_is_posted_signed_as_stripe_signs_it(
    with_webhooks: WithWebhooks,
) -> None:
    state, receiver = with_webhooks.state, with_webhooks.receiver
    session_id = open_session(state, "proj_signed")
    event = state.complete_session(session_id)  # returns at once; delivery is in the background
    assert receiver.got == []
    await settle(state)

    [got] = receiver.got
    assert got.headers["Content-Type"] == "application/json; charset=utf-8"
    assert got.headers["User-Agent"] == "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
    header = got.headers["Stripe-Signature"]
    parsed = stripe.Webhook.construct_event(got.body.decode("utf-8"), header, WEBHOOK_SECRET)
    assert (parsed.id, parsed.type) == (event["id"], "checkout.session.completed")
    assert parsed.data.object["client_reference_id"] == "proj_signed"
    assert json.loads(got.body) == event
    # Exactly what the SDK computes over the bytes sent, at the time in the header.
    timestamp = int(header.split(",")[0].removeprefix("t="))
    assert abs(timestamp - time.time()) < 5
    assert header == stripe.WebhookSignature.generate_signature_header(
        got.body.decode("utf-8"), WEBHOOK_SECRET, timestamp
    )
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(got.body.decode(), header, "whsec_someoneElse")

    [delivery] = state.deliverer.deliveries[event["id"]] if state.deliverer else []
    assert delivery.outcome == "delivered"
    assert [a.status for a in delivery.attempts] == [200]
    assert delivery.attempts[0].duration >= 0
    assert abs(delivery.attempts[0].at - time.time()) < 5


async def test_a_500_is_retried_after_the_back_off_and_then_delivered(
    with_webhooks: WithWebhooks,
) -> None:
    state, receiver = with_webhooks.state, with_webhooks.receiver
    receiver.plan = [(500, 0.0), (500, 0.0)]
    event = state.expire_session(open_session(state, "proj_retry"))
    await settle(state)

    assert len(receiver.got) == 3
    assert {json.loads(g.body)["id"] for g in receiver.got} == {event["id"]}
    gaps = [b.at - a.at for a, b in zip(receiver.got, receiver.got[1:], strict=False)]
    # 0.2 s, then 0.4 s (base 0.2 s, doubling)
    assert 0.2 <= gaps[0] < 0.4, gaps
    assert 0.4 <= gaps[1] < 0.7, gaps
    assert state.deliverer is not None
    [delivery] = state.deliverer.deliveries[event["id"]]
    assert [a.status for a in delivery.attempts] == [500, 500, 200]
    assert delivery.outcome == "delivered"
    for got in receiver.got:  # each attempt is signed afresh and verifies
        stripe.Webhook.construct_event(
            got.body.decode(), got.headers["Stripe-Signature"], WEBHOOK_SECRET
        )


async def test_a_timeout_counts_as_a_failed_attempt(with_webhooks: WithWebhooks) -> None:
    state, receiver = with_webhooks.state, with_webhooks.receiver
    receiver.plan = [(200, 1.5)]  # answers after the 1 s timeout
    event = state.expire_session(open_session(state, "proj_slow"))
    await settle(state)
    assert state.deliverer is not None
    [delivery] = state.deliverer.deliveries[event["id"]]
    assert [a.status for a in delivery.attempts] == [None, 200]
    assert delivery.attempts[0].error is not None
    assert "Timeout" in delivery.attempts[0].error
    assert 0.9 < delivery.attempts[0].duration < 1.5


async def test_delivery_gives_up_after_the_last_attempt(with_webhooks: WithWebhooks) -> None:
    state, receiver = with_webhooks.state, with_webhooks.receiver
    receiver.plan = [(503, 0.0)] * 10
    event = state.expire_session(open_session(state, "proj_down"))
    await settle(state)
    assert len(receiver.got) == 4  # max_attempts
    assert state.deliverer is not None
    [delivery] = state.deliverer.deliveries[event["id"]]
    assert (delivery.outcome, [a.status for a in delivery.attempts]) == ("failed", [503] * 4)


async def test_an_unreachable_endpoint_is_logged_as_an_error() -> None:
    target = WebhookTarget(
        "http://127.0.0.1:9/webhooks", WEBHOOK_SECRET, retry_base_seconds=0.01, max_attempts=2
    )
    state = SandboxState(api_key=KEY, price_id=PRICE, webhook=target)
    event = state.expire_session(open_session(state))
    await settle(state)
    assert state.deliverer is not None
    [delivery] = state.deliverer.deliveries[event["id"]]
    assert delivery.outcome == "failed"
    assert [a.status for a in delivery.attempts] == [None, None]
    assert all(a.error for a in delivery.attempts)


async def test_resend_delivers_the_same_event_again(with_webhooks: WithWebhooks) -> None:
    state, receiver = with_webhooks.state, with_webhooks.receiver
    event = state.complete_session(open_session(state, "proj_resend"))
    await settle(state)
    assert state.resend(event["id"]) is event
    await settle(state)
    assert [json.loads(g.body)["id"] for g in receiver.got] == [event["id"]] * 2
    assert receiver.got[0].body == receiver.got[1].body
    assert state.deliverer is not None
    assert [d.resend for d in state.deliverer.deliveries[event["id"]]] == [False, True]
    assert len(state.events) == 1  # a resend is no new event
    with pytest.raises(KeyError):
        state.resend("evt_missing")


async def test_delivery_never_blocks_the_api(with_webhooks: WithWebhooks) -> None:
    state, receiver = with_webhooks.state, with_webhooks.receiver
    receiver.plan = [(200, 0.8)]
    state.expire_session(open_session(state, "proj_busy"))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    http = AsyncHTTPClient(force_instance=True)
    try:
        response = await http.fetch(
            f"{with_webhooks.url}/v1/events", headers={"Authorization": f"Bearer {KEY}"}
        )
    finally:
        http.close()
    assert response.code == 200
    assert time.monotonic() - started < 0.5
    await settle(state)


def test_retry_schedule_doubles_up_to_its_cap() -> None:
    target = WebhookTarget("http://x", "whsec_x", retry_base_seconds=0.5, retry_max_seconds=3)
    assert [target.retry_delay(n) for n in range(1, 6)] == [0.5, 1, 2, 3, 3]
    assert signature_header(b"{}", "whsec_x", 1700000000) == (
        stripe.WebhookSignature.generate_signature_header("{}", "whsec_x", 1700000000)
    )


def test_without_a_loop_delivery_says_what_it_needs() -> None:
    deliverer = Deliverer(WebhookTarget("http://x", "whsec_x"))
    with pytest.raises(RuntimeError, match="running asyncio loop"):
        deliverer.deliver({"id": "evt_1"})


@pytest.fixture
def plain_receiver() -> Iterator[tuple[str, list[bytes]]]:
    """A webhook endpoint on a thread of its own (for a test with no loop of its own)."""
    got: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    server.shutdown()
    server.server_close()


def test_events_made_on_another_thread_are_delivered_on_the_servers_loop(
    plain_receiver: tuple[str, list[bytes]],
) -> None:
    url, got = plain_receiver
    state = SandboxState(api_key=KEY, price_id=PRICE, webhook=WebhookTarget(url, WEBHOOK_SECRET))
    with ThreadedSandbox(state):
        event = state.expire_session(open_session(state))
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [json.loads(body)["id"] for body in got] == [event["id"]]


def test_the_command_line_needs_a_secret_with_a_webhook_url() -> None:
    args = parse_args(
        [
            *("--webhook-url", "http://127.0.0.1:5003/webhooks/stripe"),
            *("--webhook-secret", "whsec_1", "--webhook-retry-base", "0.2"),
            *("--service-url", "http://127.0.0.1:5003"),
        ]
    )
    assert (args.webhook_retry_base, args.webhook_max_attempts) == (0.2, 8)
    with pytest.raises(SystemExit):
        parse_args(["--webhook-url", "http://127.0.0.1:5003/webhooks/stripe"])
