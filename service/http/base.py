"""The handlers' common ground: security and CORS headers, authentication and rate limits
in prepare(), every error rendered by write_error as `{"error": …}` (its status from
http/error_status.py), bounded bodies, and the one log line per request."""

from __future__ import annotations

import logging
import re
from http.client import responses
from typing import Any, ClassVar

import orjson
import tornado.web

from service.errors import InvalidRequest, PayloadTooLarge, PaymentError, RateLimited
from service.http.context import AppContext
from service.http.error_status import status_for
from service.http.identity import Identity, IdentityKind, authorize
from service.http.limits import CallerLimits, caller_key
from service.logs import actor_var, request_id_from, request_id_var

log = logging.getLogger("service.http")

# What a browser on a listed origin may send (Authorization: the frontend's bearer token)
# and read (the request id, to quote in a support request; when to retry after a 429; why a
# 401).
CORS_ALLOWED_HEADERS = "Authorization, Content-Type, X-Request-ID"
CORS_EXPOSED_HEADERS = "X-Request-ID, Retry-After, WWW-Authenticate"
# A Content-Length is digits and nothing else: not "23, 23", not "-1", not "+5", not "²".
_PLAIN_NUMBER = re.compile(r"[0-9]{1,20}")


class BaseHandler(tornado.web.RequestHandler):
    ctx: AppContext
    request_id: str
    # Stripe retries a webhook on any 5xx, and the contract names 500 for a database outage.
    database_down_status: ClassVar[int] = 503
    unstorable_status: ClassVar[int] = 500
    cors: ClassVar[bool] = False
    route: ClassVar[str] = "other"  # the metrics label: a fixed name, never the raw path
    # The /api/* routes: the caller is authenticated (API_AUTH) before anything else runs.
    protected: ClassVar[bool] = False
    # The authenticated caller of a protected route (rate limits key on it too).
    identity: Identity | None = None
    # Who the request's log line names when no identity was authenticated.
    unauthenticated_actor: ClassVar[str] = "-"

    def initialize(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.error_reason: str | None = None
        self._cors_headers()

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
        # Tornado calls this when the handler is made and again whenever an error replaces
        # the answer (send_error -> clear), even for a 405 raised before prepare(): what is
        # set here is on every response, errors included. The first call comes before
        # initialize(), hence the request id made here and CORS added there.
        if not hasattr(self, "request_id"):
            self.request_id = request_id_from(self.request.headers.get("X-Request-ID"))
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Request-ID", self.request_id)
        self.set_header("Vary", "Origin")
        # Nothing here is meant to be framed or to load anything: JSON and plain text only.
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        self.clear_header("Server")
        if hasattr(self, "ctx"):
            self._cors_headers()

    def _cors_headers(self) -> None:
        """A listed origin may read every answer of a CORS route, its errors above all: a
        browser hides a response without them, and the caller sees no message at all."""
        if self.cors and self._origin_allowed():
            self.set_header("Access-Control-Allow-Origin", self.request.headers["Origin"])
            self.set_header("Access-Control-Expose-Headers", CORS_EXPOSED_HEADERS)

    def _origin_allowed(self) -> bool:
        origin = self.request.headers.get("Origin")
        return origin is not None and origin in self.ctx.settings.cors_allowed_origins

    async def prepare(self) -> None:
        request_id_var.set(self.request_id)
        if self.request.method == "OPTIONS":
            return
        if self.protected:
            self.identity = await self.ctx.auth.authenticate(
                self.request.headers.get("Authorization")
            )
            actor_var.set(self.identity.actor)
        self.enforce_rate_limit(self.rate_limit())

    def authorize(self, project_id: str) -> str:
        """The project id, if the caller may act for it; else 403 (whether or not it exists)."""
        assert self.identity is not None
        authorize(self.identity, project_id)
        return project_id

    def rate_limit(self) -> CallerLimits | None:
        """This route's per-caller limit (None: not limited)."""
        return None

    def caller(self) -> str | None:
        """Who is calling, as the rate limits see it: the token's `sub`; with API_AUTH=none
        the client's address (limits.caller_key); an API key belongs to a trusted server and
        is not limited (None) unless RATE_LIMIT_KEYS=on, and then it is its key id."""
        identity = getattr(self, "identity", None)
        if isinstance(identity, Identity) and identity.kind is IdentityKind.KEY:
            return identity.actor if self.ctx.settings.rate_limit_keys else None
        if isinstance(identity, Identity) and identity.kind is IdentityKind.TOKEN:
            return identity.actor
        return caller_key(self.request, self.ctx.settings.trusted_proxies)

    def enforce_rate_limit(self, limits: CallerLimits | None) -> None:
        caller = self.caller() if limits is not None else None
        if limits is None or caller is None:
            return
        retry_after = limits.retry_after(caller)
        if retry_after is not None:
            self.ctx.metrics.rate_limited.labels(self.route).inc()
            raise RateLimited(retry_after)

    def options(self, *_args: str) -> None:
        """CORS preflight: only listed origins, only this route's methods."""
        method = self.request.headers.get("Access-Control-Request-Method", "")
        allowed = [m for m in self.SUPPORTED_METHODS if m != "OPTIONS" and _implements(self, m)]
        if not self.cors:
            raise tornado.web.HTTPError(403, "this route is not offered to browsers (no CORS)")
        if not self._origin_allowed():
            raise tornado.web.HTTPError(403, "origin not allowed (see CORS_ALLOWED_ORIGINS)")
        if method not in allowed:
            raise tornado.web.HTTPError(405, "method not allowed")
        self.set_header("Access-Control-Allow-Methods", ", ".join(allowed))
        self.set_header("Access-Control-Allow-Headers", CORS_ALLOWED_HEADERS)
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
        # The reason goes into the request's log line: the messages are written for the
        # caller and carry no secret and no payload.
        self.error_reason = message
        if status_code == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="payment-service"')
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

    async def prepare(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        await super().prepare()
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


class NotFoundHandler(BaseHandler):
    # A frontend that calls a wrong path should read the 404, not a CORS failure.
    cors = True
    route = "not_found"

    async def prepare(self) -> None:
        await super().prepare()
        raise tornado.web.HTTPError(404, "not found")


def json_object(body: bytes) -> dict[str, Any]:
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
    fields: dict[str, Any] = {
        "event": "request",
        "method": handler.request.method,
        "path": handler.request.path,
        "status": status,
        "duration_ms": round(1000.0 * duration, 2),
        "request_id": getattr(handler, "request_id", None) or request_id_var.get(),
        "actor": _actor(handler),
    }
    reason = getattr(handler, "error_reason", None)
    if reason:
        fields["reason"] = reason  # why a 4xx/5xx: "signature does not match", ...
    log.log(level, "request", extra={"fields": fields})


def _actor(handler: tornado.web.RequestHandler) -> str:
    """Who made the request, for its log line: the authenticated identity, never a token."""
    identity = getattr(handler, "identity", None)
    if isinstance(identity, Identity):
        return identity.actor
    return handler.unauthenticated_actor if isinstance(handler, BaseHandler) else "-"
