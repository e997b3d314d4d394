"""The Tornado application and the process around it: start-up, serving, graceful stop."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
from dataclasses import replace

import tornado.ioloop
import tornado.netutil
import tornado.web
from prometheus_client import CollectorRegistry

from service import db
from service.config import Settings
from service.http.api import CheckoutHandler, PaymentStatusHandler
from service.http.auth import make_authenticator
from service.http.base import NotFoundHandler, log_request
from service.http.context import AppContext, InFlight
from service.http.health import HealthHandler
from service.http.server import GuardedServer, make_server, raise_descriptor_limit
from service.http.webhooks import WEBHOOK_MAX_BODY, StripeWebhookHandler
from service.logs import count_dropped_lines_with
from service.metrics import Metrics, multiprocess_dir, serve_metrics
from service.payments.sweep import Sweeper
from service.stripe_gateway import StripeGateway, make_stripe_client

log = logging.getLogger("service.app")

# How long a stopping process lets in-flight requests (a checkout waiting on Stripe) finish.
SHUTDOWN_GRACE_SECONDS = 30.0
# How often the pool gauges are sampled: counting idle connections walks the whole pool, too
# much work to repeat on every request.
POOL_SAMPLE_MILLISECONDS = 1000


def make_app(ctx: AppContext) -> tornado.web.Application:
    deps = {"ctx": ctx}
    return tornado.web.Application(
        [
            tornado.web.url(r"/api/checkout", CheckoutHandler, deps, name="checkout"),
            tornado.web.url(r"/webhooks/stripe", StripeWebhookHandler, deps, name="webhook"),
            tornado.web.url(
                r"/api/projects/([^/]+)/payment", PaymentStatusHandler, deps, name="payment"
            ),
            tornado.web.url(r"/health", HealthHandler, deps, name="health"),
        ],
        default_handler_class=NotFoundHandler,
        default_handler_args=deps,
        log_function=log_request,
        compress_response=False,
        xsrf_cookies=False,
    )


def make_http_server(ctx: AppContext) -> GuardedServer:
    return make_server(
        make_app(ctx),
        # Body limits are enforced per route; this only bounds what any request may stream.
        max_body_size=2 * WEBHOOK_MAX_BODY,
        body_timeout_seconds=ctx.settings.body_timeout_seconds,
        max_connections=ctx.settings.max_connections,
        metrics=ctx.metrics,
    )


class PortInUse(Exception):
    """Another process listens on a port this one needs; the message is the whole story."""

    def __init__(self, variable: str, host: str, port: int) -> None:
        super().__init__(
            f"cannot listen on {host}:{port} ({variable}): the address is already in use "
            f"(another payment-service or `make run`?); stop it or set {variable}"
        )


def bind_port(variable: str, host: str, port: int) -> list[socket.socket]:
    """Listening sockets for host:port; PortInUse names the variable that chose the port."""
    try:
        return tornado.netutil.bind_sockets(port, address=host)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise PortInUse(variable, host, port) from None
        raise


def start_metrics(settings: Settings, registry: CollectorRegistry | None) -> None:
    """Serve /metrics on METRICS_PORT (without a registry: the workers' multiprocess sum)."""
    if not settings.metrics_port:
        return
    try:
        serve_metrics(settings.metrics_port, settings.metrics_host, registry)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise PortInUse("METRICS_PORT", settings.metrics_host, settings.metrics_port) from None
        raise


def _start_sweeps(ctx: AppContext, stopping: asyncio.Event) -> asyncio.Task[None] | None:
    """serve's own reconcile sweep, unless RECONCILE_INTERVAL_MINUTES=0."""
    if ctx.settings.reconcile_interval_minutes <= 0:
        return None
    sweeper = Sweeper(ctx.pool, ctx.queries, ctx.gateway, ctx.settings, ctx.metrics, ctx.outbox)
    return asyncio.get_running_loop().create_task(sweeper.run_forever(stopping))


async def _stop_background(ctx: AppContext, sweeps: asyncio.Task[None] | None) -> None:
    if sweeps is not None:
        sweeps.cancel()
        await asyncio.gather(sweeps, return_exceptions=True)
    try:  # what the last webhooks made owed; the next sweep sends what is left
        await asyncio.wait_for(ctx.outbox.drain(), 5.0)
    except TimeoutError:
        log.warning("owed Stripe actions still being sent at stop; the next sweep retries them")


async def serve(settings: Settings, sockets: list[socket.socket] | None = None) -> None:
    """Run until SIGTERM or SIGINT, then stop accepting, finish in-flight requests, close.

    `sockets` are listening sockets bound by a parent process (multi-process mode); without
    them the server binds HOST:PORT itself, first of all, so that a port in use stops it
    before it touches the database.
    """
    if sockets is None:
        sockets = bind_port("PORT", settings.host, settings.port)
    metrics = Metrics()
    count_dropped_lines_with(metrics.log_lines_dropped.inc)
    if not multiprocess_dir():
        start_metrics(settings, metrics.registry)
    queries = db.load_queries()
    try:
        pool = await db.create_pool(settings)
    except Exception as error:
        if not db.is_unavailable(error):
            raise
        # Serve anyway: /health says the database is missing, and the pool connects as soon
        # as it is back, without a restart.
        log.error(  # noqa: TRY400 - a traceback here would only repeat the host it names
            "database unavailable at start-up; connecting on demand",
            extra={"fields": {"event": "database_unavailable"}},
        )
        pool = await db.create_pool(replace(settings, db_pool_min_size=0))
    client, http = make_stripe_client(settings)
    ctx = AppContext(
        settings=settings,
        pool=pool,
        queries=queries,
        gateway=StripeGateway(client, metrics),
        metrics=metrics,
        auth=make_authenticator(settings),
        in_flight=InFlight(),
    )
    await db.warn_if_privileged(pool, queries)
    stopping = asyncio.Event()
    sweeps = _start_sweeps(ctx, stopping)
    raise_descriptor_limit(settings.max_connections)
    server = make_http_server(ctx)

    def sample() -> None:
        metrics.observe_pool(pool)
        metrics.connections_open.set(server.open_connections)

    sample()
    pool_sampler = tornado.ioloop.PeriodicCallback(sample, POOL_SAMPLE_MILLISECONDS)
    pool_sampler.start()
    server.add_sockets(sockets)
    log.info(
        "serving",
        extra={
            "fields": {
                "event": "start",
                "host": settings.host,
                "port": settings.port,
                "livemode": settings.stripe_livemode,
            }
        },
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    log.info("stopping", extra={"fields": {"event": "stop"}})
    server.stop()
    # In flight: requests being handled. A request still sending its body (a stalled
    # upload) is not waited for: closing the connections below ends it.
    try:
        await asyncio.wait_for(ctx.in_flight.drained(), SHUTDOWN_GRACE_SECONDS)
    except TimeoutError:
        log.warning("in-flight requests did not finish in time")
    await server.close_all_connections()
    stopping.set()
    await _stop_background(ctx, sweeps)
    pool_sampler.stop()
    await http.close_async()  # type: ignore[no-untyped-call]
    await ctx.auth.close()
    await pool.close()
    log.info("stopped", extra={"fields": {"event": "stopped"}})
