"""`make bench`: the service's throughput measured against the database's own ceiling.

One command, on a fresh embedded PostgreSQL (synchronous_commit on), all traffic to
127.0.0.1:

- ceiling:  pgbench running the webhook's own transaction (bench/pgbench_script.py),
- webhooks: wrk replaying distinct pre-signed checkout.session.completed events,
            then a check in SQL that every event took effect exactly once,
- health:   wrk on GET /health,
- checkout: wrk POSTing /api/checkout for distinct projects, Stripe answering after 200 ms,
- memory:   peak RSS (VmHWM) of every service process,

for `python -m service serve` (1 process) and `serve --workers 2`. Every figure is the
median of --rounds rounds, with the min-max spread. Prints a table, then one JSON line
(the last line of stdout); exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosql
import asyncpg
import stripe

from bench import pgbench_script
from bench.query_types import BenchQueries
from devtools.postgres import create_database, start_embedded

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
EVENT_TEMPLATE = ROOT / "sandbox" / "data" / "events" / "checkout.session.completed.paid.json"

SECRET_KEY = "sk_test_bench0000000000000000000000"  # noqa: S105 - the stand-in's test key
WEBHOOK_SECRET = "whsec_bench00000000000000000000000000"  # noqa: S105 - a bench-only secret
PRICE_ID = "price_bench"
STRIPE_DELAY_SECONDS = 0.2
WRK_THREADS = 2
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchFailed(Exception):
    """A check did not hold: the numbers of this run must not be trusted."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_tool(args: Sequence[str], env: dict[str, str] | None = None) -> str:
    """Run a load generator (wrk, pgbench) to completion; returns its stdout."""
    proc = subprocess.run(  # noqa: S603 - fixed tools, arguments built here
        list(args), capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode != 0:
        raise BenchFailed(f"{args[0]} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- /proc: CPU time and peak memory of the processes under test --------------------------


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def cpu_seconds(pids: Sequence[int], *, with_reaped_children: bool = False) -> float:
    """User + system CPU of `pids` (and, optionally, of their exited children)."""
    ticks = 0
    for pid in pids:
        try:
            fields = _stat(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
        if with_reaped_children:
            ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / CLK_TCK


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


@dataclass
class Processes:
    """Whose CPU a scenario is charged to."""

    service: Callable[[], list[int]]
    postmaster: int
    standin: int

    def sample(self) -> dict[str, float]:
        pg = [self.postmaster, *children_of(self.postmaster)]
        return {
            "service": cpu_seconds(self.service()),
            # Backends that exited (pgbench's connections) are in the postmaster's cutime.
            "postgres": cpu_seconds([self.postmaster], with_reaped_children=True)
            + cpu_seconds(pg[1:]),
            "standin": cpu_seconds([self.standin]),
        }


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


@contextmanager
def cpu_meter(procs: Processes) -> Iterator[dict[str, float]]:
    """Cores used by each party during the block (CPU seconds / wall seconds). `others` is
    everything else on the machine: well above 0 means the round shared the CPU with
    someone (a test suite, a build) and its figures are low."""
    usage: dict[str, float] = {}
    before = procs.sample()
    busy_before = machine_busy_seconds()
    reaped_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    yield usage
    elapsed = time.monotonic() - start
    after = procs.sample()
    busy = machine_busy_seconds() - busy_before
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = reaped.ru_utime - reaped_before.ru_utime + reaped.ru_stime - reaped_before.ru_stime
    for name, seconds in after.items():
        usage[name] = round((seconds - before[name]) / elapsed, 2)
    usage["load_generator"] = round(load / elapsed, 2)
    ours = sum(after.values()) - sum(before.values()) + load
    usage["others"] = round(max(0.0, busy - ours) / elapsed, 2)


# --- results ------------------------------------------------------------------------------


@dataclass
class Series:
    """One figure over the rounds."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    def summary(self, digits: int = 2) -> dict[str, float]:
        return {
            "median": round(statistics.median(self.values), digits),
            "min": round(min(self.values), digits),
            "max": round(max(self.values), digits),
        }


@dataclass
class Scenario:
    rate: Series = field(default_factory=Series)
    p50_ms: Series = field(default_factory=Series)
    p99_ms: Series = field(default_factory=Series)
    cpu: list[dict[str, float]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)

    def add(self, rate: float, p50_ms: float, p99_ms: float, cpu: dict[str, float]) -> None:
        self.rate.add(rate)
        self.p50_ms.add(p50_ms)
        self.p99_ms.add(p99_ms)
        self.cpu.append(cpu)

    def add_wrk(self, result: dict[str, Any]) -> None:
        """One round as measured_wrk returned it."""
        self.add(result["per_s"], result["p50_us"] / 1000, result["p99_us"] / 1000, result["cores"])

    def summary(self) -> dict[str, Any]:
        cores = {
            name: round(statistics.median(c[name] for c in self.cpu), 2) for name in self.cpu[0]
        }
        return {
            "per_s": self.rate.summary(),
            "p50_ms": self.p50_ms.summary(),
            "p99_ms": self.p99_ms.summary(),
            "rounds": len(self.rate.values),
            "cores_used": cores,
            "checks": self.checks,
        }


# --- wrk -------------------------------------------------------------------------------


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise BenchFailed("wrk is not installed (make bench installs it: apt-get install wrk)")
    return found


def run_wrk(
    url: str,
    script: str,
    connections: int,
    duration: float,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    args = [
        wrk_binary(),
        f"-t{WRK_THREADS}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(BENCH / script),
        url,
    ]
    full_env = os.environ | {"BENCH_LUA_DIR": str(BENCH)} | (env or {})
    out = run_tool(args, full_env)
    for line in out.splitlines():
        if line.startswith("BENCH_RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
            result["per_s"] = result["requests"] / (result["duration_us"] / 1e6)
            result["errors"] = sum(
                result[k]
                for k in ("connect_errors", "read_errors", "write_errors", "status_errors")
            )
            return result
    raise BenchFailed(f"wrk printed no result:\n{out}")


def measured_wrk(
    procs: Processes,
    url: str,
    script: str,
    connections: int,
    duration: float,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """run_wrk, with the cores each party used during it in result["cores"]."""
    with cpu_meter(procs) as cores:
        result = run_wrk(url, script, connections, duration, env)
    result["cores"] = cores
    return result


def transport_problem(result: dict[str, Any]) -> str | None:
    """wrk's socket errors and timeouts, if any: a round with them measures nothing."""
    if result["errors"] or result["timeouts"]:
        return f"{result['errors']} errors, {result['timeouts']} timeouts"
    return None


# --- the database -------------------------------------------------------------------------


@dataclass
class Database:
    url: str
    postmaster: int
    queries: BenchQueries


def start_database(workdir: Path) -> tuple[Database, Any]:
    pgdata = workdir / "pgdata"
    admin_url, server = start_embedded(pgdata, delete_on_exit=True)
    url = asyncio.run(create_database(admin_url, "payments_bench"))
    subprocess.run(
        [sys.executable, "-m", "service", "migrate"],
        check=True,
        cwd=ROOT,
        env=os.environ | {"DATABASE_URL": url},
        stdout=subprocess.DEVNULL,
    )
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    # aiosql builds the methods at run time; the Protocol is generated from the same file
    # (devtools/query_types.py), and tests/test_query_types.py checks the two agree.
    queries = cast(BenchQueries, aiosql.from_path(BENCH / "queries.sql", "asyncpg"))
    return Database(url, postmaster, queries), server


async def _with_conn(db: Database, work: Callable[[asyncpg.Connection], Any]) -> Any:
    conn = await asyncpg.connect(db.url)
    try:
        return await work(conn)
    finally:
        await conn.close()


T = TypeVar("T")


def sql(db: Database, statement: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run a statement of bench/queries.sql on a connection of its own: `sql(db,
    db.queries.checkpoint)`, `sql(db, partial(db.queries.checkout_sessions, pattern=…))`."""
    result: T = asyncio.run(_with_conn(db, statement))
    return result


def counts(row: asyncpg.Record | None) -> dict[str, Any]:
    """A check's row of counts: aggregates, so there always is one."""
    assert row is not None
    return dict(row)


def exactly_once(db: Database, pattern: str) -> dict[str, Any]:
    """bench/queries.sql exactly-once over the projects `LIKE pattern`, on fresh statistics."""

    async def check(conn: asyncpg.Connection) -> asyncpg.Record | None:
        await db.queries.analyze_tables(conn)
        return await db.queries.exactly_once(conn, pattern=pattern)

    return counts(sql(db, check))


def server_settings(db: Database) -> dict[str, str]:
    async def read(conn: asyncpg.Connection) -> dict[str, str]:
        rows = await conn.fetch(
            "SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])",
            ["synchronous_commit", "fsync", "shared_buffers", "max_connections", "server_version"],
        )
        return {r["name"]: r["setting"] for r in rows}

    settings: dict[str, str] = asyncio.run(_with_conn(db, read))
    return settings


# --- the ceiling: pgbench -----------------------------------------------------------------


def pgbench_binary() -> str:
    try:
        import pgserver  # noqa: PLC0415 - optional, as in devtools/postgres.py

        bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
        if bundled.is_file():
            return str(bundled)
    except ImportError:
        pass
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True):
        return str(candidate)
    found = shutil.which("pgbench")
    if found is None:
        raise BenchFailed("no pgbench (pgserver's, /usr/lib/postgresql/*/bin, or on PATH)")
    return found


PGBENCH_SESSION = "cs_bench"


def _pgbench_constants() -> dict[str, str]:
    """The statement's constant parameters for the benchmarked event (pgbench variables are
    text). The facts model's apply-fact takes the fact; an older tree's apply-event took the
    status table's edges, as its service/transitions.py moves_for gave them."""
    if pgbench_script.USES_FACTS:
        return {
            "event_type": "checkout.session.completed",
            "livemode": "false",
            "object_kind": "session",
            "state": "paid",
            "stage": "2",
            # A session fact carries no amounts (NULL in the service); pgbench variables
            # cannot be NULL, and 0 costs the same.
            "amount": "0",
            "amount_refunded": "0",
            "cause": "stripe_event",
            "request_id": "0123456789abcdef0123456789abcdef",
        }
    from service.transitions import moves_for  # type: ignore[import-not-found]  # noqa: PLC0415

    moves = moves_for(
        "checkout.session.completed", {"id": PGBENCH_SESSION, "payment_status": "paid"}
    )

    def literal(values: Sequence[str | None]) -> str:
        return "{" + ",".join("NULL" if v is None else v for v in values) + "}"

    return {
        "event_type": "checkout.session.completed",
        "livemode": "false",
        "statuses": literal(moves.statuses),
        "to_if_current_session": literal(moves.to_if_current_session),
        "to_otherwise": literal(moves.to_otherwise),
        "event_session_id": PGBENCH_SESSION,
        "amount_total": "250000",
        "currency": "usd",
        "request_id": "0123456789abcdef0123456789abcdef",
    }


PGBENCH_CONSTANTS = _pgbench_constants()


def pgbench_round(
    db: Database,
    workdir: Path,
    round_no: int,
    clients: int,
    duration: float,
    per_client: int,
    procs: Processes,
) -> dict[str, Any]:
    """One pgbench run of the webhook transaction on projects seeded pending for it."""
    base = round_no * 100_000_000
    sql(
        db,
        partial(
            db.queries.seed_pgbench_projects, base=base, clients=clients, per_client=per_client
        ),
    )
    if pgbench_script.USES_FACTS:
        sql(
            db,
            partial(
                db.queries.seed_pgbench_sessions, base=base, clients=clients, per_client=per_client
            ),
        )
    sql(db, db.queries.checkpoint)
    script = workdir / "webhook_transaction.pgbench"
    script.write_text(pgbench_script.script())
    logs = workdir / f"pgbench-{round_no}"
    logs.mkdir()
    now = datetime.now(UTC).isoformat()
    times = (
        ("event_created_at", "fact_created_at")
        if pgbench_script.USES_FACTS
        else ("stripe_created_at",)
    )
    constants = PGBENCH_CONSTANTS | dict.fromkeys((*times, "received_at"), now)
    args = [
        pgbench_binary(),
        "--no-vacuum",
        "--protocol=prepared",
        f"--client={clients}",
        f"--jobs={WRK_THREADS}",
        f"--time={max(1, round(duration))}",
        f"--file={script}",
        "--log",
        f"--log-prefix={logs / 'tx'}",
        "--define=seq=0",
        f"--define=base={base}",
        *(f"--define={k}={v}" for k, v in constants.items()),
        db.url,
    ]
    with cpu_meter(procs) as cores:
        out = run_tool(args)
    tps = next(float(line.split()[2]) for line in out.splitlines() if line.startswith("tps = "))
    processed = next(
        int(line.split(":")[1].split("/")[0])
        for line in out.splitlines()
        if line.startswith("number of transactions actually processed")
    )
    latencies = sorted(
        int(line.split()[2]) for path in logs.iterdir() for line in path.read_text().splitlines()
    )
    pattern = f"{round_no}" + "_" * 8  # the round's 9-digit ids
    check = exactly_once(db, pattern)
    ok = (
        check["events"] == check["events_applied"] == check["paid"] == check["audit_rows"]
        and check["consistent"] == processed
        and check["other_status"] == 0
    )
    if not ok:
        raise BenchFailed(
            f"pgbench round {round_no}: {processed} transactions but {check} "
            "(too few seeded projects per client?)"
        )
    return {
        "per_s": tps,
        "processed": processed,
        "p50_ms": percentile(latencies, 50) / 1000,
        "p99_ms": percentile(latencies, 99) / 1000,
        "max_per_client": max(Counter(_client_counts(logs)).values()),
        "cores": cores,
    }


def _client_counts(logs: Path) -> Iterator[int]:
    for path in logs.iterdir():
        for line in path.read_text().splitlines():
            yield int(line.split()[0])


def percentile(sorted_values: Sequence[int], pct: float) -> float:
    if not sorted_values:
        return math.nan
    index = min(len(sorted_values) - 1, math.ceil(pct / 100 * len(sorted_values)) - 1)
    return float(sorted_values[max(0, index)])


# --- the service --------------------------------------------------------------------------


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
    env = os.environ | {
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_PRODUCT_PRICE_ID": PRICE_ID,
        "STRIPE_SUCCESS_URL": "https://bench.example/paid?session={CHECKOUT_SESSION_ID}",
        "STRIPE_CANCEL_URL": "https://bench.example/cancelled",
        "STRIPE_API_BASE": f"http://127.0.0.1:{standin_port}",
        "DATABASE_URL": db.url,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEBHOOK_TOLERANCE_SECONDS": "3600",
        "WEB_CONCURRENCY": str(workers),
        # wrk is one caller sending hundreds of checkouts a second: the per-caller limits
        # (20 checkouts a minute by default) would answer nearly all of them 429.
        "RATE_LIMIT_CHECKOUT": "off",
        "RATE_LIMIT_STATUS": "off",
        "PYTHONPATH": str(profile.code),
    }
    for name in ("LOG_LEVEL", "DB_POOL_MIN_SIZE", "DB_POOL_MAX_SIZE"):
        env.pop(name, None)
    if profile.tuned:
        env |= {
            "LOG_LEVEL": "WARNING",
            "DB_POOL_MIN_SIZE": str(pool),
            "DB_POOL_MAX_SIZE": str(pool),
        }
    return env


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BenchFailed(f"{url}: the process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - 127.0.0.1
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise BenchFailed(f"{url} did not answer 200 within {timeout:g} s")


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
        wait_http(f"{service.url}/health", proc=proc)
        if workers > 1:
            deadline = time.monotonic() + 10
            while len(children_of(proc.pid)) < workers and time.monotonic() < deadline:
                time.sleep(0.1)
        yield service
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stderr.close()


@contextmanager
def running_standin(workdir: Path) -> Iterator[tuple[int, int]]:
    port = free_port()
    log_file = (workdir / "standin.log").open("wb")
    proc = subprocess.Popen(  # noqa: S603 - bench/standin.py
        [
            sys.executable,
            "-m",
            "bench.standin",
            f"--port={port}",
            f"--api-key={SECRET_KEY}",
            f"--price-id={PRICE_ID}",
            f"--delay={STRIPE_DELAY_SECONDS}",
        ],
        cwd=ROOT,
        stdout=log_file,
        stderr=log_file,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchFailed("the Stripe stand-in did not start")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_file.close()


# --- webhook rounds -----------------------------------------------------------------------


@dataclass
class WebhookBatch:
    tag: str
    data_prefix: Path
    per_thread: int

    def event_id(self, thread: int, n: int) -> str:
        return f"evt_bench-{self.tag}-{thread}-{n}"

    def project_id(self, thread: int, n: int) -> str:
        return f"bw-{self.tag}-{thread}-{n}"

    @property
    def project_pattern(self) -> str:
        return f"bw-{self.tag}-%"

    @property
    def event_pattern(self) -> str:
        return f"evt_bench-{self.tag}-%"


def make_webhook_batch(db: Database, workdir: Path, tag: str, per_thread: int) -> WebhookBatch:
    """Distinct signed events (one file per wrk thread) for projects seeded pending."""
    template = json.loads(EVENT_TEMPLATE.read_text())
    batch = WebhookBatch(tag, workdir / f"webhooks-{tag}", per_thread)
    now = int(time.time())
    projects: list[str] = []
    sessions: list[str] = []
    for thread in range(WRK_THREADS):
        lines: list[str] = []
        for n in range(1, per_thread + 1):
            project_id = batch.project_id(thread, n)
            session_id = f"cs_test_bench{tag}{thread}x{n}".replace("-", "")
            event = template
            event["id"] = batch.event_id(thread, n)
            event["created"] = now
            obj = event["data"]["object"]
            obj["id"] = session_id
            obj["client_reference_id"] = project_id
            obj["metadata"] = {"project_id": project_id}
            obj["payment_intent"] = f"pi_bench{tag}{thread}x{n}".replace("-", "")
            obj["payment_status"] = "paid"
            payload = json.dumps(event)
            header = stripe.WebhookSignature.generate_signature_header(payload, WEBHOOK_SECRET, now)
            lines.append(f"{header}\t{payload}\n")
            projects.append(project_id)
            sessions.append(session_id)
        Path(f"{batch.data_prefix}.{thread}").write_text("".join(lines))
    sql(db, partial(db.queries.seed_pending_projects, project_ids=projects, session_ids=sessions))
    if sql(db, db.queries.uses_facts):
        sql(
            db,
            partial(db.queries.seed_checkout_sessions, project_ids=projects, session_ids=sessions),
        )
    sql(db, db.queries.checkpoint)
    return batch


def webhook_round(
    db: Database,
    service: Service,
    batch: WebhookBatch,
    connections: int,
    duration: float,
    procs: Processes,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Replay the batch; returns wrk's result (with the cores used) and the exactly-once
    check, which raises BenchFailed when it does not hold."""
    result = measured_wrk(
        procs,
        f"{service.url}/webhooks/stripe",
        "webhooks.lua",
        connections,
        duration,
        {"BENCH_DATA": str(batch.data_prefix)},
    )
    sent = {
        batch.event_id(thread, n)
        for thread, count in enumerate(result["sent"])
        for n in range(1, min(count, batch.per_thread) + 1)
    }
    # Requests wrk left in flight at its deadline still finish: wait until no more arrive
    # (on a loaded machine that takes longer than any fixed pause).
    time.sleep(0.5)
    recorded_ids = partial(db.queries.recorded_event_ids, pattern=batch.event_pattern)
    recorded = set(sql(db, recorded_ids))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        time.sleep(0.5)
        again = set(sql(db, recorded_ids))
        if again == recorded:
            break
        recorded = again
    check = exactly_once(db, batch.project_pattern)
    problems: list[str] = []
    if result["wrapped"]:
        problems.append(f"wrk ran out of distinct events ({batch.per_thread} per thread)")
    if problem := transport_problem(result):
        problems.append(problem)
    if not recorded <= sent:
        problems.append(f"{len(recorded - sent)} events recorded that were never sent")
    if len(recorded) < result["requests"]:
        problems.append(f"{result['requests']} acknowledged but only {len(recorded)} recorded")
    n = len(recorded)
    if not (
        check["paid"] == check["events"] == check["events_applied"] == n
        and check["audit_rows"] == check["audited_projects"] == check["consistent"] == n
        and check["other_status"] == 0
        and check["projects_with_two_events"] == 0
    ):
        problems.append(f"not exactly once: {check}")
    summary = {
        "round": batch.tag,
        "sent": len(sent),
        "acknowledged_200": result["requests"],
        "recorded": n,
        "paid_with_one_event_and_one_audit_row": check["consistent"],
        "ok": not problems,
    }
    if problems:
        raise BenchFailed(f"webhook round {batch.tag}: " + "; ".join(problems))
    return result, summary


# --- py-spy -------------------------------------------------------------------------------

# Each sample goes to the innermost frame that belongs to one of these (first match wins);
# event-loop and socket frames count only when nothing else is on the stack, so a send()
# made for asyncpg is asyncpg's, and one made for Tornado is Tornado's.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("signature verification (stripe SDK, hmac)", ("stripe/_webhook", "hmac.py", "verify_sig")),
    ("JSON parse/encode", ("json/", "parse_event", "event_from_data", "render_json")),
    ("logging", ("logging/", "service/logs.py")),
    ("metrics (prometheus_client)", ("prometheus_client", "service/metrics.py")),
    ("asyncpg (queries, pool, protocol)", ("asyncpg/",)),
    ("aiosql", ("aiosql/",)),
    ("Stripe SDK (requests, responses)", ("stripe/",)),
    (
        "HTTP client (aiohttp; httpx/httpcore before)",
        ("aiohttp/", "yarl/", "multidict/", "httpx/", "httpcore/", "h11/", "anyio/", "sniffio/"),
    ),
    ("domain (service/*)", ("service/",)),
    ("Tornado HTTP (parse, route, write)", ("tornado/",)),
)
EVENT_LOOP = "asyncio event loop, epoll, sockets"

# Inclusive shares: samples with this function anywhere on the stack.
SPANS: tuple[tuple[str, str], ...] = (
    ("verify_signature", "verify_signature ("),
    ("parse_event (json.loads + shape)", "parse_event ("),
    ("apply_event (transaction, 4 round trips)", "apply_event ("),
    ("start_checkout (2 transactions + Stripe)", "start_checkout ("),
    ("Stripe SDK create session", "create_checkout_session ("),
    ("log_request (access log + metrics)", "log_request ("),
    ("render_json", "render_json ("),
    ("Tornado request parsing (HTTP1Connection)", "HTTP1Connection._read_message ("),
    ("RequestHandler.finish/flush", "RequestHandler.finish ("),
)


def profile_breakdown(raw: Path) -> dict[str, Any]:
    """py-spy's samples (CPU-active only) by what they were doing."""
    by_category: Counter[str] = Counter()
    by_leaf: Counter[str] = Counter()
    by_span: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        by_leaf[frames[-1].split(" (")[0] + " " + _short(frames[-1])] += count
        for label, needle in SPANS:
            if needle in stack:
                by_span[label] += count
        for frame in reversed(frames):
            category = next(
                (name for name, needles in CATEGORIES if any(n in frame for n in needles)), None
            )
            if category is not None:
                by_category[category] += count
                break
        else:
            by_category[EVENT_LOOP] += count
    if not total:
        raise BenchFailed(f"py-spy recorded no samples in {raw}")
    return {
        "samples": total,
        "categories_pct": {k: round(100 * v / total, 1) for k, v in by_category.most_common()},
        "inclusive_pct": {k: round(100 * v / total, 1) for k, v in by_span.most_common()},
        "top_functions_pct": {k: round(100 * v / total, 1) for k, v in by_leaf.most_common(15)},
    }


def _short(frame: str) -> str:
    where = frame.rpartition(" (")[2].rstrip(")")
    for marker in ("site-packages/", "python3.11/", f"{ROOT}/"):
        if marker in where:
            return "(" + where.split(marker, 1)[1] + ")"
    return f"({where})"


def py_spy_during(
    pid: int, duration: float, raw: Path, load: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Record `pid` with py-spy while `load` runs; returns the breakdown plus load's result."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        raise BenchFailed("--profile needs py-spy: .venv/bin/pip install py-spy")
    raw.parent.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen(  # noqa: S603 - py-spy on our own child process
        [
            py_spy,
            "record",
            f"--pid={pid}",
            f"--duration={max(1, round(duration))}",
            "--rate=250",
            "--nonblocking",
            "--format=raw",
            f"--output={raw}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    result = load()
    spy.wait(timeout=60)
    breakdown = profile_breakdown(raw)
    breakdown["load"] = result
    return breakdown


def profile_service(
    db: Database,
    service: Service,
    workdir: Path,
    per_thread: int,
    args: argparse.Namespace,
    procs: Processes,
) -> dict[str, Any]:
    """py-spy over one webhook round and one checkout round (1 process); results not counted."""
    batch = make_webhook_batch(db, workdir, "prof", per_thread)

    def webhooks() -> dict[str, Any]:
        res, check = webhook_round(db, service, batch, args.connections, args.duration, procs)
        return {"per_s": round(res["per_s"], 1), "cores": res["cores"], "check_ok": check["ok"]}

    def checkouts() -> dict[str, Any]:
        res = run_wrk(
            f"{service.url}/api/checkout",
            "checkout.lua",
            args.checkout_connections,
            args.duration,
            {"BENCH_PREFIX": "bc-prof-"},
        )
        return {"per_s": round(res["per_s"], 1), "errors": res["errors"]}

    profiles = {
        "webhooks": py_spy_during(
            service.proc.pid, args.duration, args.out / "webhook-profile.txt", webhooks
        ),
        "checkout": py_spy_during(
            service.proc.pid, args.duration, args.out / "checkout-profile.txt", checkouts
        ),
    }
    (args.out / "profile.json").write_text(json.dumps(profiles, indent=2))
    return profiles


# --- the run --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per round")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--checkout-connections", type=int, default=64)
    parser.add_argument("--modes", default="1,2", help="worker counts to measure")
    parser.add_argument(
        "--settings",
        default="tuned,defaults",
        help="tuned (LOG_LEVEL=WARNING, pool 32/N), defaults (the service's own), or both",
    )
    parser.add_argument(
        "--before",
        metavar="REF",
        help="also measure the service as committed at REF, at its default settings, in the "
        "same run (same database, same ceiling rounds): a before/after on one machine",
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the 1-process service (not counted)"
    )
    parser.add_argument("--out", type=Path, default=BENCH / "out")
    parser.add_argument(
        "--ref",
        help="measure the service as committed at this git ref (a snapshot made with git "
        "archive) instead of the working tree; the bench itself is always this one",
    )
    args = parser.parse_args(argv)
    if args.ref:
        return run_at_ref(args.ref, [a for a in (argv or sys.argv[1:]) if a != args.ref])
    started = time.monotonic()
    modes = [int(m) for m in args.modes.split(",")]
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "loadavg_before": Path("/proc/loadavg").read_text().split()[:3],
        "code": code_version(),
        "rounds": args.rounds,
        "round_seconds": args.duration,
        "connections": args.connections,
    }
    profiles = [Profile(name, tuned=name == "tuned") for name in args.settings.split(",") if name]
    if any(p.name not in ("tuned", "defaults") for p in profiles):
        raise SystemExit("--settings takes tuned, defaults or both")
    try:
        with tempfile.TemporaryDirectory(prefix="payment-bench-") as tmp:
            workdir = Path(tmp)
            if args.before:
                profiles.append(before_profile(args.before, workdir))
                results["before"] = profiles[-1].ref
            measure(args, modes, profiles, workdir, results)
    except BenchFailed as failure:
        results["ok"] = False
        results["failure"] = str(failure)
        print(f"BENCH FAILED: {failure}", file=sys.stderr)
        print(json.dumps(results, separators=(",", ":")))
        return 1
    results["ok"] = True
    others = [
        m[s]["cores_used"]["others"]
        for m in results["modes"].values()
        for s in ("webhooks", "health", "checkout")
    ]
    if max(others, default=0.0) > 0.15:
        log(
            f"WARNING: other processes used up to {max(others):.2f} cores during the rounds; "
            "the figures are low. Run again on an idle machine."
        )
    results["seconds"] = round(time.monotonic() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(table(results))
    print(json.dumps(results, separators=(",", ":")))
    return 0


def before_profile(ref: str, workdir: Path) -> Profile:
    """The service, queries and migrations of `ref`, extracted into workdir/before."""
    git = shutil.which("git")
    if git is None:
        raise SystemExit("--before needs git")
    sha = subprocess.run(  # noqa: S603 - git, fixed arguments
        [git, "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    archive = subprocess.run(  # noqa: S603 - git, fixed arguments
        [git, "archive", "--format=tar", sha, "service", "queries", "migrations"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    code = workdir / "before"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(code, filter="data")
    return Profile("defaults", tuned=False, code=code, ref=sha)


def run_at_ref(ref: str, argv: list[str]) -> int:
    """Re-run this bench in a `git archive` snapshot of `ref` (plus this bench/)."""
    git = shutil.which("git")
    if git is None:
        raise SystemExit("--ref needs git")
    argv = [a for a in argv if a != "--ref" and not a.startswith("--ref=")]
    if not any(a == "--out" or a.startswith("--out=") for a in argv):
        argv += ["--out", str(BENCH / "out")]
    sha = subprocess.run(  # noqa: S603 - git, fixed arguments
        [git, "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="payment-bench-src-") as tmp:
        archive = subprocess.run(  # noqa: S603 - git, fixed arguments
            [git, "archive", "--format=tar", sha], cwd=ROOT, capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        shutil.rmtree(Path(tmp) / "bench", ignore_errors=True)
        shutil.copytree(BENCH, Path(tmp) / "bench", ignore=shutil.ignore_patterns("out"))
        log(f"measuring {ref} ({sha}) from a snapshot in {tmp}")
        return subprocess.run(  # noqa: S603 - this bench, in the snapshot
            [sys.executable, "-m", "bench.run", *argv],
            cwd=tmp,
            env=os.environ | {"BENCH_CODE_REF": f"{ref} ({sha})"},
            check=False,
        ).returncode


def code_version() -> dict[str, Any]:
    """The commit measured, and whether the service's code differed from it."""
    if os.environ.get("BENCH_CODE_REF"):
        return {"commit": os.environ["BENCH_CODE_REF"], "service_code_modified": False}
    git = shutil.which("git")
    if git is None:
        return {}

    def out(*args: str) -> str:
        return subprocess.run(  # noqa: S603 - git, fixed arguments
            [git, *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    changed = out("status", "--porcelain", "--", "service", "queries", "migrations")
    return {"commit": out("rev-parse", "--short", "HEAD"), "service_code_modified": bool(changed)}


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    return {"nproc": os.cpu_count(), "cpu": model, "python": sys.version.split()[0]}


def measure(
    args: argparse.Namespace,
    modes: list[int],
    profiles: list[Profile],
    workdir: Path,
    results: dict[str, Any],
) -> None:
    log("starting an embedded PostgreSQL and migrating it")
    db, _server = start_database(workdir)
    results["postgres"] = server_settings(db)
    with running_standin(workdir) as (standin_port, standin_pid):
        log("pgbench (the webhook transaction): warm-up")
        procs = Processes(list, db.postmaster, standin_pid)
        warm = pgbench_round(db, workdir, 1, args.connections, 2, 4000, procs)
        per_client = math.ceil(warm["per_s"] * args.duration / args.connections * 3.0) + 500
        ceiling = Scenario()
        round_numbers = iter(range(2, 1000))

        def ceiling_round() -> float:
            """One pgbench round, run just before each round of the service."""
            number = next(round_numbers)
            res = pgbench_round(
                db, workdir, number, args.connections, args.duration, per_client, procs
            )
            ceiling.add(res["per_s"], res["p50_ms"], res["p99_ms"], res["cores"])
            ceiling.checks.append({"round": number, "transactions": res["processed"], "ok": True})
            log(f"pgbench: {res['per_s']:.0f} tx/s, p99 {res['p99_ms']:.1f} ms")
            rate: float = res["per_s"]
            return rate

        standin_alone = Scenario()
        for r in range(args.rounds):
            res = measured_wrk(
                procs,
                f"http://127.0.0.1:{standin_port}/v1/checkout/sessions",
                "standin.lua",
                args.checkout_connections,
                args.duration,
                {
                    "BENCH_PREFIX": f"bs-r{r}-",
                    "BENCH_STRIPE_KEY": SECRET_KEY,
                    "BENCH_PRICE_ID": PRICE_ID,
                },
            )
            if problem := transport_problem(res):
                raise BenchFailed(f"stand-in alone: {problem}")
            standin_alone.add_wrk(res)
            log(f"Stripe stand-in alone: {res['per_s']:.0f} sessions/s")
        results["standin_alone"] = standin_alone.summary()

        results["modes"] = {}
        for profile in profiles:
            for workers in modes:
                results["modes"][profile.key(workers)] = measure_mode(
                    args, db, workdir, standin_port, standin_pid, workers, profile, ceiling_round
                )
        results["ceiling"] = ceiling.summary()
    ideal = args.checkout_connections / STRIPE_DELAY_SECONDS
    alone = results["standin_alone"]["per_s"]
    results["standin_alone_vs_ideal"] = {k: round(alone[k] / ideal, 3) for k in alone}
    for mode in results["modes"].values():
        crate = mode["checkout"]["per_s"]
        mode["checkout_vs_ideal"] = {k: round(crate[k] / ideal, 3) for k in crate}
        mode["checkout_vs_standin_alone"] = round(crate["median"] / alone["median"], 3)


def measure_mode(
    args: argparse.Namespace,
    db: Database,
    workdir: Path,
    standin_port: int,
    standin_pid: int,
    workers: int,
    profile: Profile,
    ceiling_round: Callable[[], float],
) -> dict[str, Any]:
    # Tuned: the same 32 database connections as pgbench, split across the workers.
    pool = max(1, args.connections // workers)
    key = profile.key(workers)
    pool_text = f"DB pool {pool} each" if profile.tuned else "default pool, INFO request lines"
    log(f"service {key} ({workers} process(es), {pool_text}): warm-up")
    with running_service(db, workdir, standin_port, workers, pool, profile) as service:
        procs = Processes(service.pids, db.postmaster, standin_pid)
        tag = f"w{workers}{profile.name[0]}{profile.ref or ''}"
        warm_batch = make_webhook_batch(db, workdir, f"{tag}warm", 6000)
        warm, _ = webhook_round(db, service, warm_batch, args.connections, 2, procs)
        # Three times the warm-up's rate and more: on a shared machine a round can run faster.
        per_thread = math.ceil(warm["per_s"] * args.duration / WRK_THREADS * 3.0) + 1000
        hooks, health, checkout = Scenario(), Scenario(), Scenario()
        ratios = Series()
        for r in range(args.rounds):
            ceiling_rate = ceiling_round()
            batch = make_webhook_batch(db, workdir, f"{tag}r{r}", per_thread)
            res, check = webhook_round(db, service, batch, args.connections, args.duration, procs)
            hooks.add_wrk(res)
            hooks.checks.append(check)
            ratios.add(res["per_s"] / ceiling_rate)
            log(
                f"{key}: webhooks round {r + 1}: {res['per_s']:.0f}/s, "
                f"p99 {res['p99_us'] / 1000:.1f} ms, exactly once: {check['recorded']} events"
            )
            res = measured_wrk(procs, f"{service.url}/health", "health.lua", args.connections, 5)
            if problem := transport_problem(res):
                raise BenchFailed(f"/health: {problem}")
            health.add_wrk(res)
            prefix = f"bc-{tag}r{r}-"
            res = measured_wrk(
                procs,
                f"{service.url}/api/checkout",
                "checkout.lua",
                args.checkout_connections,
                args.duration,
                {"BENCH_PREFIX": prefix},
            )
            time.sleep(0.5)
            sessions = counts(sql(db, partial(db.queries.checkout_sessions, pattern=prefix + "%")))
            problem = transport_problem(res)
            if problem or sessions["with_session"] < res["requests"]:
                raise BenchFailed(
                    f"checkout round {r}: {problem or 'no transport errors'}, "
                    f"{res['requests']} answered, {sessions}"
                )
            checkout.add_wrk(res)
            checkout.checks.append(
                {"round": r, "answered_200": res["requests"], "sessions": sessions["with_session"]}
            )
            log(f"{key}: health {health.rate.values[-1]:.0f}/s, checkout {res['per_s']:.0f}/s")
        spied = None
        if args.profile and workers == 1 and profile.tuned and profile.ref is None:
            log("py-spy: profiling 1 process under webhooks, then checkout")
            spied = profile_service(db, service, workdir, per_thread, args, procs)
        rss = {str(pid): round(peak_rss_mb(pid), 1) for pid in service.worker_pids()}
        supervisor = round(peak_rss_mb(service.proc.pid), 1) if workers > 1 else None
    mode: dict[str, Any] = {
        "settings": profile.name,
        "code": profile.ref or "this tree",
        "db_pool_per_process": pool if profile.tuned else "default (2-10)",
        "webhooks": hooks.summary(),
        # Each round's webhooks/s over the pgbench round run just before it.
        "webhooks_vs_ceiling": ratios.summary(3),
        "health": health.summary(),
        "checkout": checkout.summary(),
        "peak_rss_mb": {"workers": rss, "max_worker": max(rss.values()), "supervisor": supervisor},
    }
    if spied is not None:
        mode["profile"] = spied
    return mode


def _fmt(series: dict[str, float], digits: int = 0) -> str:
    return f"{series['median']:.{digits}f} ({series['min']:.{digits}f}-{series['max']:.{digits}f})"


def _cores(scenario: dict[str, Any]) -> str:
    """Cores used: service / postgres / load generator (+ stand-in when it worked)."""
    c = scenario["cores_used"]
    text = f"svc {c['service']:.2f} pg {c['postgres']:.2f} gen {c['load_generator']:.2f}"
    text += f" stripe {c['standin']:.2f}" if c["standin"] >= 0.01 else ""
    return text + f" others {c['others']:.2f}"


def table(results: dict[str, Any]) -> str:
    ceiling = results["ceiling"]
    rows = [
        ("scenario", "per s: median (min-max)", "p50 ms", "p99 ms", "vs target", "cores"),
        (
            "pgbench ceiling (webhook tx)",
            _fmt(ceiling["per_s"]),
            _fmt(ceiling["p50_ms"], 1),
            _fmt(ceiling["p99_ms"], 1),
            "1.00",
            _cores(ceiling),
        ),
        (
            "Stripe stand-in alone (checkout)",
            _fmt(results["standin_alone"]["per_s"]),
            _fmt(results["standin_alone"]["p50_ms"], 0),
            _fmt(results["standin_alone"]["p99_ms"], 0),
            f"{results['standin_alone_vs_ideal']['median']:.2f} x ideal 320/s",
            _cores(results["standin_alone"]),
        ),
    ]
    for key, mode in results["modes"].items():
        workers, _, rest = key.partition(" ")
        label = "1 process" if workers == "1" else f"{workers} workers"
        label += f", {rest}" if rest else (", tuned" if "settings" in mode else "")
        hooks, health, checkout = mode["webhooks"], mode["health"], mode["checkout"]
        rows += [
            (
                f"webhooks, {label}",
                _fmt(hooks["per_s"]),
                _fmt(hooks["p50_ms"], 1),
                _fmt(hooks["p99_ms"], 1),
                "{median:.2f} ({min:.2f}-{max:.2f}) x ceiling".format(
                    **mode["webhooks_vs_ceiling"]
                ),
                _cores(hooks),
            ),
            (
                f"checkout, {label}",
                _fmt(checkout["per_s"]),
                _fmt(checkout["p50_ms"], 0),
                _fmt(checkout["p99_ms"], 0),
                f"{mode['checkout_vs_ideal']['median']:.2f} x ideal 320/s, "
                f"{mode['checkout_vs_standin_alone']:.2f} x stand-in alone",
                _cores(checkout),
            ),
            (
                f"health, {label}",
                _fmt(health["per_s"]),
                _fmt(health["p50_ms"], 1),
                _fmt(health["p99_ms"], 1),
                "",
                _cores(health),
            ),
            (
                f"peak RSS, {label}",
                f"{mode['peak_rss_mb']['max_worker']:.0f} MB per worker"
                + (
                    f", supervisor {mode['peak_rss_mb']['supervisor']:.0f} MB"
                    if mode["peak_rss_mb"]["supervisor"]
                    else ""
                ),
                "",
                "",
                "<= 100 MB",
                "",
            ),
        ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
