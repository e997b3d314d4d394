"""The HTTP face of the stand-in: the subset of Stripe's API the service uses, as strict as
Stripe is (unknown parameters refused, Stripe's error shapes, idempotency keys honoured)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from typing import Any
from urllib.parse import urlsplit

import tornado.web

from sandbox.ids import new_id
from sandbox.state import DATA, RecordedRequest, SandboxState

_ALLOWED_PARAMS: frozenset[str] = frozenset(
    json.loads((DATA / "checkout_session_create_params.json").read_text())["names"]
)
_METADATA_PARAMS = tuple(
    name for name in _ALLOWED_PARAMS if name == "metadata" or name.endswith("[metadata]")
)
_INDEX = re.compile(r"\[\d+\]")
_MIN_TTL, _MAX_TTL = 30 * 60, 24 * 60 * 60
_MODES = ("payment", "setup", "subscription")
_EVENT_LIST_PARAMS = re.compile(
    r"^(limit|starting_after|ending_before|created|created\[(gt|gte|lt|lte)\]|type|"
    r"types\[\d+\]|delivery_success|expand\[\d+\])$"
)


class StripeError(Exception):
    """An answer in Stripe's error shape."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": error_type, "message": message}
        if code:
            self.body["code"] = code
            self.body["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param:
            self.body["param"] = param


def _invalid(message: str, *, param: str | None = None, code: str | None = None) -> StripeError:
    return StripeError(400, "invalid_request_error", message, code=code, param=param)


class StripeHandler(tornado.web.RequestHandler):
    state: SandboxState

    def initialize(self, state: SandboxState) -> None:
        self.state = state

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Request-Id", new_id("req_", 14))
        self.set_header("Stripe-Version", "2026-10-28.endive")

    def params(self) -> dict[str, str]:
        source = (
            self.request.body_arguments
            if self.request.method == "POST"
            else self.request.query_arguments
        )
        return {name: values[-1].decode("utf-8") for name, values in source.items()}

    async def prepare(self) -> None:
        self.state.requests.append(
            RecordedRequest(
                self.request.method or "",
                self.request.path,
                self.params(),
                self.request.headers.get("Idempotency-Key"),
            )
        )
        fault = self.state.faults.take(self.request.path)
        if fault is not None and fault.kind == "hang":
            await asyncio.Event().wait()  # until the client gives up and the server stops
        if self.state.faults.delay_seconds:
            await asyncio.sleep(self.state.faults.delay_seconds)
        if fault is not None:
            raise StripeError(fault.status, fault.error_type, "Injected failure")
        auth = self.request.headers.get("Authorization", "")
        if auth != f"Bearer {self.state.api_key}":
            key = auth.removeprefix("Bearer ").strip()
            shown = f"{key[:8]}****{key[-4:]}" if len(key) > 12 else "****"
            raise StripeError(401, "invalid_request_error", f"Invalid API Key provided: {shown}")

    def answer(self, status: int, body: dict[str, Any]) -> bytes:
        data = json.dumps(body).encode()
        self.set_status(status)
        self.finish(data)
        return data

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs["exc_info"][1] if "exc_info" in kwargs else None
        if isinstance(error, StripeError):
            self.answer(error.status, {"error": error.body})
        elif isinstance(error, tornado.web.HTTPError) and error.status_code in (404, 405):
            self.answer(
                404,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": "Unrecognized request URL "
                        f"({self.request.method}: {self.request.path})",
                    }
                },
            )
        else:
            self.answer(500, {"error": {"type": "api_error", "message": "Sandbox error"}})

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if not isinstance(value, StripeError | tornado.web.HTTPError):
            super().log_exception(typ, value, tb)


