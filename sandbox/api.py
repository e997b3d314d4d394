"""The HTTP face of the stand-in: the part of Stripe's /v1 API the service uses.

Every /v1 request goes through the same steps as on Stripe: it is recorded, may meet a
planned fault, is authenticated, claims its idempotency key, is delayed if the plan says
so, and only then runs. Errors come back in Stripe's shape, so the real SDK raises the
same exceptions it raises against Stripe.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, NoReturn

import tornado.web

from sandbox import checkout_request, event_query, refund_request
from sandbox.errors import (
    Refusal,
    StripeError,
    invalid,
    masked_key,
    no_such,
    unknown_parameter,
)
from sandbox.idempotency import Reservation, SavedResponse, fingerprint
from sandbox.identity import DevIdentityProvider, identity_routes
from sandbox.ids import new_id
from sandbox.objects import API_VERSION, RequestRef
from sandbox.pages import TEMPLATES, page_routes
from sandbox.refunds import RefundOrigin
from sandbox.state import RecordedRequest, SandboxState
from sandbox.triggers import trigger_routes

# What a Stripe-Version looks like (2026-10-28.endive, or a bare date of older ones). The
# sandbox speaks one shape of the API whatever the version; it only names the one it answers.
_VERSION_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(\.[a-z]+)?")


class StripeHandler(tornado.web.RequestHandler):
    state: SandboxState
    params: dict[str, str]
    _request_id: str
    _reservation: Reservation | None = None
    _lose_answer: bool = False
    _client_gone: asyncio.Event

    def initialize(self, state: SandboxState) -> None:
        self.state = state
        self.params = {}
        self._client_gone = asyncio.Event()
        self.set_header("Stripe-Version", self._answer_version())

    def set_default_headers(self) -> None:
        # Runs again when an error replaces the answer; the request keeps its one id.
        if not hasattr(self, "_request_id"):
            self._request_id = new_id("req_", 14)
        self.set_header("Content-Type", "application/json")
        self.set_header("Request-Id", self._request_id)
        self.set_header("Stripe-Version", self._answer_version())

    def _answer_version(self) -> str:
        """The version Stripe answers in: the one the request asks for, else the account's."""
        asked = self.request.headers.get("Stripe-Version")
        if asked is not None and _VERSION_SHAPE.fullmatch(asked):
            return asked
        # Runs before initialize() too (tornado sets default headers first).
        state: SandboxState | None = getattr(self, "state", None)
        return state.api_version if state is not None else API_VERSION

    async def prepare(self) -> None:
        self.params = self._read_params()
        key = self.request.headers.get("Idempotency-Key")
        self.state.requests.append(
            RecordedRequest(
                self.request.method or "",
                self.request.path,
                self.params,
                key,
                self.request.headers.get("Stripe-Version"),
            )
        )
        # Sessions past their expires_at expire before anything is answered, so no caller
        # sees one open a second late (the timer may not have fired yet).
        self.state.expire_due()
        fault = self.state.faults.take(self.request.path)
        self._lose_answer = fault is not None and fault.kind == "lose_answer"
        if self._lose_answer:
            fault = None
        if fault is not None and fault.kind == "hang":
            await self._client_gone.wait()
            raise tornado.web.Finish
        error = fault.error() if fault is not None else self._authentication_error()
        if error is None:
            error = self._version_error()
        replay: SavedResponse | None = None
        if error is None and key is not None and self.request.method == "POST":
            try:
                replay = self._claim(key)
            except StripeError as refused:
                error = refused
        if self.state.faults.delay_seconds > 0:
            await asyncio.sleep(self.state.faults.delay_seconds)
        if error is not None:
            raise error
        if replay is not None and self._lose_answer:
            self._drop_connection()
        if replay is not None:
            self.set_header("Idempotent-Replayed", "true")
            self.set_header("Original-Request", replay.request_id)
            self.set_status(replay.status)
            self.finish(replay.body)

    def respond(self, body: dict[str, Any], status: int = 200) -> None:
        data = json.dumps(body, indent=2).encode()
        if self._reservation is not None:
            self._reservation.save(status, data, self._request_id)
        if self._lose_answer:
            self._drop_connection()
        self.set_status(status)
        self.finish(data)

    def refuse(self, refusal: Refusal) -> NoReturn:
        """Answer what the state refused. The request ran, so, as on Stripe, its answer is
        saved under its Idempotency-Key like a success: a retry gets the same error."""
        error = refusal.error
        if self._reservation is not None:
            body = json.dumps(error.body(), indent=2).encode()
            self._reservation.save(error.status, body, self._request_id)
        if self._lose_answer:
            self._drop_connection()
        raise error from None

    @property
    def request_ref(self) -> RequestRef:
        """This request, as the events it causes name it."""
        return RequestRef(self._request_id, self.request.headers.get("Idempotency-Key"))

    def _drop_connection(self) -> None:
        """Hang up without answering (the lose_answer fault): the work stays done."""
        assert self.request.connection is not None
        self.request.connection.close()  # type: ignore[attr-defined]
        raise tornado.web.Finish

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs["exc_info"][1] if "exc_info" in kwargs else None
        if not isinstance(error, StripeError):
            if isinstance(error, tornado.web.HTTPError) and error.status_code in (404, 405):
                error = self.unrecognized()
            else:
                error = StripeError(500, "api_error", "An unknown error occurred in the sandbox.")
        self.set_status(error.status)
        self.finish(json.dumps(error.body(), indent=2))

    def unrecognized(self) -> StripeError:
        return StripeError(
            404,
            "invalid_request_error",
            f"Unrecognized request URL ({self.request.method}: {self.request.path}). "
            "Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
        )

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if not isinstance(value, StripeError | tornado.web.HTTPError):
            super().log_exception(typ, value, tb)

    def on_connection_close(self) -> None:
        self._client_gone.set()

    def on_finish(self) -> None:
        # A request that did not run to a saved answer leaves its key free for a retry.
        if self._reservation is not None:
            self._reservation.release()

    def _read_params(self) -> dict[str, str]:
        source = (
            self.request.body_arguments
            if self.request.method == "POST"
            else self.request.query_arguments
        )
        try:
            return {name: values[-1].decode("utf-8") for name, values in source.items()}
        except UnicodeDecodeError:
            raise invalid("Request parameters must be UTF-8.") from None

    def _authentication_error(self) -> StripeError | None:
        header = self.request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme == "Bearer" and key == self.state.api_key:
            return None
        if not key:
            message = (
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY')."
            )
        else:
            message = f"Invalid API Key provided: {masked_key(key.strip())}"
        return StripeError(401, "invalid_request_error", message)

    def _version_error(self) -> StripeError | None:
        asked = self.request.headers.get("Stripe-Version")
        if asked is None or _VERSION_SHAPE.fullmatch(asked):
            return None
        return invalid(f"Invalid Stripe API version: {asked}")

    def _claim(self, key: str) -> SavedResponse | None:
        print_ = fingerprint(self.request.method or "", self.request.path, self.params)
        claim = self.state.idempotency.begin(self.state.api_key, key, print_)
        if isinstance(claim, SavedResponse):
            return claim
        self._reservation = claim
        return None


