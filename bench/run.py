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
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import BENCH, BenchFailed, log
from bench.measure import machine, measure
from bench.report import table
from bench.service import Profile
from bench.snapshots import before_profile, code_version, run_at_ref


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


if __name__ == "__main__":
    sys.exit(main())
