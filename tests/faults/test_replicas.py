"""Several service processes on one database behave as one service: one effect per event,
one Stripe session per project. Also the multi-process mode (--workers N)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import tornado.httpclient
import tornado.ioloop
from flows import (
    checked_out,
    checked_out_event,
    deliver,
    history,
    refunds_for,
    status_of,
    two_paid_sessions,
)
from helpers import ServiceClient, StripeStandIn, new_id
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lifecycles import LIFECYCLES, Lifecycle, set_up
from processes import ServiceProcess, free_port, service_environment
from query_types import FixtureQueries

from service.http.context import AppContext


@contextlib.asynccontextmanager
async def all_healthy(
    replicas: list[ServiceProcess], max_clients: int = 40
) -> AsyncIterator[list[ServiceClient]]:
    """A client for each replica, once every one of them answers /health."""
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=max_clients)
    try:
        for replica in replicas:
            await replica.wait_healthy(http)
        yield [replica.client(http) for replica in replicas]
    finally:
        http.close()


@pytest.fixture
def replicas(database_url: str, stripe_api: StripeStandIn) -> Iterator[list[ServiceProcess]]:
    started = [
        ServiceProcess(service_environment(database_url, stripe_api, free_port())).start()
        for _ in range(2)
    ]
    yield started
    for replica in started:
        replica.stop()


async def test_duplicates_across_replicas_take_effect_once(
    replicas: list[ServiceProcess], ctx: AppContext
) -> None:
    async with all_healthy(replicas) as clients:
        event = await checked_out_event(clients[0])
        project = event["data"]["object"]["client_reference_id"]
        responses = await asyncio.gather(*(clients[n % 2].webhook(event) for n in range(20)))
        assert [r.code for r in responses] == [200] * 20
        assert sum(1 for r in responses if not r.json().get("duplicate")) == 1
        assert [r["to_status"] for r in await history(ctx, project)] == ["pending", "paid"]


async def test_concurrent_checkouts_across_replicas_make_one_session(
    replicas: list[ServiceProcess], stripe_api: StripeStandIn
) -> None:
    stripe_api.state.faults.delay_seconds = 0.3
    async with all_healthy(replicas) as clients:
        project = new_id()
        responses = await asyncio.gather(*(clients[n % 2].checkout(project) for n in range(20)))
        assert [r.code for r in responses] == [200] * 20
        assert len({r.json()["checkout_url"] for r in responses}) == 1
        assert stripe_api.state.create_calls == 1


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


async def test_workers_mode_serves_from_several_processes_and_stops_cleanly(
    database_url: str, stripe_api: StripeStandIn
) -> None:
    service = ServiceProcess(
        service_environment(database_url, stripe_api, free_port()), args=["serve", "--workers", "2"]
    ).start()
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=40)
    try:
        await service.wait_healthy(http)
        assert service.process is not None
        workers = _children(service.process.pid)
        assert len(workers) == 2
        client = service.client(http)
        responses = await asyncio.gather(*(client.checkout(new_id()) for _ in range(20)))
        assert [r.code for r in responses] == [200] * 20
        os.kill(workers[0], signal.SIGKILL)  # a worker dying is replaced
        for _ in range(50):
            replaced = _children(service.process.pid)
            if len(replaced) == 2 and workers[0] not in replaced:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the dead worker was not replaced")
        assert (await client.request("GET", "/health")).code == 200
        service.signal(signal.SIGTERM)
        assert await service.wait(20) == 0
    finally:
        http.close()
        service.stop()


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lifecycle=st.sampled_from(LIFECYCLES), shuffle=st.randoms(use_true_random=False))
def test_a_shuffled_lifecycle_sent_to_two_replicas_at_once_ends_as_in_order(
    io_loop: tornado.ioloop.IOLoop,
    replicas: list[ServiceProcess],
    lifecycle: Lifecycle,
    shuffle: random.Random,
) -> None:
    """Every event twice, shuffled, half to each replica, all in flight together: the project
    ends where delivering each once in Stripe's order ends."""

    async def run() -> None:
        async with all_healthy(replicas) as clients:
            played = await set_up(clients[0], lifecycle)
            sends = [event for event in played.events for _ in range(2)]
            shuffle.shuffle(sends)
            await asyncio.gather(*(deliver(clients[n % 2], event) for n, event in enumerate(sends)))
            assert await status_of(clients[1], played.project) == lifecycle.expected

    io_loop.run_sync(run, timeout=120)


async def test_a_replica_killed_mid_call_leaves_a_retry_that_answers_quickly_with_one_session(
    replicas: list[ServiceProcess], stripe_api: StripeStandIn
) -> None:
    """Replica A dies while Stripe takes 1.5 s to answer its checkout; the buyer's retry on B
    answers within 5 s plus Stripe's latency, with the session Stripe made for A's request
    (the same request, the same Idempotency-Key: Stripe answers 409 while A's is still in
    flight, then hands back its session)."""
    stripe_api.state.faults.delay_seconds = 1.5
    async with all_healthy(replicas, max_clients=10) as clients:
        project = new_id()
        doomed = asyncio.ensure_future(clients[0].checkout(project, timeout=10))
        await asyncio.sleep(0.4)
        replicas[0].signal(signal.SIGKILL)
        with contextlib.suppress(AssertionError, OSError, tornado.httpclient.HTTPClientError):
            await doomed  # its connection died with it
        started = time.monotonic()
        retried = await clients[1].checkout(project, timeout=30)
        elapsed = time.monotonic() - started
        assert retried.code == 200, retried.body
        assert elapsed < 5 + 1.5 + 1.0, f"the retry took {elapsed:.1f} s"
        assert stripe_api.state.create_calls == 1
        [made] = list(stripe_api.state.sessions)
        assert retried.json()["session_id"] == made


async def test_a_duplicate_payment_sent_to_two_replicas_is_refunded_once(
    replicas: list[ServiceProcess],
    ctx: AppContext,
    stripe_api: StripeStandIn,
    test_queries: FixtureQueries,
) -> None:
    async with all_healthy(replicas) as clients:
        project = new_id()
        paid_first, paid_second = await two_paid_sessions(
            clients[0], ctx, stripe_api, test_queries, project
        )
        sends = [paid_second, paid_first] * 4
        await asyncio.gather(*(deliver(clients[n % 2], e) for n, e in enumerate(sends)))
        deadline = time.monotonic() + 10
        while not refunds_for(stripe_api, project) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # time for a second refund, were one ever sent
        [refund] = refunds_for(stripe_api, project)
        assert refund.refund["payment_intent"] == paid_second["data"]["object"]["payment_intent"]
        assert stripe_api.state.refund_calls == 1


async def test_serve_applies_a_missed_webhook_by_itself_within_one_interval(
    database_url: str, stripe_api: StripeStandIn
) -> None:
    """No webhook ever arrives (the sandbox has no endpoint): serve's own sweep, every 3 s
    here, finds the event in Stripe's Events API and applies it. No operator."""
    env = service_environment(
        database_url, stripe_api, free_port(), RECONCILE_INTERVAL_MINUTES="0.05"
    )
    service = ServiceProcess(env).start()
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True)
    try:
        await service.wait_healthy(http)
        client = service.client(http)
        project = new_id()
        session = await checked_out(client, project)
        stripe_api.state.complete_session(session)
        deadline = time.monotonic() + 3 * 3 + 5
        status = None
        while time.monotonic() < deadline and status != "paid":
            await asyncio.sleep(0.5)
            status = await status_of(client, project)
        assert status == "paid"
    finally:
        service.stop()
        http.close()
