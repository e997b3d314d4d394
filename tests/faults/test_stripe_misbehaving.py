"""Stripe misbehaving: rate limits, refused connections, hangs. Checkout answers 502 within
a bounded time, the SDK's retries reuse the idempotency key, and the event loop keeps
serving other requests meanwhile."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import pytest
import tornado.httpserver
import tornado.web
from flows import status_of
from helpers import ServiceClient, StripeStandIn, event_for, new_id, session_creations
from processes import free_port

from service.config import Settings
from service.http.context import AppContext


async def test_a_rate_limited_checkout_is_a_502_and_changes_nothing(
    client: ServiceClient, stripe_api: StripeStandIn
) -> None:
    stripe_api.state.faults.fail_next(1, status=429)
    project = new_id()
    response = await client.checkout(project)
    assert response.code == 502
    assert "rate-limited" in response.json()["error"]
    assert len(session_creations(stripe_api)) == 1  # like Stripe's SDK, no blind retry of a 429
    assert await status_of(client, project) is None
    assert (await client.checkout(project)).code == 200


async def test_one_transient_failure_is_absorbed_by_the_sdks_retry(
    client: ServiceClient, stripe_api: StripeStandIn
) -> None:
    stripe_api.state.faults.fail_next(1, status=503)
    response = await client.checkout(new_id())
    assert response.code == 200
    first, second = session_creations(stripe_api)
    assert first.idempotency_key == second.idempotency_key


@pytest.fixture
def unreachable(make_ctx: Any, settings: Settings) -> AppContext:
    """A service whose Stripe refuses connections: nothing listens on the port."""
    ctx: AppContext = make_ctx(replace(settings, stripe_api_base=f"http://127.0.0.1:{free_port()}"))
    return ctx


async def test_a_refused_connection_is_a_prompt_502(unreachable: AppContext) -> None:
    from service.errors import StripeFailed  # noqa: PLC0415
    from service.payments import start_checkout  # noqa: PLC0415

    started = time.monotonic()
    with pytest.raises(StripeFailed, match="could not be reached"):
        await start_checkout(
            unreachable.pool,
            unreachable.queries,
            unreachable.gateway,
            unreachable.settings,
            new_id(),
        )
    assert time.monotonic() - started < 5


async def test_health_and_webhooks_are_served_while_stripe_hangs(
    client: ServiceClient, stripe_api: StripeStandIn
) -> None:
    stripe_api.state.faults.hang_next(2)  # the call and the SDK's one retry both hang
    stuck = asyncio.ensure_future(client.checkout(new_id()))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    assert (await client.request("GET", "/health")).code == 200
    paid = event_for("checkout.session.completed.paid", new_id())
    assert (await client.webhook(paid)).code == 200
    assert time.monotonic() - started < 0.5
    assert not stuck.done()
    assert (await stuck).code == 502


class _OddStripe(tornado.web.RequestHandler):
    """Answers every checkout with 200 and a body that is not a usable session."""

    def initialize(self, body: bytes) -> None:
        self.body = body

    def post(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(self.body)


@pytest.fixture(
    params=[
        b'{"id": "cs_test_nourl", "object": "checkout.session", "expires_at": 1999999999}',
        b'{"id": "cs_test_badexpiry", "url": "https://checkout.stripe.com/x", "expires_at": "x"}',
        b"[]",
    ],
    ids=["no-url", "expiry-not-a-number", "not-an-object"],
)
def odd_stripe(make_ctx: Any, settings: Settings, request: pytest.FixtureRequest) -> Any:
    """A service whose Stripe answers the checkout 200 with an unusable body."""
    port = free_port()
    server = tornado.httpserver.HTTPServer(
        tornado.web.Application([(r"/v1/checkout/sessions", _OddStripe, {"body": request.param})])
    )
    server.listen(port, "127.0.0.1")
    yield make_ctx(replace(settings, stripe_api_base=f"http://127.0.0.1:{port}"))
    server.stop()


async def test_a_200_without_a_usable_session_is_a_502_and_stores_nothing(
    odd_stripe: AppContext,
) -> None:
    from service.errors import ProjectNotFound, StripeFailed  # noqa: PLC0415
    from service.payments import payment_status, start_checkout  # noqa: PLC0415

    ctx = odd_stripe
    project = new_id()
    with pytest.raises(StripeFailed, match="Stripe answered"):
        await start_checkout(ctx.pool, ctx.queries, ctx.gateway, ctx.settings, project)
    with pytest.raises(ProjectNotFound):
        await payment_status(ctx.pool, ctx.queries, ctx.gateway, ctx.settings, project)
