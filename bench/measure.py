"""One measurement: the ceiling and the stand-in alone, then each mode of the service
(settings x worker count) round by round, each round right after a ceiling round."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bench.common import (
    PRICE_ID,
    SECRET_KEY,
    STRIPE_DELAY_SECONDS,
    WRK_THREADS,
    BenchFailed,
    log,
)
from bench.database import Database, counts, server_settings, sql, start_database
from bench.pgbench import pgbench_round
from bench.procstat import Processes, peak_rss_mb
from bench.profiling import profile_service
from bench.results import Scenario, Series
from bench.service import Profile, running_service
from bench.standin import running_standin
from bench.webhooks import make_webhook_batch, webhook_round
from bench.wrk import run_wrk, transport_problem


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
            res = run_wrk(
                f"http://127.0.0.1:{standin_port}/v1/checkout/sessions",
                "standin.lua",
                args.checkout_connections,
                args.duration,
                {
                    "BENCH_PREFIX": f"bs-r{r}-",
                    "BENCH_STRIPE_KEY": SECRET_KEY,
                    "BENCH_PRICE_ID": PRICE_ID,
                },
                procs=procs,
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
            res = run_wrk(f"{service.url}/health", "health.lua", args.connections, 5, procs=procs)
            if problem := transport_problem(res):
                raise BenchFailed(f"/health: {problem}")
            health.add_wrk(res)
            prefix = f"bc-{tag}r{r}-"
            res = run_wrk(
                f"{service.url}/api/checkout",
                "checkout.lua",
                args.checkout_connections,
                args.duration,
                {"BENCH_PREFIX": prefix},
                procs=procs,
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
        # Every setting of this tree's (one process each): --settings defaults alone used to
        # skip it without a word.
        if args.profile and workers == 1 and profile.ref is None:
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
