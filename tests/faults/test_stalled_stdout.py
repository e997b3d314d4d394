"""A stdout nobody reads (a stalled log shipper, Docker's blocking log mode) stalls nothing:
the service keeps answering, drops the lines it cannot write, counts them, and still stops."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import tornado.httpclient
from flows import checked_out_event
from helpers import ServiceClient, StripeStandIn
from processes import ROOT, free_port, kill_if_running, service_environment, wait_healthy


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_stdout_nobody_reads_stalls_no_request(
    database_url: str, stripe_api: StripeStandIn, tmp_path: Path, workers: int
) -> None:
    port, metrics_port = free_port(), free_port()
    extra = {"WEB_CONCURRENCY": str(workers)}
    if workers > 1:  # the supervisor serves the workers' sum (and its own drops)
        (tmp_path / "metrics").mkdir()
        extra["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    environment = service_environment(
        database_url,
        stripe_api,
        port,
        METRICS_PORT=str(metrics_port),
        LOG_BUFFER_LINES="100",  # small, so that 1,000 requests overflow it
        **extra,
    )
    process = subprocess.Popen(  # stdout and stderr: a pipe this test never reads
        [sys.executable, "-m", "service"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=16)
    client = ServiceClient(http, f"http://127.0.0.1:{port}")
    try:
        await wait_healthy(client, process)

        async def health(_: int) -> int:
            return (await client.request("GET", "/health", timeout=5)).code

        codes = []
        for batch in range(10):  # 1,000 requests, 16 at a time; one log line each
            codes += await asyncio.gather(
                *(health(i) for i in range(100 * batch, 100 * batch + 100))
            )
        assert codes == [200] * 1000
        event = await checked_out_event(client)
        project = event["data"]["object"]["client_reference_id"]
        assert (await client.webhook(event)).code == 200
        assert (await client.status(project)).json()["status"] == "paid"

        metrics = (await http.fetch(f"http://127.0.0.1:{metrics_port}/metrics")).body.decode()
        dropped = re.findall(r"^payment_log_lines_dropped_total (\S+)$", metrics, re.MULTILINE)
        assert dropped, metrics
        assert float(dropped[0]) > 500  # 1,000+ lines, 64 KiB of pipe and 100 of queue

        process.send_signal(signal.SIGTERM)  # and it still stops, with its stdout stalled
        assert await asyncio.to_thread(process.wait, 15) == 0
    finally:
        http.close()
        kill_if_running(process)
        assert process.stdout is not None
        process.stdout.close()
