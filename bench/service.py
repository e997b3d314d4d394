"""The service under test: `python -m service serve` (1 process or --workers N) on the
benchmark's database and stand-in, configured as a Profile says."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.common import PRICE_ID, ROOT, SECRET_KEY, WEBHOOK_SECRET, BenchFailed, stop
from bench.database import Database
from bench.procstat import children_of
from devtools.processes import free_port, service_environment, service_settings, wait_for_answer


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    port: int
    workers: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The serving processes: the one process, or the supervisor and its workers."""
        if self.workers == 1:
            return [self.proc.pid]
        return [self.proc.pid, *children_of(self.proc.pid)]

    def worker_pids(self) -> list[int]:
        return [self.proc.pid] if self.workers == 1 else children_of(self.proc.pid)


@dataclass(frozen=True)
class Profile:
    """How a measured service is configured, and which code it runs.

    `tuned`: LOG_LEVEL=WARNING (no request lines) and a pool of 32 / N connections, the
    same 32 pgbench gets. `defaults`: nothing set but what the service needs (request
    lines at INFO, the default pool). `code`: the folder whose `service` package runs (a
    snapshot of `--before REF`, or this tree)."""

    name: str
    tuned: bool
    code: Path = ROOT
    ref: str | None = None

    def key(self, workers: int) -> str:
        """The mode's key in results["modes"]: "1", "2" for tuned (as before), else e.g.
        "1 defaults" or "1 defaults @5e0127d"."""
        key = str(workers) if self.tuned else f"{workers} {self.name}"
        return key if self.ref is None else f"{key} @{self.ref}"


def service_env(
    db: Database, port: int, standin_port: int, workers: int, pool: int, profile: Profile
) -> dict[str, str]:
    settings = service_settings(
        database_url=db.url,
        stripe_api_base=f"http://127.0.0.1:{standin_port}",
        secret_key=SECRET_KEY,
        webhook_secret=WEBHOOK_SECRET,
        price_id=PRICE_ID,
        port=port,
        success_url="https://bench.example/paid?session={CHECKOUT_SESSION_ID}",
        cancel_url="https://bench.example/cancelled",
    )
    env = service_environment(
        settings | {"WEBHOOK_TOLERANCE_SECONDS": "3600", "WEB_CONCURRENCY": str(workers)},
        code=profile.code,
    )
    if profile.tuned:
        env |= {
            "LOG_LEVEL": "WARNING",
            "DB_POOL_MIN_SIZE": str(pool),
            "DB_POOL_MAX_SIZE": str(pool),
        }
    return env


@contextmanager
def running_service(
    db: Database, workdir: Path, standin_port: int, workers: int, pool: int, profile: Profile
) -> Iterator[Service]:
    port = free_port()
    stderr = (workdir / f"service-{profile.key(workers).replace(' ', '-')}.log").open("wb")
    proc = subprocess.Popen(  # noqa: S603 - the service's own serve command
        [sys.executable, "-m", "service", "serve", "--workers", str(workers)],
        cwd=profile.code,
        env=service_env(db, port, standin_port, workers, pool, profile),
        stdout=stderr,
        stderr=stderr,
    )
    service = Service(proc, port, workers)
    try:
        if not wait_for_answer(f"{service.url}/health", 30, proc, status=200):
            raise BenchFailed(f"{service.url}/health did not answer 200 (see {stderr.name})")
        if workers > 1:
            deadline = time.monotonic() + 10
            while len(children_of(proc.pid)) < workers and time.monotonic() < deadline:
                time.sleep(0.1)
        yield service
    finally:
        stop(proc, 30)
        stderr.close()
