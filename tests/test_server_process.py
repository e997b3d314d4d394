"""The real process, `python -m service`: serves, logs JSON lines without PII or secrets,
and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import tornado.httpclient
from flows import checked_out_event
from helpers import SECRET_KEY, WEBHOOK_SECRET, ServiceClient, StripeStandIn, new_id
from processes import free_port, kill_if_running, service_environment, wait_healthy
from query_types import FixtureQueries

from service.http.context import AppContext

ROOT = Path(__file__).resolve().parent.parent
PII = [
    "jenny.rosen@example.com",
    "Jenny Rosen",
    "510 Townsend",
    "Rosen",
    "grace.hopper@example.com",
    "Grace Hopper",
    "+14155550123",
]


def start_service(
    environment: dict[str, str], cwd: Path, log_path: Path
) -> subprocess.Popen[bytes]:
    """`python -m service` in the background, its stdout and stderr in `log_path`."""
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "service"],
            cwd=cwd,
            env=environment,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


async def test_the_service_process_takes_a_payment_and_logs_cleanly(
    database_url: str,
    stripe_api: StripeStandIn,
    tmp_path: Path,
    ctx: AppContext,
    test_queries: FixtureQueries,
) -> None:
    port, metrics_port = free_port(), free_port()
    log_path = tmp_path / "service.log"
    environment = service_environment(
        database_url, stripe_api, port, METRICS_PORT=str(metrics_port)
    )
    process = start_service(environment, tmp_path, log_path)
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True)
    client = ServiceClient(http, f"http://127.0.0.1:{port}")
    try:
        await wait_healthy(client, process)
        project = new_id()
        checkout = await client.checkout(project, headers={"X-Request-ID": "frontend-req-42"})
        assert checkout.code == 200, checkout.body
        event = stripe_api.state.complete_session(checkout.json()["session_id"])
        assert "jenny.rosen@example.com" in json.dumps(event)  # the event does carry PII
        assert (await client.webhook(event)).code == 200
        status = await client.status(project)
        assert status.json()["status"] == "paid"
        scraped = await http.fetch(f"http://127.0.0.1:{metrics_port}/metrics")
        metrics = scraped.body.decode()
        for line in [
            'payment_http_requests_total{method="POST",route="checkout",status="200"} 1.0',
            'payment_webhook_events_total{outcome="applied",type="checkout.session.completed"} 1.0',
            'payment_checkout_sessions_total{result="created"} 1.0',
            'payment_stripe_request_duration_seconds_count{operation="create_checkout_session"} 1.0',
        ]:
            assert line in metrics, line
        assert "payment_db_pool_connections_in_use" in metrics
        # Sampled once a second (and at start): the pool holds at least its minimum size.
        pool_sizes = re.findall(r"^payment_db_pool_connections (\S+)$", metrics, re.MULTILINE)
        assert pool_sizes
        assert float(pool_sizes[0]) >= 1
        assert 'payment_http_request_duration_seconds_bucket{le="0.05",route="health"}' in metrics
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 20) == 0
    finally:
        http.close()
        kill_if_running(process)

    lines = log_path.read_text().splitlines()
    entries: list[dict[str, Any]] = [json.loads(line) for line in lines]  # every line is JSON
    requests = [e for e in entries if e.get("event") == "request"]
    assert any(
        e["request_id"] == "frontend-req-42" and e["path"] == "/api/checkout" and e["status"] == 200
        for e in requests
    )
    assert all(e["request_id"] not in (None, "-") for e in requests)
    changes = [
        (e["from_status"], e["to_status"])
        for e in entries
        if e.get("event") == "status_change" and e.get("project_id") == project
    ]
    assert changes == [(None, "pending"), ("pending", "paid")]
    text = log_path.read_text()
    for forbidden in [*PII, SECRET_KEY, WEBHOOK_SECRET]:
        assert forbidden not in text, forbidden

    async with ctx.pool.acquire() as conn:
        stored = await test_queries.dump_everything(conn)
    for forbidden in [*PII, SECRET_KEY, WEBHOOK_SECRET]:
        assert forbidden not in stored, forbidden


async def test_the_leak_check_sees_what_in_process_services_log(client: ServiceClient) -> None:
    """The session-wide PII/secret check reads these files: prove they receive service logs."""
    project = new_id()
    assert (await client.webhook(await checked_out_event(client, project_id=project))).code == 200
    logged = (Path(os.environ["SERVICE_TEST_LOGS"]) / "in-process.log").read_text()
    assert any(json.loads(line).get("project_id") == project for line in logged.splitlines())


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the TCP sockets listening on `port` (from /proc/net/tcp*)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


async def test_metrics_listen_on_loopback_only_even_when_the_service_listens_everywhere(
    database_url: str, stripe_api: StripeStandIn, tmp_path: Path
) -> None:
    port, metrics_port = free_port(), free_port()
    environment = service_environment(
        database_url, stripe_api, port, HOST="0.0.0.0", METRICS_PORT=str(metrics_port)
    )
    process = start_service(environment, tmp_path, tmp_path / "service.log")
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True)
    try:
        await wait_healthy(ServiceClient(http, f"http://127.0.0.1:{port}"), process)
        assert (await http.fetch(f"http://127.0.0.1:{metrics_port}/metrics")).code == 200
        assert listening_addresses(metrics_port) == {"0100007F"}  # 127.0.0.1, nothing else
        assert "00000000" in listening_addresses(port)  # the API itself: every interface
    finally:
        http.close()
        process.kill()
        process.wait()
