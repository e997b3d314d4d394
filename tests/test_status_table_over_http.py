"""Every row of SPEC.md's status table, end to end: a signed event over HTTP moves a real
project from each allowed status, and from every other status it changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import ServiceClient, event_for, new_id
from flows import bring_to, deliver, history, status_of

from service.handlers import AppContext

ALL = [None, "pending", "processing", "paid", "failed", "expired", "refunded", "disputed"]

# (example payload, extra object fields, statuses it moves from, status it moves to)
ROWS: list[tuple[str, dict[str, Any], set[str | None], str]] = [
    (
        "checkout.session.completed.paid",
        {},
        {None, "pending", "expired", "failed", "processing"},
        "paid",
    ),
    (
        "checkout.session.completed.paid",
        {"payment_status": "no_payment_required"},
        {None, "pending", "expired", "failed", "processing"},
        "paid",
    ),
    ("checkout.session.completed.unpaid", {}, {None, "pending", "expired", "failed"}, "processing"),
    (
        "checkout.session.async_payment_succeeded",
        {},
        {None, "pending", "expired", "failed", "processing"},
        "paid",
    ),
    ("checkout.session.async_payment_failed", {}, {"pending", "processing"}, "failed"),
    ("checkout.session.expired", {}, {"pending"}, "expired"),
    ("charge.refunded.full", {}, {"paid", "disputed"}, "refunded"),
    ("charge.dispute.created", {}, {"paid"}, "disputed"),
    ("charge.dispute.closed.won", {}, {"disputed"}, "paid"),
    ("charge.dispute.closed.lost", {}, {"disputed"}, "refunded"),
]

CASES = [
    pytest.param(
        name,
        fields,
        start,
        target if start in sources else start,
        id=f"{name}{'+' + next(iter(fields.values())) if fields else ''}-from-{start}",
    )
    for name, fields, sources, target in ROWS
    for start in ALL
]


@pytest.mark.parametrize(("name", "fields", "start", "expected"), CASES)
async def test_event_moves_status_only_along_the_table(
    client: ServiceClient,
    ctx: AppContext,
    name: str,
    fields: dict[str, Any],
    start: str | None,
    expected: str | None,
) -> None:
    project = new_id()
    ids = await bring_to(client, project, start)
    before = len(await history(ctx, project))
    is_session_event = name.startswith("checkout.session.")
    event = event_for(
        name,
        project if is_session_event or name.startswith("charge.refunded") else None,
        payment_intent=ids["payment_intent"],
        session_id=ids["session"] or None,
        **fields,
    )
    body = await deliver(client, event)
    assert body == {"received": True}
    assert await status_of(client, project) == expected
    rows = await history(ctx, project)
    if expected == start:
        assert len(rows) == before
    else:
        assert len(rows) == before + 1
        assert (rows[-1]["from_status"], rows[-1]["to_status"], rows[-1]["cause_event_id"]) == (
            start,
            expected,
            event["id"],
        )


async def test_a_partial_refund_leaves_a_paid_project_paid(client: ServiceClient) -> None:
    project = new_id()
    await bring_to(client, project, "paid")
    await deliver(client, event_for("charge.refunded.partial", project))
    assert await status_of(client, project) == "paid"


async def test_an_old_sessions_expiry_does_not_expire_the_current_one(
    client: ServiceClient,
) -> None:
    project = new_id()
    await bring_to(client, project, "pending")
    await deliver(
        client,
        event_for("checkout.session.expired", project, session_id="cs_test_someearliersession"),
    )
    assert await status_of(client, project) == "pending"


async def test_late_and_reordered_events_cannot_undo_a_payment(client: ServiceClient) -> None:
    project = new_id()
    ids = await bring_to(client, project, "pending")
    pi = ids["payment_intent"]
    # Delivered out of order: success first, then the "unpaid" completion and the failure.
    for name in (
        "checkout.session.async_payment_succeeded",
        "checkout.session.completed.unpaid",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
    ):
        await deliver(
            client, event_for(name, project, payment_intent=pi, session_id=ids["session"])
        )
        assert await status_of(client, project) == "paid", name