class CheckoutSessionsHandler(StripeHandler):
    async def post(self) -> None:
        params = self.params()
        key = self.request.headers.get("Idempotency-Key")
        if key is None:
            self.answer(
                200, self.state.public(self.state.create_session(_validated(self.state, params)))
            )
            return
        scoped = f"{self.state.api_key}:{key}"
        fingerprint = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
        if scoped in self.state.keys_in_flight:
            raise StripeError(
                409,
                "idempotency_error",
                "There is currently another in-progress request using this "
                "Idempotent Key (that probably means you submitted twice, and "
                "the other request is still going through): " + key + ". Please "
                "try again later.",
                code="idempotency_key_in_use",
            )
        cached = self.state.idempotent_results.get(scoped)
        if cached is not None:
            if cached[0] != fingerprint:
                raise StripeError(
                    400,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same "
                    "parameters they were first used with. Try using a key other "
                    "than '" + key + "' if you meant to execute a different request.",
                )
            self.set_header("Idempotent-Replayed", "true")
            self.set_status(cached[1])
            self.finish(cached[2])
            return
        self.state.keys_in_flight.add(scoped)
        try:
            session = self.state.create_session(_validated(self.state, params))
            body = self.answer(200, self.state.public(session))
            self.state.idempotent_results[scoped] = (fingerprint, 200, body)
        finally:
            self.state.keys_in_flight.discard(scoped)


class CheckoutSessionHandler(StripeHandler):
    async def get(self, session_id: str) -> None:
        session = self.state.sessions.get(session_id)
        if session is None:
            raise _invalid(
                f"No such checkout.session: '{session_id}'", param="id", code="resource_missing"
            )
        self.answer(200, self.state.public(session))


class EventsHandler(StripeHandler):
    async def get(self) -> None:
        params = self.params()
        for name in params:
            if not _EVENT_LIST_PARAMS.match(name):
                raise _invalid(
                    f"Received unknown parameter: {name}", param=name, code="parameter_unknown"
                )
        limit = _int(params.get("limit", "10"), "limit")
        if not 1 <= limit <= 100:
            raise _invalid("This value must be between 1 and 100 (inclusive).", param="limit")
        types = [v for k, v in sorted(params.items()) if k.startswith("types[")]
        if types and "type" in params:
            raise _invalid(
                "You may only specify one of these parameters: type, types.", param="types"
            )
        if len(types) > 20:
            raise _invalid("You may pass at most 20 types.", param="types")
        patterns = types or ([params["type"]] if "type" in params else [])
        bounds = {
            op: _int(params[f"created[{op}]"], f"created[{op}]")
            for op in ("gt", "gte", "lt", "lte")
            if f"created[{op}]" in params
        }
        if "created" in params:
            bounds["eq"] = _int(params["created"], "created")

        newest_first = [
            e
            for e in reversed(self.state.events)
            if _matches_type(e["type"], patterns) and _in_range(e["created"], bounds)
        ]
        ids = [e["id"] for e in newest_first]
        if "starting_after" in params:
            start = _position(ids, params["starting_after"], "starting_after") + 1
            page, more = newest_first[start : start + limit], len(newest_first) > start + limit
        elif "ending_before" in params:
            end = _position(ids, params["ending_before"], "ending_before")
            page, more = newest_first[max(0, end - limit) : end], end - limit > 0
        else:
            page, more = newest_first[:limit], len(newest_first) > limit
        self.answer(200, {"object": "list", "data": page, "has_more": more, "url": "/v1/events"})


class UnknownHandler(StripeHandler):
    async def prepare(self) -> None:
        await super().prepare()
        raise tornado.web.HTTPError(404)


def make_api_app(state: SandboxState) -> tornado.web.Application:
    args = {"state": state}
    return tornado.web.Application(
        [
            (r"/v1/checkout/sessions", CheckoutSessionsHandler, args),
            (r"/v1/checkout/sessions/([^/]+)", CheckoutSessionHandler, args),
            (r"/v1/events", EventsHandler, args),
        ],
        default_handler_class=UnknownHandler,
        default_handler_args=args,
    )


# --- validation -------------------------------------------------------------------------


