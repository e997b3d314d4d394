"""Thin HTTP handlers: parse and validate, call one `payments` function, render.

Every error, from any handler, is rendered by BaseHandler.write_error as `{"error": …}`
with the status chosen in `status_for`, the one place where domain errors become HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.client import responses
from typing import Any, ClassVar

import asyncpg
import orjson
import tornado.web

from service import payments
from service.config import Settings
from service.db import Queries, is_unavailable
from service.errors import (
    CheckoutBusy,
    DatabaseUnavailable,
    InvalidRequest,
    InvalidWebhook,
    PayloadTooLarge,
    PaymentError,
    ProjectNotFound,
    ProjectNotPayable,
    RateLimited,
    StripeFailed,
    UnstorableWebhook,
)
from service.limits import CallerLimits, RequestLimits, caller_key
from service.logs import request_id_from, request_id_var
from service.metrics import Metrics
from service.stripe_gateway import StripeGateway

log = logging.getLogger("service.http")

CHECKOUT_MAX_BODY = 16 * 1024
WEBHOOK_MAX_BODY = 1024 * 1024
HEALTH_TIMEOUT_SECONDS = 2.0
# A Content-Length is digits and nothing else: not "23, 23", not "-1", not "+5", not "²".
_PLAIN_NUMBER = re.compile(r"[0-9]{1,20}")
# What PostgreSQL refuses to store (a value out of range, a NUL, an index row too large):
# from a signed webhook that is a poison event, and a 500 would make Stripe retry it for days.
_UNSTORABLE = (asyncpg.exceptions.DataError, asyncpg.exceptions.ProgramLimitExceededError)


class InFlight:
    """Counts requests being handled, so a stopping process can wait for them."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def __enter__(self) -> None:
        self.enter()

    def __exit__(self, *_exc: object) -> None:
        self.leave()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def drained(self) -> None:
        await self._idle.wait()


@dataclass(frozen=True)
class AppContext:
    """What the handlers hand to the domain; built once by app.serve()."""

    settings: Settings
    pool: asyncpg.Pool
    queries: Queries
    gateway: StripeGateway
    metrics: Metrics
    in_flight: InFlight = field(default_factory=InFlight)
    # Built from the settings: per-caller rate limits and the cap on the status endpoint's
    # Stripe reads (per process, in memory).
    limits: RequestLimits = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "limits",
            RequestLimits.from_settings(
                self.settings, self.metrics.stripe_confirmations_capped.inc
            ),
        )


_STATUS: tuple[tuple[type[PaymentError], int], ...] = (
    (InvalidRequest, 400),
    (InvalidWebhook, 400),
    (PayloadTooLarge, 413),
    (ProjectNotFound, 404),
    (ProjectNotPayable, 409),
    (RateLimited, 429),
    (StripeFailed, 502),
    (CheckoutBusy, 503),
    (DatabaseUnavailable, 503),
)


def status_for(
    error: BaseException, *, database_down_status: int = 503, unstorable_status: int = 500
) -> tuple[int, str]:
    """The HTTP status and message for an error; unknown errors never leak their text.

    `unstorable_status` is for a value the database refused (a DataError): a bug anywhere
    but in a signed webhook, where it is a poison event (400: see StripeWebhookHandler)."""
    if isinstance(error, DatabaseUnavailable) or is_unavailable(error):
        return database_down_status, "the database is unavailable; try again later"
    if isinstance(error, _UNSTORABLE) and unstorable_status < 500:
        return unstorable_status, "the event holds a value that cannot be stored"
    if isinstance(error, _UNSTORABLE):
        return unstorable_status, "internal error"
    if isinstance(error, PaymentError):
        for kind, status in _STATUS:
            if isinstance(error, kind):
                return status, error.message
    if isinstance(error, tornado.web.HTTPError):
        return error.status_code, error.log_message or responses.get(error.status_code, "error")
    return 500, "internal error"


