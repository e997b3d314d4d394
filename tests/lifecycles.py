"""Payment lifecycles as Stripe would tell them, for the delivery-order properties.

A lifecycle is what happens to one project: its checkouts (made through the service's API,
in order) and the events Stripe creates for its sessions, in Stripe's order, each with its own
`created` second. `expected` is where the SPEC says delivering them in that order ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from flows import checked_out, deliver
from helpers import ServiceClient, event_for, new_id

# One step of a lifecycle: (example event name, which checkout's session it is about (0 or 1),
# extra object fields). Disputes and refunds name the session's payment intent.
Step = tuple[str, int, dict[str, Any]]

PAID = "checkout.session.completed.paid"
UNPAID = "checkout.session.completed.unpaid"
SUCCEEDED = "checkout.session.async_payment_succeeded"
FAILED = "checkout.session.async_payment_failed"
EXPIRED = "checkout.session.expired"
REFUNDED = "charge.refunded.full"
DISPUTED = "charge.dispute.created"
WON = "charge.dispute.closed.won"
LOST = "charge.dispute.closed.lost"


@dataclass(frozen=True)
class Lifecycle:
    name: str
    steps: tuple[Step, ...]
    expected: str
    # Events (by step index) that must be applied before the second checkout can be made.
    before_second_checkout: tuple[int, ...] = ()

    @property
    def checkouts(self) -> int:
        return 1 + max(session for _, session, _ in self.steps)


LIFECYCLES = (
    Lifecycle("card", ((PAID, 0, {}),), "paid"),
    Lifecycle("delayed success", ((UNPAID, 0, {}), (SUCCEEDED, 0, {})), "paid"),
    Lifecycle("delayed failure", ((UNPAID, 0, {}), (FAILED, 0, {})), "failed"),
    Lifecycle(
        "expiry then a new checkout",
        ((EXPIRED, 0, {}), (PAID, 1, {})),
        "paid",
        before_second_checkout=(0,),
    ),
    Lifecycle(
        "partial refunds summing to full",
        (
            (PAID, 0, {}),
            (REFUNDED, 0, {"amount_refunded": 100000}),
            (REFUNDED, 0, {"amount_refunded": 250000}),
        ),
        "refunded",
    ),
    Lifecycle("a partial refund", ((PAID, 0, {}), (REFUNDED, 0, {"amount_refunded": 1})), "paid"),
    Lifecycle("dispute won", ((PAID, 0, {}), (DISPUTED, 0, {}), (WON, 0, {})), "paid"),
    Lifecycle("dispute lost", ((PAID, 0, {}), (DISPUTED, 0, {}), (LOST, 0, {})), "refunded"),
    Lifecycle("dispute open", ((PAID, 0, {}), (DISPUTED, 0, {})), "disputed"),
    Lifecycle(
        "inquiry closed",
        (
            (PAID, 0, {}),
            (DISPUTED, 0, {"status": "warning_needs_response"}),
            (WON, 0, {"status": "warning_closed"}),
        ),
        "paid",
    ),
    Lifecycle(
        "delayed success, then refunded in full",
        ((UNPAID, 0, {}), (SUCCEEDED, 0, {}), (REFUNDED, 0, {})),
        "refunded",
    ),
)


@dataclass
class Played:
    """A lifecycle set up for one project: its checkouts made, its events built."""

    project: str
    events: list[dict[str, Any]]


async def set_up(client: ServiceClient, lifecycle: Lifecycle) -> Played:
    """Make the lifecycle's checkouts (delivering, in order, what the second one needs) and
    build all its events, dated one second apart in Stripe's order."""
    project = new_id()
    sessions = [await checked_out(client, project)]
    intents = [new_id("pi") for _ in range(lifecycle.checkouts)]
    dispute = new_id("dp")
    start = int(time.time()) - 100
    events: list[dict[str, Any]] = []
    for n, (name, session, fields) in enumerate(lifecycle.steps):
        while session >= len(sessions):
            for index in lifecycle.before_second_checkout:
                await deliver(client, events[index])
            sessions.append(await checked_out(client, project))
        on_session = name.startswith("checkout.session.")
        extra = dict(fields) | (
            {} if on_session else {"id": dispute if "dispute" in name else new_id("ch")}
        )
        event = event_for(
            name,
            project if on_session else None,
            session_id=sessions[session],
            payment_intent=intents[session],
            **extra,
        )
        event["created"] = start + n
        events.append(event)
    return Played(project, events)
