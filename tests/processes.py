"""Real service processes for tests: `python -m service` started, probed, signalled, killed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import tornado.httpclient
from helpers import PRICE_ID, SECRET_KEY, WEBHOOK_SECRET, ServiceClient, StripeStandIn

# Re-exported: the tests import it from here.
from devtools.processes import free_port as free_port  # noqa: PLC0414
from devtools.processes import service_environment as local_service_environment
from devtools.processes import service_settings as local_service_settings

ROOT = Path(__file__).resolve().parent.parent


def logs_dir() -> Path:
    """Where service processes write their logs; the session's leak check reads them all."""
    return Path(os.environ.get("SERVICE_TEST_LOGS", "/tmp/payment-service-test-logs"))


def service_settings(
    database_url: str, stripe_api: StripeStandIn | str, port: int, **extra: str
) -> dict[str, str]:
    """The service's own variables, nothing inherited (what a container is given);
    `stripe_api` is the stand-in or its URL."""
    stripe_url, price_id = (
        (stripe_api, PRICE_ID)
        if isinstance(stripe_api, str)
        else (stripe_api.url, stripe_api.state.price_id)
    )
    settings = local_service_settings(
        database_url=database_url,
        stripe_api_base=stripe_url,
        secret_key=SECRET_KEY,
        webhook_secret=WEBHOOK_SECRET,
        price_id=price_id,
        port=port,
        success_url="https://app.example/paid",
        cancel_url="https://app.example/cancelled",
    )
    # Quick to give up on a Stripe that does not answer (the fault tests make it so).
    return settings | {"STRIPE_TIMEOUT_SECONDS": "2", "STRIPE_MAX_NETWORK_RETRIES": "1"} | extra


def service_environment(
    database_url: str, stripe_api: StripeStandIn | str, port: int, **extra: str
) -> dict[str, str]:
    """The environment of a service process run from this checkout."""
    return local_service_environment(service_settings(database_url, stripe_api, port, **extra))


@dataclass
class ServiceProcess:
    """One `python -m service` process; its stdout goes to a log file the leak check reads."""

    environment: dict[str, str]
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def port(self) -> int:
        return int(self.environment["PORT"])

    def start(self) -> ServiceProcess:
        logs_dir().mkdir(parents=True, exist_ok=True)
        self.log_path = logs_dir() / f"service-{self.port}-{os.getpid()}-{id(self)}.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service", *self.args],
                cwd=ROOT,
                env=self.environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def client(self, http: tornado.httpclient.AsyncHTTPClient) -> ServiceClient:
        return ServiceClient(http, f"http://127.0.0.1:{self.port}")

    async def wait_healthy(
        self, http: tornado.httpclient.AsyncHTTPClient, seconds: float = 20
    ) -> None:
        assert self.process is not None
        await wait_healthy(self.client(http), self.process, seconds)

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    async def wait(self, seconds: float) -> int:
        assert self.process is not None
        return await asyncio.to_thread(self.process.wait, seconds)

    def stop(self) -> None:
        if self.process is not None:
            kill_if_running(self.process)


def run_to_end(
    command: list[str],
    environment: dict[str, str] | None = None,
    *,
    cwd: Path = ROOT,
    timeout: float = 60,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """A command (`python -m service audit`, `make run`, …) run to its end as an operator runs
    it from the checkout, its output captured as text; its exit status is the test's to judge
    unless `check`."""
    return subprocess.run(
        command,
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


async def wait_healthy(
    client: ServiceClient, process: subprocess.Popen[bytes], seconds: float = 20
) -> None:
    """Waits up to `seconds` for a service process to answer /health with 200; fails at once
    if it exits."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        assert process.poll() is None, "the service exited during start-up"
        try:
            if (await client.request("GET", "/health", timeout=2)).code == 200:
                return
        except (AssertionError, OSError):
            pass  # not listening yet
        await asyncio.sleep(0.1)
    raise AssertionError("the service never became healthy")


def kill_if_running(process: subprocess.Popen[bytes]) -> None:
    """Kills a process the test started, unless it has ended, and reaps it."""
    if process.poll() is None:
        process.kill()
        process.wait()
