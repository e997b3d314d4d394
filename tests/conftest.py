"""Real parts for every test: a migrated PostgreSQL, the Stripe stand-in over HTTP, the app.

The database is created fresh for each test run: on the server named by TEST_DATABASE_URL
when it is set, otherwise on a throwaway embedded PostgreSQL the run starts itself. Tests
isolate themselves by using project and event ids of their own (see `helpers.new_id`).

Fixtures live here, with what only they use (the session's leak check's lists, the loader of
the tests' own queries); what tests import (keys, the service's client, example events) is in
helpers.py, as pytest advises, so that no test imports conftest.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import aiosql
import asyncpg
import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.ioloop
import tornado.web
from helpers import (
    GOOD,
    OPTIONAL,
    PRICE_ID,
    SECRET_KEY,
    WEBHOOK_SECRET,
    OwnedPostgres,
    RunDatabase,
    ServiceClient,
    StripeStandIn,
)
from query_types import FixtureQueries

from devtools.postgres import (
    allow_login,
    create_database,
    drop_database,
    drop_role,
    start_embedded,
    with_database,
    with_user,
)
from sandbox.server import listen
from sandbox.state import SandboxState
from service import db
from service.config import Settings
from service.http.app import make_app
from service.http.auth import make_authenticator
from service.http.context import AppContext
from service.logs import JsonFormatter
from service.metrics import Metrics
from service.stripe_gateway import StripeGateway, make_stripe_client

# --- PostgreSQL -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def test_database() -> Iterator[RunDatabase]:
    suffix = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
    name = f"payments_test_{suffix}"
    # A role of this run's own: roles are cluster-wide, and other runs share the server.
    app_role = f"payment_app_test_{suffix}"
    server = None
    admin_url = os.environ.get("TEST_DATABASE_URL")
    if not admin_url:
        pgdata = Path(tempfile.mkdtemp(prefix="payment-service-pg-")) / "data"
        admin_url, server = start_embedded(pgdata, delete_on_exit=True)
    url = asyncio.run(create_database(admin_url, name))
    asyncio.run(db.migrate(url, db.load_queries(), app_role))
    asyncio.run(allow_login(admin_url, app_role))
    try:
        yield RunDatabase(url, with_user(url, app_role), app_role)
    finally:
        asyncio.run(drop_database(admin_url, name))
        asyncio.run(drop_role(admin_url, app_role))
        del server


@pytest.fixture
def fresh_database(test_database: RunDatabase) -> Iterator[RunDatabase]:
    """A database of this test's own, migrated, served by the run's app role: for tests that
    break what they touch (a tampered audit trail) or need an empty one."""
    admin = with_database(test_database.owner_url, "postgres")
    name = f"payments_fresh_{uuid.uuid4().hex[:12]}"
    url = asyncio.run(create_database(admin, name))
    asyncio.run(db.migrate(url, db.load_queries(), test_database.app_role))
    yield RunDatabase(url, with_user(url, test_database.app_role), test_database.app_role)
    asyncio.run(drop_database(admin, name))


@pytest.fixture(scope="session")
def database_url(test_database: RunDatabase) -> str:
    """What the service under test connects with: the app role, as in production."""
    return test_database.app_url


@pytest.fixture(scope="session")
def owner_database_url(test_database: RunDatabase) -> str:
    """The tables' owner (what `migrate` uses): for tests that play the DBA or the attacker."""
    return test_database.owner_url


@pytest.fixture(scope="session")
def queries() -> db.Queries:
    return db.load_queries()


# --- no PII, no secrets: checked over everything the whole run logged and stored ---------

PII = [
    "jenny.rosen@example.com",
    "Jenny Rosen",
    "510 Townsend",
    "grace.hopper@example.com",
    "Grace Hopper",
    "+14155550123",
]
SECRETS = [SECRET_KEY, WEBHOOK_SECRET, "hunter2"]  # hunter2: the password of a test's DB URL


@pytest.fixture(scope="session", autouse=True)
def no_pii_or_secrets_anywhere(database_url: str) -> Iterator[None]:
    """Collects every log line of the run (in-process apps and `python -m service`
    processes alike, as JSON lines) and, once the suite is done, fails if any of them or any
    stored row holds customer PII or a secret."""
    logs = Path(tempfile.mkdtemp(prefix="payment-service-test-logs-"))
    os.environ["SERVICE_TEST_LOGS"] = str(logs)
    handler = logging.FileHandler(logs / "in-process.log")
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    yield
    root.removeHandler(handler)
    root.setLevel(level)
    handler.close()
    text = "\n".join(path.read_text(errors="replace") for path in sorted(logs.glob("*.log")))
    stored = asyncio.run(_dump_database(database_url))
    for where, content in (("logs", text), ("database", stored)):
        for forbidden in PII + SECRETS:
            assert forbidden not in content, f"{forbidden!r} found in the {where}"


