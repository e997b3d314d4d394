"""The sandbox delivering like Stripe after an outage (`--delivery shuffled`): each event held
a random delay, later events overtaking earlier ones. The service ends right anyway."""

from __future__ import annotations

import asyncio
from typing import Any

from flows import checked_out, status_of
from helpers import WEBHOOK_SECRET, ServiceClient, StripeStandIn, new_id

from sandbox.state import SandboxState
from sandbox.webhooks import Deliverer, WebhookTarget


def lifecycles(state: SandboxState) -> dict[str, tuple[list[Any], str]]:
    """What the buyer and Stripe do to each project's session, and where it must end."""
    return {
        "card, then refunded": (
            [state.complete_session, state.refund],
            "refunded",
        ),
        "card, a partial refund": (
            [state.complete_session, lambda s: state.refund(s, amount=1)],
            "paid",
        ),
        "bank debit succeeds": (
            [
                lambda s: state.complete_session(s, payment_status="unpaid"),
                state.async_payment_succeeded,
            ],
            "paid",
        ),
        "bank debit fails": (
            [
                lambda s: state.complete_session(s, payment_status="unpaid"),
                state.async_payment_failed,
            ],
            "failed",
        ),
        "dispute lost": (
            [
                state.complete_session,
                state.open_dispute,
                lambda s: state.close_dispute(s, won=False),
            ],
            "refunded",
        ),
        "dispute won": (
            [
                state.complete_session,
                state.open_dispute,
                lambda s: state.close_dispute(s, won=True),
            ],
            "paid",
        ),
        "expired": ([state.expire_session], "expired"),
    }


async def test_shuffled_delivery_overtakes_and_the_service_still_ends_right(
    client: ServiceClient, stripe_api: StripeStandIn
) -> None:
    state = stripe_api.state
    state.deliverer = Deliverer(
        WebhookTarget(
            f"{client.base_url}/webhooks/stripe",
            WEBHOOK_SECRET,
            retry_base_seconds=0.2,
            shuffle_max_delay_seconds=1.5,
        ),
        seed=7,
    )
    expected: dict[str, str] = {}
    for name, (steps, end) in lifecycles(state).items():
        project = f"{name.replace(' ', '_').replace(',', '')}_{new_id('')}"
        session = await checked_out(client, project)
        for step in steps:
            step(session)
        expected[project] = end
    async with asyncio.timeout(30):
        await state.settled()

    first_tries = [
        (deliveries[0].attempts[0].at, event_id)
        for event_id, deliveries in state.deliverer.deliveries.items()
    ]
    created = [event["id"] for event in state.events]
    arrived = [event_id for _, event_id in sorted(first_tries)]
    assert arrived != created, "nothing was overtaken: the shuffle did not shuffle"
    for project, end in expected.items():
        assert await status_of(client, project) == end, project
