"""A scenario's figures over the rounds: rate, latencies, cores used, checks."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any


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
        """One round as run_wrk returned it (with procs)."""
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
