"""Fixtures of the stand-in's tests: the stand-in served on the test's own loop, and real
SDK clients pointed at it. Test modules load them with `pytest_plugins = ["sandbox_fixtures"]`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
import stripe
import tornado.httpserver
import tornado.ioloop
import tornado.testing
from sandbox_helpers import KEY, PRICE, MakeClient, Served

from sandbox.api import make_api_app
from sandbox.state import SandboxState


@pytest.fixture
def served(io_loop: tornado.ioloop.IOLoop) -> Iterator[Served]:
    sock, port = tornado.testing.bind_unused_port()
    url = f"http://127.0.0.1:{port}"
    state = SandboxState(api_key=KEY, price_id=PRICE, public_base_url=url)
    server = tornado.httpserver.HTTPServer(make_api_app(state))
    server.add_sockets([sock])
    yield Served(state, url)
    server.stop()
    # Also ends requests a hang_next fault is still holding.
    io_loop.run_sync(server.close_all_connections, timeout=5)


@pytest.fixture
def state(served: Served) -> SandboxState:
    return served.state


@pytest.fixture
def make_client(served: Served, io_loop: tornado.ioloop.IOLoop) -> Iterator[MakeClient]:
    """Builds SDK clients the way the service does; closes them after the test."""
    made: list[stripe.HTTPXClient] = []

    def make(key: str = KEY, *, timeout: float = 5, retries: int = 0) -> stripe.StripeClient:
        # Called inside the test's coroutine, so the HTTPX client binds to the running loop.
        http = stripe.HTTPXClient(timeout=timeout)
        made.append(http)
        return stripe.StripeClient(
            key,
            http_client=http,
            max_network_retries=retries,
            base_addresses=cast(Any, {"api": served.url}),
        )

    yield make
    for http in made:
        io_loop.run_sync(http.close_async)
