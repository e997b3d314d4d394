"""Several service processes on one database behave as one service: one effect per event,
one Stripe session per project. Also the multi-process mode (--workers N)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import tornado.httpclient
from conftest import StripeStandIn, event_for, new_id
from flows import history
from processes import ServiceProcess, free_port, service_environment

from service.handlers import AppContext


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
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=40)
    try:
        for replica in replicas:
            await replica.wait_healthy(http)
        event = event_for("checkout.session.completed.paid", new_id())
        project = event["data"]["object"]["client_reference_id"]
        responses = await asyncio.gather(
            *(replicas[n % 2].client(http).webhook(event) for n in range(20))
        )
        assert [r.code for r in responses] == [200] * 20
        assert sum(1 for r in responses if not r.json().get("duplicate")) == 1
        assert len(await history(ctx, project)) == 1
    finally:
        http.close()


async def test_concurrent_checkouts_across_replicas_make_one_session(
    replicas: list[ServiceProcess], stripe_api: StripeStandIn
) -> None:
    stripe_api.state.faults.delay_seconds = 0.3
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=40)
    try:
        for replica in replicas:
            await replica.wait_healthy(http)
        project = new_id()
        responses = await asyncio.gather(
            *(replicas[n % 2].client(http).checkout(project) for n in range(20))
        )
        assert [r.code for r in responses] == [200] * 20
        assert len({r.json()["checkout_url"] for r in responses}) == 1
        assert stripe_api.state.create_calls == 1
    finally:
        http.close()


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
