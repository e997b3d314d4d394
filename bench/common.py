"""What every part of the benchmark shares: where it lives, the stand-in's key and price,
how it says what it is doing, and how a check that does not hold stops the run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

SECRET_KEY = "sk_test_bench0000000000000000000000"  # noqa: S105 - the stand-in's test key
WEBHOOK_SECRET = "whsec_bench00000000000000000000000000"  # noqa: S105 - a bench-only secret
PRICE_ID = "price_bench"
STRIPE_DELAY_SECONDS = 0.2
WRK_THREADS = 2


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


def stop(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds: a process the bench started."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
