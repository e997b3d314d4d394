"""wrk: the HTTP load generator, run with one of bench/*.lua and read back as JSON."""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

from bench.common import BENCH, WRK_THREADS, BenchFailed, run_tool
from bench.procstat import Processes, cpu_meter


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
    *,
    procs: Processes | None = None,
) -> dict[str, Any]:
    """wrk's result; with `procs`, also the cores each party used during it (result["cores"])."""
    if procs is None:
        return _wrk(url, script, connections, duration, env)
    with cpu_meter(procs) as cores:
        result = _wrk(url, script, connections, duration, env)
    result["cores"] = cores
    return result


def _wrk(
    url: str, script: str, connections: int, duration: float, env: dict[str, str] | None
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


def transport_problem(result: dict[str, Any]) -> str | None:
    """wrk's socket errors and timeouts, if any: a round with them measures nothing."""
    if result["errors"] or result["timeouts"]:
        return f"{result['errors']} errors, {result['timeouts']} timeouts"
    return None
