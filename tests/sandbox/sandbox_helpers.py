"""What the stand-in's tests share besides fixtures (those are in sandbox_fixtures, loaded
through `pytest_plugins`: a second conftest.py would shadow the `from conftest import ...`
of the service's tests)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import stripe

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