class CheckoutSessionsHandler(StripeHandler):
    async def post(self) -> None:
        request = checkout_request.parse(self.params, price_id=self.state.price_id)
        self.respond(self.state.create_session(request))


class CheckoutSessionHandler(StripeHandler):
    async def get(self, session_id: str) -> None:
        if self.params:
            _refuse_params(self.params, allowed=("expand",))
        session = self.state.sessions.get(session_id)
        if session is None:
            raise no_such("checkout.session", session_id, param="id", status=404)
        self.respond(session)


class CheckoutSessionExpireHandler(StripeHandler):
    """POST /v1/checkout/sessions/{id}/expire: an open session expires now."""

    async def post(self, session_id: str) -> None:
        _refuse_params(self.params, allowed=("expand",))
        if session_id not in self.state.sessions:
            raise no_such("checkout.session", session_id, param="id", status=404)
        try:
            self.state.expire_session(session_id, request=self.request_ref)
        except Refusal as refusal:
            self.refuse(refusal)
        self.respond(self.state.sessions[session_id])


class RefundsHandler(StripeHandler):
    """POST /v1/refunds: refund all that is left of a PaymentIntent's charge, or `amount`."""

    async def post(self) -> None:
        request = refund_request.parse(self.params)
        try:
            session_id = self.state.session_of_payment_intent(request.payment_intent)
        except KeyError:
            raise no_such(
                "payment_intent", request.payment_intent, param="payment_intent"
            ) from None
        try:
            refund, _ = self.state.create_refund(
                session_id,
                amount=request.amount,
                reason=request.reason,
                metadata=request.metadata,
                origin=RefundOrigin.API,
                request=self.request_ref,
            )
        except Refusal as refusal:
            self.refuse(refusal)
        self.respond(refund)


class EventsHandler(StripeHandler):
    async def get(self) -> None:
        query = event_query.parse(self.params)
        data, has_more = event_query.page(self.state.events, query)
        self.respond({"object": "list", "data": data, "has_more": has_more, "url": "/v1/events"})


class UnrecognizedHandler(StripeHandler):
    async def prepare(self) -> None:
        if self.request.path.startswith("/v1/"):
            await super().prepare()
        raise self.unrecognized()


def _refuse_params(params: dict[str, str], *, allowed: tuple[str, ...]) -> None:
    for name in params:
        if name.partition("[")[0] not in allowed:
            raise unknown_parameter(name)


def make_api_app(
    state: SandboxState,
    *,
    service_url: str | None = None,
    idp: DevIdentityProvider | None = None,
) -> tornado.web.Application:
    """The /v1 API plus the pages (hosted checkout, dashboard, demo) and the development
    identity provider (JWKS, demo tokens; its issuer is the sandbox's URL). `service_url` is
    where the demo page sends its checkout and status requests (the payment service)."""
    args = {"state": state}
    return tornado.web.Application(
        [
            (r"/v1/checkout/sessions", CheckoutSessionsHandler, args),
            (r"/v1/checkout/sessions/([^/]+)", CheckoutSessionHandler, args),
            (r"/v1/checkout/sessions/([^/]+)/expire", CheckoutSessionExpireHandler, args),
            (r"/v1/refunds", RefundsHandler, args),
            (r"/v1/events", EventsHandler, args),
            *identity_routes(idp or DevIdentityProvider(issuer=state.public_base_url)),
            *page_routes(state, service_url),
            *trigger_routes(state),
        ],
        default_handler_class=UnrecognizedHandler,
        default_handler_args=args,
        template_path=str(TEMPLATES),
    )
