"""The only code that talks to Stripe: one async method per Stripe call.

Built around an injected `stripe.StripeClient` whose aiohttp transport is asynchronous, so
a slow Stripe never stalls the event loop. The SDK retries network failures, 409s and 5xx
itself, re-sending the same Idempotency-Key.

Checkout calls go through the SDK's `raw_request_async`: the same requestor (encoding,
headers, retries, idempotency, error mapping) but the answer stays the plain dict parsed
from Stripe's JSON, instead of being rebuilt as a tree of StripeObjects, which cost more CPU
than the rest of a checkout together.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import stripe

from service.config import Settings
from service.errors import StripeFailed
from service.metrics import Metrics


@dataclass(frozen=True)
class CheckoutSession:
    session_id: str
    url: str
    expires_at: int
    amount_total: int | None
    currency: str | None


class StripeGateway:
    def __init__(self, client: stripe.StripeClient, metrics: Metrics) -> None:
        self._client = client
        self._metrics = metrics

    async def create_checkout_session(
        self, params: Mapping[str, Any], idempotency_key: str
    ) -> CheckoutSession:
        """POST /v1/checkout/sessions — https://docs.stripe.com/api/checkout/sessions/create"""
        try:
            with self._metrics.stripe_call("create_checkout_session"):
                answer = await self._client.raw_request_async(
                    "post", "/v1/checkout/sessions", idempotency_key=idempotency_key, **params
                )
        except stripe.StripeError as error:
            raise _failure("creating the checkout session", error) from None
        session = _object(answer)
        session_id, url, expires_at = (
            session.get("id"),
            session.get("url"),
            session.get("expires_at"),
        )
        if not (
            isinstance(session_id, str)
            and session_id
            and isinstance(url, str)
            and url
            and _is_int(expires_at)
            and expires_at
        ):
            raise StripeFailed("Stripe answered the checkout request without a session URL")
        amount, currency = session.get("amount_total"), session.get("currency")
        return CheckoutSession(
            session_id=session_id,
            url=url,
            expires_at=expires_at,
            amount_total=amount if _is_int(amount) else None,
            currency=currency if isinstance(currency, str) else None,
        )

    async def retrieve_checkout_session(self, session_id: str) -> dict[str, Any]:
        """GET /v1/checkout/sessions/{id} — https://docs.stripe.com/api/checkout/sessions/retrieve"""
        try:
            with self._metrics.stripe_call("retrieve_checkout_session"):
                answer = await self._client.raw_request_async(
                    "get", f"/v1/checkout/sessions/{quote(session_id, safe='')}"
                )
        except stripe.StripeError as error:
            raise _failure("reading the checkout session", error) from None
        return _object(answer)

    async def expire_checkout_session(self, session_id: str) -> dict[str, Any] | None:
        """POST /v1/checkout/sessions/{id}/expire — https://docs.stripe.com/api/checkout/sessions/expire

        The session, now expired; None when Stripe says it is not open any more (complete, or
        expired already): the caller reads it to learn which."""
        path = f"/v1/checkout/sessions/{quote(session_id, safe='')}/expire"
        try:
            with self._metrics.stripe_call("expire_checkout_session"):
                answer = await self._client.raw_request_async(
                    "post", path, idempotency_key=f"expire-{session_id}"
                )
        except stripe.InvalidRequestError as error:
            if error.http_status == 400 and _NOT_OPEN in str(error.user_message or ""):
                return None
            raise _failure("expiring the checkout session", error) from None
        except stripe.StripeError as error:
            raise _failure("expiring the checkout session", error) from None
        return _object(answer)

    async def refund_duplicate(
        self, payment_intent: str, project_id: str, idempotency_key: str
    ) -> str:
        """POST /v1/refunds, the whole payment, reason duplicate — https://docs.stripe.com/api/refunds/create

        Returns the refund's id."""
        try:
            with self._metrics.stripe_call("refund_duplicate"):
                answer = await self._client.raw_request_async(
                    "post",
                    "/v1/refunds",
                    idempotency_key=idempotency_key,
                    payment_intent=payment_intent,
                    reason="duplicate",
                    metadata={"project_id": project_id},
                )
        except stripe.StripeError as error:
            raise _failure("refunding a duplicate payment", error) from None
        refund_id = _object(answer).get("id")
        if not isinstance(refund_id, str) or not refund_id:
            raise StripeFailed("Stripe answered the refund without a refund id")
        return refund_id

    async def list_events(self, params: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """GET /v1/events, every page — https://docs.stripe.com/api/events/list"""
        try:
            with self._metrics.stripe_call("list_events"):
                page = await self._client.v1.events.list_async(params=dict(params))  # type: ignore[arg-type]
            async for event in page.auto_paging_iter():
                yield event.to_dict()
        except stripe.StripeError as error:
            raise _failure("listing events", error) from None


def _object(answer: Any) -> dict[str, Any]:
    data = getattr(answer, "data", None)
    if not isinstance(data, dict):
        raise StripeFailed("Stripe answered with something that is not a JSON object")
    return data


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# What Stripe says when a session cannot be expired because it is not open (no error code).
_NOT_OPEN = 'Only Checkout Sessions with a status in ["open"] can be expired'


def _failure(doing: str, error: stripe.StripeError) -> StripeFailed:
    """Say whether Stripe refused or failed, never echoing its message (it may quote keys).

    Ambiguous (Stripe may have acted, so a retry must re-send the same Idempotency-Key): no
    answer at all, a 5xx, or 409 idempotency_key_in_use (the same request still in flight)."""
    if isinstance(error, stripe.APIConnectionError):
        return StripeFailed(f"Stripe could not be reached while {doing}", ambiguous=True)
    if error.code == "idempotency_key_in_use":
        return StripeFailed(
            f"Stripe is still handling the same request while {doing}",
            ambiguous=True,
            code=error.code,
        )
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        return StripeFailed(
            f"Stripe refused the service's credentials while {doing}", code="not_permitted"
        )
    if isinstance(error, stripe.RateLimitError):
        return StripeFailed(f"Stripe rate-limited the service while {doing}")
    status = error.http_status or 0
    if isinstance(error, stripe.InvalidRequestError) or 400 <= status < 500:
        code = f" ({error.code})" if error.code else ""
        return StripeFailed(f"Stripe refused the request while {doing}{code}", code=error.code)
    return StripeFailed(f"Stripe failed while {doing} (HTTP {status or 'error'})", ambiguous=True)


# Concurrent Stripe calls one process makes; more wait for a connection (within the timeout).
STRIPE_MAX_CONNECTIONS = 256


def make_stripe_client(settings: Settings) -> tuple[stripe.StripeClient, stripe.AIOHTTPClient]:
    """A client bound to the running event loop; close the HTTP client at shutdown.

    aiohttp rather than the SDK's default HTTPX: its HTTP parser is C and its connection pool
    hands back an idle connection without scanning them all, which made HTTPX the largest
    cost of a checkout.
    """
    connector = aiohttp.TCPConnector(
        limit=STRIPE_MAX_CONNECTIONS,
        ssl=ssl.create_default_context(cafile=stripe.ca_bundle_path),
    )
    http = stripe.AIOHTTPClient(
        timeout=aiohttp.ClientTimeout(total=settings.stripe_timeout_seconds),
        connector=connector,
    )
    client = stripe.StripeClient(
        settings.stripe_secret_key,
        http_client=http,
        base_addresses={"api": settings.stripe_api_base},
        max_network_retries=settings.stripe_max_network_retries,
        # Every call pins the API version the service is built for (the SDK's own, unless
        # STRIPE_API_VERSION says otherwise): an account upgrade never changes its answers.
        stripe_version=settings.stripe_api_version,
    )
    return client, http
