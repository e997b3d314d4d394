"""What tests share besides fixtures (those are in conftest.py, which tests never import):
the run's keys and ids, the client that talks to the app under test, Stripe's example events
re-targeted and signed, and the records the fixtures hand out.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, replace
from typing import Any

import pytest
import stripe
import tornado.httpclient
import tornado.httputil

from sandbox import examples
from sandbox.state import SandboxState
from service.config import ConfigError, Settings, load_settings

SECRET_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
WEBHOOK_SECRET = "whsec_test_2f9c0d7a1b3e4f5a6b7c8d9e"
PRICE_ID = "price_1TestProjectPayment"


def new_id(prefix: str = "proj") -> str:
    """An id no other test uses, so tests share one database without seeing each other."""
    return examples.fresh_id(prefix)


# --- records the fixtures hand out -----------------------------------------------------


@dataclass(frozen=True)
class RunDatabase:
    """The run's database: migrated by its owner, served by an app role of its own."""

    owner_url: str
    app_url: str
    app_role: str


@dataclass
class StripeStandIn:
    state: SandboxState
    url: str


@dataclass
class OwnedPostgres:
    """A cluster only this test uses, so it can be stopped and started at will."""

    url: str
    server: Any


def session_creations(stripe_api: StripeStandIn) -> list[Any]:
    """The stand-in's requests that asked to create a Checkout Session, oldest first."""
    return [
        r
        for r in stripe_api.state.requests
        if r.method == "POST" and r.path == "/v1/checkout/sessions"
    ]


# --- the service's client ---------------------------------------------------------------


@dataclass
class Response:
    code: int
    headers: tornado.httputil.HTTPHeaders
    body: bytes

    def json(self) -> Any:
        assert self.headers.get("Content-Type", "").startswith("application/json"), self.headers
        return json.loads(self.body)


@dataclass
class ServiceClient:
    http: tornado.httpclient.AsyncHTTPClient
    base_url: str

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> Response:
        response = await self.http.fetch(
            self.base_url + path,
            method=method,
            body=body,
            headers=headers,
            raise_error=False,
            request_timeout=timeout,
            allow_nonstandard_methods=True,
        )
        if response.code == 599:
            raise AssertionError(f"no HTTP response: {response.error}")
        return Response(response.code, response.headers, response.body)

    async def checkout(self, project_id: object, **kwargs: Any) -> Response:
        return await self.request(
            "POST", "/api/checkout", json.dumps({"project_id": project_id}), **kwargs
        )

    async def status(self, project_id: str, **kwargs: Any) -> Response:
        return await self.request("GET", f"/api/projects/{project_id}/payment", **kwargs)

    async def webhook(
        self,
        event: dict[str, Any] | bytes,
        *,
        secret: str = WEBHOOK_SECRET,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        payload = event if isinstance(event, bytes) else json.dumps(event).encode()
        signature = sign(payload, secret, timestamp)
        return await self.request(
            "POST",
            "/webhooks/stripe",
            payload,
            headers={"Stripe-Signature": signature, "Content-Type": "application/json"}
            | (headers or {}),
        )


async def raw_exchange(port: int, request: bytes) -> bytes:
    """Sends `request` byte for byte (a head alone, a malformed one) over one connection and
    reads the answer: what no HTTP client would send."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()


# --- Stripe events ----------------------------------------------------------------------


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe would send, computed by the SDK."""
    return str(
        stripe.WebhookSignature.generate_signature_header(
            payload.decode("utf-8"),
            secret,
            timestamp if timestamp is not None else int(time.time()),
        )
    )


def event_for(
    name: str,
    project_id: str | None,
    *,
    payment_intent: str | None = None,
    session_id: str | None = None,
    **object_fields: Any,
) -> dict[str, Any]:
    """An example event re-targeted at one test's project, with a fresh event id and payment
    intent (sandbox/examples.py)."""
    return examples.event_for(
        name, project_id, payment_intent=payment_intent, session_id=session_id, **object_fields
    )


def with_settings(settings: Settings, **changes: Any) -> Settings:
    return replace(settings, **changes)


# --- the service's configuration, as environment variables --------------------------------

GOOD = {
    "STRIPE_SECRET_KEY": "sk_test_51HqLyjWDarjtT1zdp7dcSECRETVALUE",
    "STRIPE_WEBHOOK_SECRET": "whsec_abcdefSECRETVALUE",
    "STRIPE_PRODUCT_PRICE_ID": "price_1Abc",
    "STRIPE_SUCCESS_URL": "https://app.example/paid?session={CHECKOUT_SESSION_ID}",
    "STRIPE_CANCEL_URL": "https://app.example/cancelled",
    "DATABASE_URL": "postgresql://payments:dbSECRETpw@db.internal:5432/payments",
}
OPTIONAL = [
    "HOST",
    "PORT",
    "STRIPE_API_BASE",
    "CHECKOUT_SESSION_TTL_MINUTES",
    "WEBHOOK_TOLERANCE_SECONDS",
    "CORS_ALLOWED_ORIGINS",
    "DB_POOL_MIN_SIZE",
    "DB_POOL_MAX_SIZE",
    "LOG_LEVEL",
    "STRIPE_TIMEOUT_SECONDS",
    "STRIPE_MAX_NETWORK_RETRIES",
    "DB_CONNECT_TIMEOUT_SECONDS",
    "DB_STATEMENT_CACHE_SIZE",
    "EVENT_LOOP",
    "API_AUTH",
    "AUTH_JWKS_URL",
    "AUTH_JWT_PUBLIC_KEY_FILE",
    "AUTH_ISSUER",
    "AUTH_AUDIENCE",
    "AUTH_PROJECT_CLAIM",
    "API_KEYS_FILE",
    "METRICS_HOST",
    "METRICS_PORT",
    "DB_APP_ROLE",
    "DATABASE_MIGRATE_URL",
    "DATABASE_MIGRATE_URL_FILE",
    "LOG_BUFFER_LINES",
    "BODY_TIMEOUT_SECONDS",
    "MAX_CONNECTIONS",
    "RATE_LIMIT_CHECKOUT",
    "RATE_LIMIT_STATUS",
    "TRUSTED_PROXIES",
    "STRIPE_CONFIRM_MAX_PER_SECOND",
]


def refused_settings(**kwargs: Any) -> pytest.ExceptionInfo[ConfigError]:
    """`load_settings(**kwargs)`, which must refuse this environment: what it raised."""
    with pytest.raises(ConfigError) as caught:
        load_settings(**kwargs)
    return caught


def key_line(key_id: str, key: str) -> str:
    """One line of an API_KEYS_FILE: the key's id and the SHA-256 of the key."""
    return f"{key_id} {hashlib.sha256(key.encode()).hexdigest()}\n"
