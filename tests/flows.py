"""Ways to bring a test's project into a given status through the public API only."""

from __future__ import annotations

from typing import Any

from conftest import ServiceClient, event_for, new_id

from service.handlers import AppContext


async def history(ctx: AppContext, project_id: str) -> list[dict[str, Any]]:
    """The project's audit rows, oldest first."""
    async with ctx.pool.acquire() as conn:
        rows = ctx.queries.list_project_history(conn, project_id=project_id)
        return [dict(r) async for r in rows]


async def deliver(client: ServiceClient, event: dict[str, Any]) -> dict[str, Any]:
    response = await client.webhook(event)
    assert response.code == 200, response.body
    body: dict[str, Any] = response.json()
    return body


async def status_of(client: ServiceClient, project_id: str) -> str | None:
    response = await client.status(project_id)
    if response.code == 404:
        return None
    assert response.code == 200, response.body
    status: str = response.json()["status"]
    return status


async def bring_to(client: ServiceClient, project_id: str, status: str | None) -> dict[str, str]:
    """Walk the project to `status`; returns the ids used (session, payment intent)."""
    ids = {"payment_intent": new_id("pi"), "session": ""}
    if status is None:
        return ids
    if status in ("pending", "expired"):
        response = await client.checkout(project_id)
        assert response.code == 200, response.body
        ids["session"] = response.json()["session_id"]
        if status == "expired":
            await deliver(
                client, event_for("checkout.session.expired", project_id, session_id=ids["session"])
            )
    elif status in ("processing", "failed"):
        await deliver(
            client,
            event_for(
                "checkout.session.completed.unpaid",
                project_id,
                payment_intent=ids["payment_intent"],
            ),
        )
        if status == "failed":
            await deliver(
                client,
                event_for(
                    "checkout.session.async_payment_failed",
                    project_id,
                    payment_intent=ids["payment_intent"],
                ),
            )
    else:
        await deliver(
            client,
            event_for(
                "checkout.session.completed.paid", project_id, payment_intent=ids["payment_intent"]
            ),
        )
        if status in ("disputed", "refunded"):
            await deliver(
                client,
                event_for("charge.dispute.created", None, payment_intent=ids["payment_intent"]),
            )
        if status == "refunded":
            await deliver(
                client,
                event_for("charge.dispute.closed.lost", None, payment_intent=ids["payment_intent"]),
            )
    assert await status_of(client, project_id) == status
    return ids
