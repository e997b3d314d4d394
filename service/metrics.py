"""Prometheus metrics, served on their own port (METRICS_PORT) away from the public API.

One `Metrics` object per process holds its own registry (no global default registry). In
multi-process mode prometheus_client's multiprocess files (PROMETHEUS_MULTIPROC_DIR) let
the supervisor serve the sum over its workers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client import multiprocess as prometheus_multiprocess

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


# The counters: attribute, then (name, help, label names).
_COUNTERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "requests": (
        "payment_http_requests_total",
        "HTTP requests answered, by route and status.",
        ("route", "method", "status"),
    ),
    "webhook_events": (
        "payment_webhook_events_total",
        "Webhook deliveries by event type and outcome (payments.model.Outcome: applied, "
        "unchanged, duplicate, ignored, unattributed, livemode_mismatch, connect_account; "
        "and rejected).",
        ("type", "outcome"),
    ),
    "duplicate_refunds": (
        "payment_duplicate_refunds_total",
        "Refunds of duplicate payments by result (confirmed by Stripe, failed and owed "
        "still, disabled: DUPLICATE_PAYMENT_REFUNDS=off).",
        ("result",),
    ),
    "session_expiries": (
        "payment_session_expiries_total",
        "Expiries of superseded checkout sessions sent to Stripe, by result.",
        ("result",),
    ),
    "sweeps": (
        "payment_reconcile_sweeps_total",
        "serve's own reconcile sweeps by result (ok, failed, skipped: another replica's "
        "turn, off: the key may not list events).",
        ("result",),
    ),
    "sweep_applied": (
        "payment_reconcile_applied_events_total",
        "Events a sweep found missed and applied.",
        (),
    ),
    "checkout_sessions": (
        "payment_checkout_sessions_total",
        "Checkouts answered: a session created in Stripe, an open one reused, or failed.",
        ("result",),
    ),
    "stripe_errors": (
        "payment_stripe_errors_total",
        "Stripe API calls that failed, by kind.",
        ("operation", "kind"),
    ),
    "connections_refused": (
        "payment_http_connections_refused_total",
        "Connections refused at once: MAX_CONNECTIONS open, or no file descriptor left.",
        ("reason",),
    ),
    "rate_limited": (
        "payment_rate_limited_total",
        "Requests answered 429 because their caller was over its rate limit.",
        ("route",),
    ),
    "stripe_confirmations_capped": (
        "payment_stripe_confirmations_capped_total",
        "Status reads that did not ask Stripe because STRIPE_CONFIRM_MAX_PER_SECOND was "
        "reached (the page saw the stored status).",
        (),
    ),
}


class Metrics:
    requests: Counter
    webhook_events: Counter
    duplicate_refunds: Counter
    session_expiries: Counter
    sweeps: Counter
    sweep_applied: Counter
    checkout_sessions: Counter
    stripe_errors: Counter
    connections_refused: Counter
    rate_limited: Counter
    stripe_confirmations_capped: Counter

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        for attribute, (name, documentation, labels) in _COUNTERS.items():
            setattr(self, attribute, Counter(name, documentation, labels, registry=registry))
        self.request_seconds = Histogram(
            "payment_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.stripe_seconds = Histogram(
            "payment_stripe_request_duration_seconds",
            "Time of one Stripe API call, the SDK's retries included.",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.pool_in_use = Gauge(
            "payment_db_pool_connections_in_use",
            "Database connections checked out of the pool.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.connections_open = Gauge(
            "payment_http_connections_open",
            "Client connections open (sampled once a second); MAX_CONNECTIONS caps it.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.pool_size = Gauge(
            "payment_db_pool_connections",
            "Database connections open in the pool.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.log_lines_dropped = log_lines_dropped_counter(registry)

    @contextmanager
    def stripe_call(self, operation: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        except Exception as error:
            self.stripe_errors.labels(operation, type(error).__name__).inc()
            raise
        finally:
            self.stripe_seconds.labels(operation).observe(time.perf_counter() - started)

    def observe_pool(self, pool: Any) -> None:
        size = pool.get_size()
        self.pool_size.set(size)
        self.pool_in_use.set(size - pool.get_idle_size())


def log_lines_dropped_counter(registry: CollectorRegistry | None) -> Counter:
    """Log lines dropped because stdout did not keep up (see service.logs.LogWriter).

    Its own function because the supervisor of several workers counts its own drops too,
    without the rest of the Metrics (it serves no requests)."""
    return Counter(
        "payment_log_lines_dropped_total",
        "Log lines dropped because stdout was stalled and the log queue was full.",
        registry=registry,
    )


def serve_metrics(port: int, host: str, registry: CollectorRegistry | None) -> None:
    """Expose /metrics on a background thread. Without a registry, the multiprocess sum."""
    if registry is None:
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(port, addr=host, registry=registry)


def worker_exited(pid: int) -> None:
    if multiprocess_dir():
        prometheus_multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
