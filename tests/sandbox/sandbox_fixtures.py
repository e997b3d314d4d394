"""Fixtures of the stand-in's tests: the stand-in served on the test's own loop, and real
SDK clients pointed at it. Test modules load them with `pytest_plugins = ["sandbox_fixtures"]`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any, cast

import pytest
import stripe
import tornado.httpclient
import tornado.httpserver
import tornado.ioloop
import tornado.testing
import tornado.web
from sandbox_helpers import (
    KEY,
    PRICE,
    WEBHOOK_SECRET,
    MakeClient,
    Received,
    Receiver,
    Served,
    WithWebhooks,
)

from sandbox.server import listen
from sandbox.state import SandboxState
from sandbox.webhooks import WebhookTarget


@pytest.fixture
def served(io_loop: tornado.ioloop.IOLoop) -> Iterator[Served]:
    listening = listen(SandboxState(api_key=KEY, price_id=PRICE))
    yield Served(listening.state, listening.url)
    io_loop.run_sync(listening.close, timeout=5)


@pytest.fixture
def state(served: Served) -> SandboxState:
    return served.state


def _clients(url: str, io_loop: tornado.ioloop.IOLoop) -> Iterator[MakeClient]:
    """Builds SDK clients the way the service does, against `url`; closes them after."""
    made: list[stripe.HTTPXClient] = []

    def make(key: str = KEY, *, timeout: float = 5, retries: int = 0) -> stripe.StripeClient:
        # Called inside the test's coroutine, so the HTTPX client binds to the running loop.
        http = stripe.HTTPXClient(timeout=timeout)
        made.append(http)
        return stripe.StripeClient(
            key,
            http_client=http,
            max_network_retries=retries,
            base_addresses=cast(Any, {"api": url}),
        )

    yield make
    for http in made:
        io_loop.run_sync(http.close_async)


@pytest.fixture
def make_client(served: Served, io_loop: tornado.ioloop.IOLoop) -> Iterator[MakeClient]:
    """SDK clients of the stand-in served by `served`."""
    yield from _clients(served.url, io_loop)


@pytest.fixture
def make_hooked_client(
    with_webhooks: WithWebhooks, io_loop: tornado.ioloop.IOLoop
) -> Iterator[MakeClient]:
    """SDK clients of the stand-in that delivers webhooks (`with_webhooks`)."""
    yield from _clients(with_webhooks.url, io_loop)


class _ReceiverHandler(tornado.web.RequestHandler):
    def initialize(self, receiver: Receiver) -> None:
        self.receiver = receiver

    async def post(self) -> None:
        self.receiver.got.append(
            Received(time.monotonic(), dict(self.request.headers.get_all()), self.request.body)
        )
        status, delay = self.receiver.plan.pop(0) if self.receiver.plan else (200, 0.0)
        if delay:
            await asyncio.sleep(delay)
        self.set_status(status)
        self.finish({"received": True} if status == 200 else {"error": "planned"})


@pytest.fixture
def receiver(io_loop: tornado.ioloop.IOLoop) -> Iterator[Receiver]:
    sock, port = tornado.testing.bind_unused_port()
    made = Receiver(f"http://127.0.0.1:{port}/webhooks/stripe", [], [])
    app = tornado.web.Application([(r"/webhooks/stripe", _ReceiverHandler, {"receiver": made})])
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets([sock])
    yield made
    server.stop()
    io_loop.run_sync(server.close_all_connections, timeout=5)


@pytest.fixture
def with_webhooks(io_loop: tornado.ioloop.IOLoop, receiver: Receiver) -> Iterator[WithWebhooks]:
    """The stand-in delivering webhooks to `receiver`, retrying 0.2 s, 0.4 s, … (4 attempts,
    1 s each), with the demo pointed at a service URL that is never called here."""
    target = WebhookTarget(
        receiver.url, WEBHOOK_SECRET, retry_base_seconds=0.2, max_attempts=4, timeout_seconds=1
    )
    state = SandboxState(api_key=KEY, price_id=PRICE, webhook=target)
    listening = listen(state, service_url="http://127.0.0.1:5003")
    yield WithWebhooks(state, listening.url, receiver)
    io_loop.run_sync(listening.close, timeout=5)


@pytest.fixture
def browser_like(io_loop: tornado.ioloop.IOLoop) -> Iterator[tornado.httpclient.AsyncHTTPClient]:
    """An HTTP client that does not follow redirects, to look at where pages send you."""
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True)
    yield http
    http.close()