def _known(name: str) -> bool:
    normal = _INDEX.sub("[0]", name)
    if normal in _ALLOWED_PARAMS or normal.removesuffix("[0]") in _ALLOWED_PARAMS:
        return True
    return any(
        normal.startswith(m + "[") and normal.endswith("]") and "[" not in normal[len(m) + 1 : -1]
        for m in _METADATA_PARAMS
    )


def _validated(state: SandboxState, params: dict[str, str]) -> dict[str, str]:
    for name in params:
        if not _known(name):
            raise _invalid(
                f"Received unknown parameter: {name}", param=name, code="parameter_unknown"
            )
    _check_mode_and_items(state, params)
    _check_expiry(params)
    _check_urls_and_references(params)
    return params


def _check_mode_and_items(state: SandboxState, params: dict[str, str]) -> None:
    mode = params.get("mode")
    if mode is None:
        raise _invalid("Missing required param: mode.", param="mode", code="parameter_missing")
    if mode not in _MODES:
        raise _invalid(f"Invalid mode: must be one of {', '.join(_MODES)}", param="mode")
    if mode != "payment":
        return
    price = params.get("line_items[0][price]")
    if price is None:
        raise _invalid(
            "line_items is required in payment mode.", param="line_items", code="parameter_missing"
        )
    if price != state.price_id:
        raise _invalid(
            f"No such price: '{price}'", param="line_items[0][price]", code="resource_missing"
        )
    quantity = _int(params.get("line_items[0][quantity]", ""), "line_items[0][quantity]")
    if quantity < 1:
        raise _invalid("Quantity must be at least 1.", param="line_items[0][quantity]")


def _check_expiry(params: dict[str, str]) -> None:
    if "expires_at" not in params:
        return
    ahead = _int(params["expires_at"], "expires_at") - int(time.time())
    if ahead < _MIN_TTL - 5:
        raise _invalid(
            "The `expires_at` timestamp must be at least 30 minutes from "
            "Checkout Session creation.",
            param="expires_at",
        )
    if ahead > _MAX_TTL:
        raise _invalid(
            "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
            param="expires_at",
        )


def _check_urls_and_references(params: dict[str, str]) -> None:
    for url_param in ("success_url", "cancel_url"):
        if url_param in params:
            parts = urlsplit(params[url_param].replace("{CHECKOUT_SESSION_ID}", "x"))
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise _invalid("Not a valid URL", param=url_param, code="url_invalid")
    if len(params.get("client_reference_id", "")) > 200:
        raise _invalid(
            "client_reference_id must be at most 200 characters.", param="client_reference_id"
        )
    for prefix in ("metadata", "payment_intent_data[metadata]"):
        entries = {k: v for k, v in params.items() if k.startswith(prefix + "[")}
        if len(entries) > 50:
            raise _invalid("Metadata can have up to 50 keys.", param=prefix)
        for name, value in entries.items():
            if len(name) - len(prefix) - 2 > 40 or len(value) > 500:
                raise _invalid(
                    "Metadata keys are limited to 40 characters and values to 500.", param=name
                )


def _int(value: str, param: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise _invalid(f"Invalid integer: {value}", param=param) from None


def _matches_type(event_type: str, patterns: list[str]) -> bool:
    if not patterns:
        return True
    return any(
        event_type == p or (p.endswith("*") and event_type.startswith(p[:-1])) for p in patterns
    )


def _in_range(created: int, bounds: dict[str, int]) -> bool:
    checks = {
        "gt": created > bounds.get("gt", created - 1),
        "gte": created >= bounds.get("gte", created),
        "lt": created < bounds.get("lt", created + 1),
        "lte": created <= bounds.get("lte", created),
        "eq": created == bounds.get("eq", created),
    }
    return all(checks.values())


def _position(ids: list[str], cursor: str, param: str) -> int:
    try:
        return ids.index(cursor)
    except ValueError:
        raise _invalid(f"No such event: '{cursor}'", param=param, code="resource_missing") from None
