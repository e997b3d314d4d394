"""The audit trail: one row per status change, naming its caller, and the database refuses to
rewrite it (the append-only triggers for the owner, missing grants for the app role)."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import pytest
import tornado.ioloop
from flows import bring_to
from helpers import ServiceClient, new_id
from query_types import FixtureQueries

from service.http.context import AppContext


async def test_every_status_change_has_one_audit_row_with_cause_time_and_caller(
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
    # API_AUTH=none here: the checkout's caller is anonymous; the webhooks are Stripe's.
    assert [r["actor"] for r in rows] == ["anonymous", "stripe", "stripe", "stripe"]
    times = [r["changed_at"] for r in rows]
    assert times == sorted(times)


@pytest.fixture
def owner(io_loop: tornado.ioloop.IOLoop, owner_database_url: str) -> Iterator[asyncpg.Connection]:
    """A connection as the tables' owner, on the test's loop."""
    conn: asyncpg.Connection = io_loop.run_sync(lambda: asyncpg.connect(owner_database_url))
    yield conn
    io_loop.run_sync(conn.close)


@pytest.mark.parametrize("statement", ["try_update_audit", "try_delete_audit"])
async def test_the_triggers_refuse_even_the_owner_to_rewrite_the_audit_trail(
    client: ServiceClient,
    ctx: AppContext,
    owner: asyncpg.Connection,
    test_queries: FixtureQueries,
    statement: str,
) -> None:
    project = new_id()
    await bring_to(client, project, "pending")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await getattr(test_queries, statement)(owner, project_id=project)
    rows = [r async for r in ctx.queries.list_project_history(owner, project_id=project)]
    assert len(rows) == 1


async def test_the_triggers_refuse_even_the_owner_to_truncate_the_audit_trail(
    owner: asyncpg.Connection, test_queries: FixtureQueries
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await test_queries.try_truncate_audit(owner)


@pytest.mark.parametrize(
    "statement",
    [
        "try_update_audit",
        "try_delete_audit",
        "try_truncate_audit",
        "disable_audit_triggers",
        "create_later_table",
        "try_replica_mode",
    ],
)
async def test_the_app_role_the_service_runs_as_cannot_update_delete_truncate_or_alter_the_audit_trail(
    client: ServiceClient, ctx: AppContext, test_queries: FixtureQueries, statement: str
) -> None:
    project = new_id()
    await bring_to(client, project, "pending")
    query = getattr(test_queries, statement)
    takes_project = statement in ("try_update_audit", "try_delete_audit")
    arguments = {"project_id": project} if takes_project else {}
    async with ctx.pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match=r"permission denied|owner"):
            await query(conn, **arguments)
        rows = [r async for r in ctx.queries.list_project_history(conn, project_id=project)]
    assert len(rows) == 1
