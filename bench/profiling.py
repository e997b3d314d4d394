"""py-spy over the 1-process service: where its CPU goes, by category and by function."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import ROOT, BenchFailed
from bench.database import Database
from bench.procstat import Processes
from bench.service import Service
from bench.webhooks import make_webhook_batch, webhook_round
from bench.wrk import run_wrk

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
