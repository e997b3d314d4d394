"""What the stand-in's tests share besides fixtures (those are in sandbox_fixtures, which the
modules that use them load through `pytest_plugins`), as tests/helpers.py is for tests/."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import stripe

from sandbox import checkout_request
from sandbox.state import SandboxState

KEY = "sk_test_sandboxTests0000abcd"
PRICE = "price_SandboxTests"

MakeClient = Callable[..., stripe.StripeClient]


@dataclass
class Served:
    state: SandboxState
    url: str


def session_params(project: str = "proj_1", **changes: Any) -> Any:
    """What the service sends, typed loosely: the SDK's TypedDicts would refuse the bad ones."""
    base: dict[str, Any] = {
        "mode": "payment",
        "line_items": [{"price": PRICE, "quantity": 1}],
        "success_url": "https://app.example/paid?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://app.example/cancelled",
        "client_reference_id": project,
        "metadata": {"project_id": project},
        "payment_intent_data": {"metadata": {"project_id": project}},
        "expires_at": int(time.time()) + 3600,
    }
    return base | changes


WEBHOOK_SECRET = "whsec_sandboxDeliveryTests"


@dataclass
class Received:
    """One request the webhook receiver got: when, its headers and its exact body."""

    at: float
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A tiny webhook endpoint: answers each request with the next planned (status, delay)
    and then 200; records what it got."""

    url: str
    got: list[Received]
    plan: list[tuple[int, float]]


@dataclass
class WithWebhooks:
    state: SandboxState
    url: str
    receiver: Receiver


def open_session(
    state: SandboxState,
    project: str = "proj_1",
    *,
    success_url: str = "https://app.example/paid?session={CHECKOUT_SESSION_ID}",
    cancel_url: str = "https://app.example/cancelled",
) -> str:
    """A session made the way POST /v1/checkout/sessions makes it (same parser)."""
    params = {
        "mode": "payment",
        "line_items[0][price]": PRICE,
        "line_items[0][quantity]": "1",
        "success_url": success_url,
        "cancel_url": cancel_url,
        "client_reference_id": project,
        "metadata[project_id]": project,
        "payment_intent_data[metadata][project_id]": project,
        "expires_at": str(int(time.time()) + 3600),
    }
    session = state.create_session(checkout_request.parse(params, price_id=PRICE))
    return str(session["id"])


async def settle(state: SandboxState, seconds: float = 20) -> None:
    """Waits until the stand-in's bank debits have settled and its webhooks are delivered
    (or given up on)."""
    async with asyncio.timeout(seconds):
        await state.settled()


def assert_no_such_session(error: stripe.InvalidRequestError, session_id: str) -> None:
    """The SDK's error for a session Stripe does not know, as Stripe words it."""
    assert (error.http_status, error.code, error.param) == (404, "resource_missing", "id")
    assert error.user_message == f"No such checkout.session: '{session_id}'"
