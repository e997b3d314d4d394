"""The table `make bench` prints: each scenario's median (min-max), latencies, the target
it is measured against, and the cores each party used."""

from __future__ import annotations

from typing import Any


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
