"""The only code that talks to Stripe: one async method per Stripe call.

Built around an injected `stripe.StripeClient` whose HTTPX transport is asynchronous, so a
slow Stripe never stalls the event loop. The SDK retries network failures, 409s and 5xx
itself, re-sending the same Idempotency-Key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

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
                session = await self._client.v1.checkout.sessions.create_async(
                    params=dict(params),  # type: ignore[arg-type]
                    options={"idempotency_key": idempotency_key},
                )
        except stripe.StripeError as error:
            raise _failure("creating the checkout session", error) from None
        if not session.id or not session.url or not session.expires_at:
            raise StripeFailed("Stripe answered the checkout request without a session URL")
        return CheckoutSession(
            session.id,
            session.url,
            int(session.expires_at),
            session.amount_total,
            session.currency,
        )

    async def retrieve_checkout_session(self, session_id: str) -> dict[str, Any]:
        """GET /v1/checkout/sessions/{id} — https://docs.stripe.com/api/checkout/sessions/retrieve"""
        try:
            with self._metrics.stripe_call("retrieve_checkout_session"):
                session = await self._client.v1.checkout.sessions.retrieve_async(session_id)
        except stripe.StripeError as error:
            raise _failure("reading the checkout session", error) from None
        return session.to_dict()

    async def list_events(self, params: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """GET /v1/events, every page — https://docs.stripe.com/api/events/list"""
        try:
            with self._metrics.stripe_call("list_events"):
                page = await self._client.v1.events.list_async(params=dict(params))  # type: ignore[arg-type]
            async for event in page.auto_paging_iter():
                yield event.to_dict()
        except stripe.StripeError as error:
            raise _failure("listing events", error) from None


def _failure(doing: str, error: stripe.StripeError) -> StripeFailed:
    """Say whether Stripe refused or failed, never echoing its message (it may quote keys)."""
    if isinstance(error, stripe.APIConnectionError):
        return StripeFailed(f"Stripe could not be reached while {doing}", ambiguous=True)
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        return StripeFailed(f"Stripe refused the service's credentials while {doing}")
    if isinstance(error, stripe.RateLimitError):
        return StripeFailed(f"Stripe rate-limited the service while {doing}")
    status = error.http_status or 0
    if isinstance(error, stripe.InvalidRequestError) or 400 <= status < 500:
        code = f" ({error.code})" if error.code else ""
        return StripeFailed(f"Stripe refused the request while {doing}{code}")
    return StripeFailed(f"Stripe failed while {doing} (HTTP {status or 'error'})")


def make_stripe_client(settings: Settings) -> tuple[stripe.StripeClient, stripe.HTTPXClient]:
    """A client bound to the running event loop; close the HTTPX client at shutdown."""
    http = stripe.HTTPXClient(timeout=settings.stripe_timeout_seconds)
    client = stripe.StripeClient(
        settings.stripe_secret_key,
        http_client=http,
        base_addresses={"api": settings.stripe_api_base},
        max_network_retries=settings.stripe_max_network_retries,
    )
    return client, http
