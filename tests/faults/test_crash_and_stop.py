"""SIGKILL in the middle of a webhook stream loses nothing acknowledged and half-applies
nothing; SIGTERM drains in-flight requests (a checkout waiting on a slow Stripe) and exits 0."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import tornado.httpclient
from flows import checked_out_event, history
from helpers import ServiceClient, StripeStandIn, new_id
from processes import ServiceProcess, free_port, service_environment

from service.http.context import AppContext


async def _deliver_all(
    client: ServiceClient, events: list[dict[str, Any]], acked: set[str], concurrency: int = 16
) -> None:
    queue = list(events)

    async def worker() -> None:
        while queue:
            event = queue.pop(0)
            try:
                response = await client.webhook(event)
            except (AssertionError, OSError, tornado.httpclient.HTTPClientError):
                continue  # the connection died with the process: Stripe would retry
            if response.code == 200:
                acked.add(event["id"])

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def test_sigkill_mid_stream_loses_no_acknowledged_event(
    database_url: str, stripe_api: StripeStandIn, ctx: AppContext
) -> None:
    env = service_environment(database_url, stripe_api, free_port())
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=32)
    first = ServiceProcess(env).start()
    acked: set[str] = set()
    try:
        await first.wait_healthy(http)
        events = [await checked_out_event(first.client(http)) for _ in range(400)]
        stream = asyncio.ensure_future(_deliver_all(first.client(http), events, acked))
        while len(acked) < 60:
            await asyncio.sleep(0.005)
        first.signal(signal.SIGKILL)
        await stream
        assert 60 <= len(acked) < len(events), "the kill did not land mid-stream"
    finally:
        first.stop()

    projects = {e["id"]: e["data"]["object"]["client_reference_id"] for e in events}
    async with ctx.pool.acquire() as conn:
        recorded = {e["id"]: await ctx.queries.get_event(conn, event_id=e["id"]) for e in events}
    for event_id in acked:  # every acknowledged event is applied, with its audit row
        row = recorded[event_id]
        assert row is not None, event_id
        assert row["outcome"] == "applied", event_id
        assert len(await history(ctx, projects[event_id])) == 2  # opened, paid
    for event_id, row in recorded.items():  # nothing half-applied
        if row is None:
            assert [r["to_status"] for r in await history(ctx, projects[event_id])] == ["pending"]
        else:
            assert row["outcome"] == "applied"

    second = ServiceProcess(env).start()  # Stripe redelivers everything unacknowledged
    try:
        await second.wait_healthy(http)
        await _deliver_all(second.client(http), events, acked)
        assert acked == {e["id"] for e in events}
    finally:
        second.stop()
        http.close()
    for event in events[::20]:
        rows = await history(ctx, projects[event["id"]])
        assert [r["to_status"] for r in rows] == ["pending", "paid"]


async def test_sigterm_finishes_a_checkout_in_flight_and_exits_0(
    database_url: str, stripe_api: StripeStandIn
) -> None:
    stripe_api.state.faults.delay_seconds = 1.5
    service = ServiceProcess(service_environment(database_url, stripe_api, free_port())).start()
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True)
    try:
        await service.wait_healthy(http)
        client = service.client(http)
        in_flight = asyncio.ensure_future(client.checkout(new_id()))
        await asyncio.sleep(0.5)  # the checkout is now waiting on "Stripe"
        service.signal(signal.SIGTERM)
        started = time.monotonic()
        response = await in_flight
        assert response.code == 200
        assert response.json()["session_id"].startswith("cs_")
        assert await service.wait(15) == 0
        assert time.monotonic() - started < 10
        try:
            refused = await client.request("GET", "/health", timeout=2)
        except OSError:
            refused = None
        assert refused is None, "a stopped service still answered"
    finally:
        http.close()
        service.stop()


async def test_sigterm_waits_for_a_checkout_whose_caller_hung_up(
    database_url: str, stripe_api: StripeStandIn, ctx: AppContext
) -> None:
    """The caller is gone, but Stripe will make the session: the stopping process still
    stores it (and its audit row) before it closes the pool, and answers no 5xx on the way."""
    stripe_api.state.faults.delay_seconds = 1.5
    service = ServiceProcess(service_environment(database_url, stripe_api, free_port())).start()
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True)
    project = new_id()
    try:
        await service.wait_healthy(http)
        _reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
        body = f'{{"project_id": "{project}"}}'.encode()
        writer.write(
            b"POST /api/checkout HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        await asyncio.sleep(0.5)  # the checkout is now waiting on "Stripe"
        writer.close()  # the caller hangs up
        await writer.wait_closed()
        await asyncio.sleep(0.1)
        service.signal(signal.SIGTERM)
        assert await service.wait(15) == 0
    finally:
        http.close()
        service.stop()
    rows = await history(ctx, project)
    assert [(r["from_status"], r["to_status"]) for r in rows] == [(None, "pending")]
    assert service.log_path is not None
    log = service.log_path.read_text()
    assert '"status":500' not in log
    assert "could not release" not in log