class BaseHandler(tornado.web.RequestHandler):
    ctx: AppContext
    request_id: str
    # Stripe retries a webhook on any 5xx, and the contract names 500 for a database outage.
    database_down_status: ClassVar[int] = 503
    unstorable_status: ClassVar[int] = 500
    cors: ClassVar[bool] = False
    route: ClassVar[str] = "other"  # the metrics label: a fixed name, never the raw path

    def initialize(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.request_id = request_id_from(self.request.headers.get("X-Request-ID"))

    async def _execute(self, transforms: Any, *args: bytes, **kwargs: bytes) -> None:
        # In flight from the handler's start to its very end, whether or not the caller is
        # still connected: a checkout whose caller hung up still stores the session Stripe
        # made, and a stopping process waits for that before it closes the pool. (on_finish
        # is never reached when a streamed body is cut off; on_connection_close comes while
        # the handler may still be running.) A streamed body counts from when it has all
        # arrived (BodyHandler.post), so a stalled upload never holds a stop up.
        if _streams_body(self):
            await super()._execute(transforms, *args, **kwargs)
            return
        with self.ctx.in_flight:
            await super()._execute(transforms, *args, **kwargs)

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.clear_header("Server")

    def prepare(self) -> None:
        request_id_var.set(self.request_id)
        self.set_header("X-Request-ID", self.request_id)
        origin = self.request.headers.get("Origin")
        if self.cors and origin and origin in self.ctx.settings.cors_allowed_origins:
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Access-Control-Expose-Headers", "X-Request-ID, Retry-After")
        self.add_header("Vary", "Origin")
        if self.request.method != "OPTIONS":
            self.enforce_rate_limit(self.rate_limit())

    def rate_limit(self) -> CallerLimits | None:
        """This route's per-caller limit (None: not limited)."""
        return None

    def caller(self) -> str:
        """Who is calling, as the rate limits see it (see limits.caller_key)."""
        return caller_key(self.request, self.ctx.settings.trusted_proxies)

    def enforce_rate_limit(self, limits: CallerLimits | None) -> None:
        if limits is None:
            return
        retry_after = limits.retry_after(self.caller())
        if retry_after is not None:
            self.ctx.metrics.rate_limited.labels(self.route).inc()
            raise RateLimited(retry_after)

    def options(self, *_args: str) -> None:
        """CORS preflight: only listed origins, only this route's methods."""
        origin = self.request.headers.get("Origin")
        method = self.request.headers.get("Access-Control-Request-Method", "")
        allowed = [m for m in self.SUPPORTED_METHODS if m != "OPTIONS" and _implements(self, m)]
        if not self.cors or origin not in self.ctx.settings.cors_allowed_origins:
            raise tornado.web.HTTPError(403, "origin not allowed")
        if method not in allowed:
            raise tornado.web.HTTPError(405, "method not allowed")
        self.set_header("Access-Control-Allow-Methods", ", ".join(allowed))
        self.set_header("Access-Control-Allow-Headers", "Content-Type, X-Request-ID")
        self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)
        self.clear_header("Content-Type")
        self.finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        error = exc_info[1] if exc_info else None
        if error is None:
            message = responses.get(status_code, "error").lower()
        else:
            status_code, message = status_for(
                error,
                database_down_status=self.database_down_status,
                unstorable_status=self.unstorable_status,
            )
            self.set_status(status_code)
            if isinstance(error, RateLimited):
                self.set_header("Retry-After", str(error.retry_after))
        if status_code >= 500 and error is not None and not isinstance(error, PaymentError):
            log.error("request failed", exc_info=exc_info)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish({"error": message})

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        # write_error logs what deserves it; Tornado's default would print every 4xx too.
        pass

    def render_json(self, body: dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.finish(orjson.dumps(body))


def _streams_body(handler: tornado.web.RequestHandler) -> bool:
    return isinstance(handler, BodyHandler)


def _implements(handler: tornado.web.RequestHandler, method: str) -> bool:
    own = getattr(type(handler), method.lower(), None)
    return own is not None and own is not getattr(tornado.web.RequestHandler, method.lower())


@tornado.web.stream_request_body
class BodyHandler(BaseHandler):
    """Reads a bounded body: a declared oversize is refused before a byte of it is read.

    Subclasses implement `handle()` (reading `body()`); it runs, and counts as in flight,
    once the whole body is in."""

    max_body_bytes: ClassVar[int]

    def prepare(self) -> None:
        super().prepare()
        self._chunks: list[bytes] = []
        self._size = 0
        declared = self.request.headers.get("Content-Length")
        if declared is not None and not _PLAIN_NUMBER.fullmatch(declared):
            raise InvalidRequest("Content-Length must be a plain number")
        if declared is not None and int(declared) > self.max_body_bytes:
            raise PayloadTooLarge(f"body is over {self.max_body_bytes // 1024} KiB")
        # A chunked body has no declared size: stop reading well past the limit.
        assert self.request.connection is not None
        self.request.connection.set_max_body_size(self.max_body_bytes * 2)  # type: ignore[attr-defined]

    def data_received(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size <= self.max_body_bytes:
            self._chunks.append(chunk)

    def body(self) -> bytes:
        if self._size > self.max_body_bytes:
            raise PayloadTooLarge(f"body is over {self.max_body_bytes // 1024} KiB")
        return b"".join(self._chunks)

    async def post(self) -> None:
        with self.ctx.in_flight:
            await self.handle()

    async def handle(self) -> None:
        raise NotImplementedError


class CheckoutHandler(BodyHandler):
    max_body_bytes = CHECKOUT_MAX_BODY
    cors = True
    route = "checkout"

    def rate_limit(self) -> CallerLimits | None:
        return self.ctx.limits.checkout

    async def handle(self) -> None:
        data = _json_object(self.body())
        if "project_id" not in data:
            raise InvalidRequest("project_id is required")
        try:
            result = await payments.start_checkout(
                self.ctx.pool,
                self.ctx.queries,
                self.ctx.gateway,
                self.ctx.settings,
                payments.validate_project_id(data["project_id"]),
            )
        except (StripeFailed, DatabaseUnavailable, CheckoutBusy):
            self.ctx.metrics.checkout_sessions.labels("failed").inc()
            raise
        self.ctx.metrics.checkout_sessions.labels("created" if result.created else "reused").inc()
        self.render_json(
            {
                "checkout_url": result.checkout_url,
                "session_id": result.session_id,
                "expires_at": result.expires_at,
            }
        )


class StripeWebhookHandler(BodyHandler):
    max_body_bytes = WEBHOOK_MAX_BODY
    database_down_status = 500
    unstorable_status = 400
    route = "webhook"

    def prepare(self) -> None:
        self.received_at = datetime.now(UTC)
        super().prepare()

    async def handle(self) -> None:
        try:
            result = await payments.receive_webhook(
                self.ctx.pool,
                self.ctx.queries,
                self.ctx.settings,
                self.body(),
                self.request.headers.get("Stripe-Signature"),
                self.received_at,
            )
        except (InvalidWebhook, PayloadTooLarge) as error:
            self.ctx.metrics.webhook_events.labels("unknown", "rejected").inc()
            if isinstance(error, UnstorableWebhook):
                _log_unstorable(error.message)
            raise
        except _UNSTORABLE as error:
            # The last resort: the event passed every check and the database still refused
            # a value. asyncpg's message quotes the value (customer data, perhaps): never log it.
            self.ctx.metrics.webhook_events.labels("unknown", "rejected").inc()
            _log_unstorable(f"the database refused a value ({type(error).__name__})")
            raise
        self.ctx.metrics.webhook_events.labels(result.event_type, result.outcome).inc()
        self.render_json(dict(payments.event_summary(result)))


def _log_unstorable(reason: str) -> None:
    log.warning(
        "signed webhook refused: it cannot be stored",
        extra={"fields": {"event": "webhook_unstorable", "reason": reason}},
    )


class PaymentStatusHandler(BaseHandler):
    cors = True
    route = "payment_status"

    def rate_limit(self) -> CallerLimits | None:
        return self.ctx.limits.status

    async def get(self, project_id: str) -> None:
        payment = await payments.payment_status(
            self.ctx.pool,
            self.ctx.queries,
            self.ctx.gateway,
            self.ctx.settings,
            project_id,
            stripe_reads=self.ctx.limits.stripe_reads,
        )
        self.render_json(
            {
                "project_id": payment.project_id,
                "status": payment.status,
                "updated_at": payment.updated_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            }
        )


class HealthHandler(BaseHandler):
    database_down_status = 500
    route = "health"

    async def get(self) -> None:
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        try:
            await payments.check_database(self.ctx.pool, self.ctx.queries, HEALTH_TIMEOUT_SECONDS)
        except DatabaseUnavailable as error:
            self.set_status(500)
            self.finish(error.message)
            return
        self.finish("OK")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish(responses.get(status_code, "error"))


class NotFoundHandler(BaseHandler):
    route = "not_found"

    def prepare(self) -> None:
        super().prepare()
        raise tornado.web.HTTPError(404, "not found")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:  # also for nesting deeper than 1024 and non-UTF-8 bytes
        raise InvalidRequest("body must be a JSON object") from None
    if not isinstance(data, dict):
        raise InvalidRequest("body must be a JSON object")
    return data


def log_request(handler: tornado.web.RequestHandler) -> None:
    """One JSON line per request (Tornado's log_function)."""
    status = handler.get_status()
    duration = handler.request.request_time()
    if isinstance(handler, BaseHandler):
        metrics = handler.ctx.metrics
        metrics.requests.labels(handler.route, handler.request.method, str(status)).inc()
        metrics.request_seconds.labels(handler.route).observe(duration)
    level = logging.INFO if status < 500 else logging.ERROR
    log.log(
        level,
        "request",
        extra={
            "fields": {
                "event": "request",
                "method": handler.request.method,
                "path": handler.request.path,
                "status": status,
                "duration_ms": round(1000.0 * duration, 2),
                "request_id": getattr(handler, "request_id", None) or request_id_var.get(),
            }
        },
    )
