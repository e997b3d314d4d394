"""Webhook rounds: distinct signed checkout.session.completed events for projects seeded
pending, replayed by wrk, then checked in SQL: every event took effect exactly once."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import stripe

from bench.common import WEBHOOK_SECRET, WRK_THREADS, BenchFailed
from bench.database import Database, exactly_once, sql
from bench.procstat import Processes
from bench.service import Service
from bench.wrk import run_wrk, transport_problem
from sandbox.examples import event_for

EVENT = "checkout.session.completed.paid"


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
    batch = WebhookBatch(tag, workdir / f"webhooks-{tag}", per_thread)
    now = int(time.time())
    projects: list[str] = []
    sessions: list[str] = []
    for thread in range(WRK_THREADS):
        lines: list[str] = []
        for n in range(1, per_thread + 1):
            project_id = batch.project_id(thread, n)
            session_id = f"cs_test_bench{tag}{thread}x{n}".replace("-", "")
            event = event_for(
                EVENT,
                project_id,
                event_id=batch.event_id(thread, n),
                session_id=session_id,
                payment_intent=f"pi_bench{tag}{thread}x{n}".replace("-", ""),
                created=now,
                payment_status="paid",
            )
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
    result = run_wrk(
        f"{service.url}/webhooks/stripe",
        "webhooks.lua",
        connections,
        duration,
        {"BENCH_DATA": str(batch.data_prefix)},
        procs=procs,
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
