"""The database: the pool, the named queries from queries/*.sql, and migrations."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiosql
import asyncpg
from yoyo import get_backend, read_migrations

from service.config import Settings

ROOT = Path(__file__).resolve().parent.parent
QUERIES_DIR = ROOT / "queries"
MIGRATIONS_DIR = ROOT / "migrations"

Queries = Any  # aiosql builds the queries object at run time from the .sql files

# Errors that mean "the database is not there right now", as opposed to a bug in a query.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.InternalClientError,
)


def is_unavailable(error: BaseException) -> bool:
    return isinstance(error, _UNAVAILABLE)


def load_queries() -> Queries:
    return aiosql.from_path(QUERIES_DIR, "asyncpg")


async def _reset_on_release(conn: asyncpg.Connection) -> None:
    """What the pool runs when a connection comes back: nothing, normally.

    asyncpg's default sends RESET ALL, UNLISTEN, CLOSE ALL and an advisory unlock-all on every
    release: one more round trip per webhook. The service sets no session state, listens to
    nothing and takes only transaction-scoped advisory locks, so there is nothing to reset;
    a connection somehow released inside a transaction still gets the full reset.
    """
    if conn.is_in_transaction():
        await conn.reset()


async def create_pool(settings: Settings) -> asyncpg.Pool:
    pool: asyncpg.Pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        timeout=settings.db_connect_timeout_seconds,
        command_timeout=30,
        statement_cache_size=settings.db_statement_cache_size,
        max_inactive_connection_lifetime=300,
        reset=_reset_on_release,
    )
    return pool


def yoyo_url(database_url: str) -> str:
    """yoyo reaches PostgreSQL through psycopg 3, which it names postgresql+psycopg."""
    scheme, rest = database_url.split("://", 1)
    if scheme not in ("postgres", "postgresql"):
        raise ValueError("not a PostgreSQL URL")
    return f"postgresql+psycopg://{rest}"


def _apply_pending(database_url: str) -> list[str]:
    with get_backend(yoyo_url(database_url)) as backend, backend.lock():
        pending = backend.to_apply(read_migrations(str(MIGRATIONS_DIR)))
        backend.apply_migrations(pending)
        return [migration.id for migration in pending]


async def migrate(database_url: str, queries: Queries) -> list[str]:
    """Apply pending migrations; returns the ids applied. Safe to run concurrently."""
    conn = await asyncpg.connect(database_url)
    try:
        await queries.lock_migrations(conn)
        try:
            return await asyncio.to_thread(_apply_pending, database_url)
        finally:
            await queries.unlock_migrations(conn)
    finally:
        await conn.close()
