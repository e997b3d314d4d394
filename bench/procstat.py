"""/proc: CPU time and peak memory of the processes under test, and the cores each party
used during a round."""

from __future__ import annotations

import math
import os
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


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
