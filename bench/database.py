"""The benchmark's database: an embedded PostgreSQL, migrated, and bench/queries.sql to
seed and check it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosql
import asyncpg

from bench.common import BENCH, ROOT
from bench.query_types import BenchQueries
from devtools.postgres import create_database, start_embedded


@dataclass
class Database:
    url: str
    postmaster: int
    queries: BenchQueries


def start_database(workdir: Path) -> tuple[Database, Any]:
    pgdata = workdir / "pgdata"
    admin_url, server = start_embedded(pgdata, delete_on_exit=True)
    url = asyncio.run(create_database(admin_url, "payments_bench"))
    subprocess.run(
        [sys.executable, "-m", "service", "migrate"],
        check=True,
        cwd=ROOT,
        env=os.environ | {"DATABASE_URL": url},
        stdout=subprocess.DEVNULL,
    )
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    # aiosql builds the methods at run time; the Protocol is generated from the same file
    # (devtools/query_types.py), and tests/test_query_types.py checks the two agree.
    queries = cast(BenchQueries, aiosql.from_path(BENCH / "queries.sql", "asyncpg"))
    return Database(url, postmaster, queries), server


async def _with_conn(db: Database, work: Callable[[asyncpg.Connection], Any]) -> Any:
    conn = await asyncpg.connect(db.url)
    try:
        return await work(conn)
    finally:
        await conn.close()


T = TypeVar("T")


def sql(db: Database, statement: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run a statement of bench/queries.sql on a connection of its own: `sql(db,
    db.queries.checkpoint)`, `sql(db, partial(db.queries.checkout_sessions, pattern=…))`."""
    result: T = asyncio.run(_with_conn(db, statement))
    return result


def counts(row: asyncpg.Record | None) -> dict[str, Any]:
    """A check's row of counts: aggregates, so there always is one."""
    assert row is not None
    return dict(row)


def exactly_once(db: Database, pattern: str) -> dict[str, Any]:
    """bench/queries.sql exactly-once over the projects `LIKE pattern`, on fresh statistics."""

    async def check(conn: asyncpg.Connection) -> asyncpg.Record | None:
        await db.queries.analyze_tables(conn)
        return await db.queries.exactly_once(conn, pattern=pattern)

    return counts(sql(db, check))


def server_settings(db: Database) -> dict[str, str]:
    async def read(conn: asyncpg.Connection) -> dict[str, str]:
        rows = await conn.fetch(
            "SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])",
            ["synchronous_commit", "fsync", "shared_buffers", "max_connections", "server_version"],
        )
        return {r["name"]: r["setting"] for r in rows}

    settings: dict[str, str] = asyncio.run(_with_conn(db, read))
    return settings