async def _dump_database(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        dump: str = await load_test_queries().dump_everything(conn)
        return dump
    finally:
        await conn.close()


# --- the Stripe stand-in ----------------------------------------------------------------


@pytest.fixture
def stripe_api(io_loop: tornado.ioloop.IOLoop) -> Iterator[StripeStandIn]:
    listening = listen(SandboxState(api_key=SECRET_KEY, price_id=PRICE_ID))
    yield StripeStandIn(listening.state, listening.url)
    io_loop.run_sync(listening.close, timeout=5)


# --- the service ------------------------------------------------------------------------


@pytest.fixture
def settings(database_url: str, stripe_api: StripeStandIn) -> Settings:
    return Settings(
        stripe_secret_key=SECRET_KEY,
        stripe_webhook_secrets=(WEBHOOK_SECRET,),
        stripe_price_id=PRICE_ID,
        stripe_success_url="https://app.example/paid?session={CHECKOUT_SESSION_ID}",
        stripe_cancel_url="https://app.example/cancelled",
        database_url=database_url,
        stripe_api_base=stripe_api.url,
        stripe_timeout_seconds=2.0,
        stripe_max_network_retries=1,
        db_pool_min_size=1,
        db_pool_max_size=10,
        cors_allowed_origins=("https://app.example",),
        # Tests call from one address, many times a second; tests/faults/test_floods.py
        # turns the limits on.
        rate_limit_checkout=None,
        rate_limit_status=None,
    )


@pytest.fixture
def make_ctx(
    io_loop: tornado.ioloop.IOLoop, queries: db.Queries
) -> Iterator[Callable[[Settings], AppContext]]:
    """Builds pool and Stripe client inside the test's loop, and closes them afterwards."""
    closers: list[Callable[[], Any]] = []

    def build(settings: Settings) -> AppContext:
        async def create() -> AppContext:
            pool = await db.create_pool(settings)
            client, http = make_stripe_client(settings)
            closers.append(pool.close)
            closers.append(http.close_async)
            metrics = Metrics()
            auth = make_authenticator(settings)
            closers.append(auth.close)
            return AppContext(
                settings=settings,
                pool=pool,
                queries=queries,
                gateway=StripeGateway(client, metrics),
                metrics=metrics,
                auth=auth,
            )

        ctx: AppContext = io_loop.run_sync(create)
        return ctx

    yield build
    for close in reversed(closers):
        io_loop.run_sync(close, timeout=10)


@pytest.fixture
def ctx(make_ctx: Callable[[Settings], AppContext], settings: Settings) -> AppContext:
    return make_ctx(settings)


@pytest.fixture
def app(ctx: AppContext) -> tornado.web.Application:
    return make_app(ctx)


@pytest.fixture
def client(
    io_loop: tornado.ioloop.IOLoop,
    http_server: tornado.httpserver.HTTPServer,
    http_server_port: Any,
) -> Iterator[ServiceClient]:
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=64)
    yield ServiceClient(http, f"http://127.0.0.1:{http_server_port[1]}")
    http.close()


@pytest.fixture(scope="session")
def test_queries() -> FixtureQueries:
    """Test-only statements (tests/queries), for states the API cannot reach quickly."""
    return load_test_queries()


def load_test_queries() -> FixtureQueries:
    # aiosql builds the methods at run time, so mypy cannot check its object; the Protocol is
    # generated from the same .sql files, and tests/test_query_types.py checks the two agree.
    return cast(FixtureQueries, aiosql.from_path(Path(__file__).parent / "queries", "asyncpg"))


@pytest.fixture
def owned_postgres() -> Iterator[OwnedPostgres]:
    pgdata = Path(tempfile.mkdtemp(prefix="payment-service-owned-pg-")) / "data"
    admin_url, server = start_embedded(pgdata, delete_on_exit=True)
    url = asyncio.run(create_database(admin_url, "payments"))
    asyncio.run(db.migrate(url, db.load_queries()))
    yield OwnedPostgres(url, server)
    server.cleanup()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A clean environment holding only GOOD, run from a folder without a .env file."""
    for name in [*GOOD, *OPTIONAL, *(f"{n}_FILE" for n in GOOD)]:
        monkeypatch.delenv(name, raising=False)
    for name, value in GOOD.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return monkeypatch
