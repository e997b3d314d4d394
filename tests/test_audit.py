"""The audit trail: one row per status change, and the database refuses to rewrite it."""

from __future__ import annotations

import asyncpg
import pytest
from conftest import ServiceClient, new_id
from flows import bring_to

from service import db
from service.handlers import AppContext


async def test_every_status_change_has_one_audit_row_with_cause_and_time(
    client: ServiceClient, ctx: AppContext
) -> None:
    project = new_id()
    await bring_to(client, project, "pending")
    await bring_to(client, project, "refunded")  # paid, disputed, refunded by events
    async with ctx.pool.acquire() as conn:
        rows = [dict(r) async for r in ctx.queries.list_project_history(conn, project_id=project)]
    assert [(r["from_status"], r["to_status"]) for r in rows] == [
        (None, "pending"),
        ("pending", "paid"),
        ("paid", "disputed"),
        ("disputed", "refunded"),
    ]
    assert rows[0]["cause"] == "api_checkout"
    assert rows[0]["cause_event_id"] is None
    assert all(r["cause"] == "stripe_event" and r["cause_event_id"] for r in rows[1:])
    assert all(r["changed_at"] is not None and r["request_id"] for r in rows)
    times = [r["changed_at"] for r in rows]
    assert times == sorted(times)


@pytest.mark.parametrize("statement", ["try_update_audit", "try_delete_audit"])
async def test_the_database_refuses_to_rewrite_the_audit_trail(
    client: ServiceClient, ctx: AppContext, test_queries: db.Queries, statement: str
) -> None:
    project = new_id()
    await bring_to(client, project, "pending")
    async with ctx.pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await getattr(test_queries, statement)(conn, project_id=project)
        rows = [r async for r in ctx.queries.list_project_history(conn, project_id=project)]
    assert len(rows) == 1


async def test_the_database_refuses_to_truncate_the_audit_trail(
    ctx: AppContext, test_queries: db.Queries
) -> None:
    async with ctx.pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await test_queries.try_truncate_audit(conn)
