"""The database goes away and comes back: the service stays up, says so honestly, loses
nothing, and recovers without a restart."""

from __future__ import annotations

import asyncio
import time

import tornado.httpclient
from flows import checked_out_event
from helpers import OwnedPostgres, StripeStandIn, new_id
from processes import ServiceProcess, free_port, service_environment

from devtools.postgres import start_embedded_again, stop_embedded


def on_owned_postgres(owned_postgres: OwnedPostgres, stripe_api: StripeStandIn) -> dict[str, str]:
    """A service process's environment on the test's own cluster, quick to give up on it."""
    return service_environment(
        owned_postgres.url, stripe_api, free_port(), DB_CONNECT_TIMEOUT_SECONDS="1"
    )


async def test_outage_answers_5xx_then_recovers_and_redelivery_applies(
    owned_postgres: OwnedPostgres, stripe_api: StripeStandIn
) -> None:
    service = ServiceProcess(on_owned_postgres(owned_postgres, stripe_api)).start()
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True)
    client = service.client(http)
    try:
        await service.wait_healthy(http)
        paid_before = new_id()
        assert (
            await client.webhook(await checked_out_event(client, project_id=paid_before))
        ).code == 200
        event = await checked_out_event(client)
        project = event["data"]["object"]["client_reference_id"]

        await asyncio.to_thread(stop_embedded, owned_postgres.server)
        started = time.monotonic()
        health = await client.request("GET", "/health")
        assert health.code == 500
        assert time.monotonic() - started < 2.5
        reason = health.body.decode()
        assert "database unavailable" in reason
        for leak in ("postgres", "pgserver", "/tmp", "127.0.0.1", "host="):
            assert leak not in reason, leak

        assert (await client.webhook(event)).code == 500  # Stripe will retry
        assert (await client.checkout(new_id())).code == 503
        assert (await client.status(paid_before)).code == 503
        assert service.process is not None
        assert service.process.poll() is None

        await asyncio.to_thread(start_embedded_again, owned_postgres.server)
        # The service recovers by itself once the database is back.
        await service.wait_healthy(http, seconds=10)
        redelivered = await client.webhook(event)  # Stripe's retry of the same event
        assert redelivered.code == 200
        assert redelivered.json() == {"received": True}
        assert (await client.status(project)).json()["status"] == "paid"
        assert (await client.status(paid_before)).json()["status"] == "paid"
        assert (await client.checkout(new_id())).code == 200
    finally:
        http.close()
        service.stop()


async def test_a_service_started_during_an_outage_serves_once_the_database_is_back(
    owned_postgres: OwnedPostgres, stripe_api: StripeStandIn
) -> None:
    await asyncio.to_thread(stop_embedded, owned_postgres.server)
    service = ServiceProcess(on_owned_postgres(owned_postgres, stripe_api)).start()
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True)
    client = service.client(http)
    try:
        for _ in range(100):  # up, and honest about the database
            try:
                health = await client.request("GET", "/health", timeout=3)
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("the service did not start without its database")
        assert health.code == 500
        await asyncio.to_thread(start_embedded_again, owned_postgres.server)
        # It connects once the database is back, without a restart.
        await service.wait_healthy(http, seconds=10)
        assert (await client.checkout(new_id())).code == 200
    finally:
        http.close()
        service.stop()
