"""The benchmark's database: an embedded PostgreSQL, migrated, and bench/queries.sql to
seed and check it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosql
import asyncpg

from bench.common import BENCH, ROOT
from devtools.postgres import create_database, start_embedded


@dataclass
class Database:
    url: str
    postmaster: int
    queries: Any  # aiosql's queries object of bench/queries.sql


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
    queries = aiosql.from_path(BENCH / "queries.sql", "asyncpg")
    return Database(url, postmaster, queries), server


async def _with_conn(db: Database, work: Callable[[asyncpg.Connection], Any]) -> Any:
    conn = await asyncpg.connect(db.url)
    try:
        return await work(conn)
    finally:
        await conn.close()


def sql(db: Database, name: str, **params: Any) -> Any:
    """Run one statement of bench/queries.sql on a connection of its own."""

    async def call(conn: asyncpg.Connection) -> Any:
        if name == "exactly_once":
            await db.queries.analyze_tables(conn)
        return await getattr(db.queries, name)(conn, **params)

    return asyncio.run(_with_conn(db, call))


def server_settings(db: Database) -> dict[str, str]:
    async def read(conn: asyncpg.Connection) -> dict[str, str]:
        rows = await conn.fetch(
            "SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])",
            ["synchronous_commit", "fsync", "shared_buffers", "max_connections", "server_version"],
        )
        return {r["name"]: r["setting"] for r in rows}

    settings: dict[str, str] = asyncio.run(_with_conn(db, read))
    return settings
