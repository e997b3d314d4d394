"""The ceiling: pgbench running the webhook's own transaction (bench/pgbench_script.py)
on projects seeded pending for it, checked exactly once in SQL."""

from __future__ import annotations

import math
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from bench import pgbench_script
from bench.common import WRK_THREADS, BenchFailed, run_tool
from bench.database import Database, exactly_once, sql
from bench.procstat import Processes, cpu_meter


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
