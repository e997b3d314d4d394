"""The database: the pool, the named queries from queries/*.sql, and migrations."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiosql
import asyncpg
from yoyo import get_backend, read_migrations

from service import query_types
from service.config import Settings

log = logging.getLogger("service.db")

ROOT = Path(__file__).resolve().parent.parent
QUERIES_DIR = ROOT / "queries"
MIGRATIONS_DIR = ROOT / "migrations"

# The typed interface of the queries aiosql builds (generated from queries/*.sql).
Queries = query_types.Queries

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
    # aiosql builds the methods at run time, so mypy cannot check the object it returns; the
    # Protocol is generated from the same .sql files (devtools/query_types.py), and
    # tests/test_query_types.py checks the two agree.
    return cast(Queries, aiosql.from_path(QUERIES_DIR, "asyncpg"))


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


DEFAULT_APP_ROLE = "payment_app"


def yoyo_url(database_url: str, app_role: str = DEFAULT_APP_ROLE) -> str:
    """yoyo reaches PostgreSQL through psycopg 3, which it names postgresql+psycopg.

    The app role travels as the session setting payment_service.app_role (libpq `options`),
    which migration 0002.security reads to know whom to grant to: SQL migrations take no parameters.
    """
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError("not a PostgreSQL URL")
    query = dict(parse_qsl(parts.query))
    setting = f"-c payment_service.app_role={app_role}"
    query["options"] = f"{query['options']} {setting}" if query.get("options") else setting
    return urlunsplit(parts._replace(scheme="postgresql+psycopg", query=urlencode(query)))


def _apply_pending(database_url: str, app_role: str) -> list[str]:
    with get_backend(yoyo_url(database_url, app_role)) as backend, backend.lock():
        pending = backend.to_apply(read_migrations(str(MIGRATIONS_DIR)))
        backend.apply_migrations(pending)
        return [migration.id for migration in pending]


async def migrate(
    database_url: str, queries: Queries, app_role: str = DEFAULT_APP_ROLE
) -> list[str]:
    """Apply pending migrations as the tables' owner (DATABASE_MIGRATE_URL), granting the
    app role what it needs; returns the ids applied. Safe to run concurrently."""
    conn = await asyncpg.connect(database_url)
    try:
        await queries.lock_migrations(conn)
        try:
            return await asyncio.to_thread(_apply_pending, database_url, app_role)
        finally:
            await queries.unlock_migrations(conn)
    finally:
        await conn.close()


async def warn_if_privileged(pool: asyncpg.Pool, queries: Queries) -> None:
    """Log a warning when serve runs as a superuser or as the tables' owner: either can get
    around the audit trail's triggers (the hash chain would still show it, afterwards)."""
    try:
        async with pool.acquire() as conn:
            row = await queries.get_own_privileges(conn)
    except Exception as error:
        if is_unavailable(error):
            return  # /health says so; the check is for a database that answers
        raise
    if row is None:
        return
    if row["superuser"] or row["owns_tables"]:
        log.warning(
            "serving as a database role that is a superuser or owns the tables: give serve "
            "the app role (DB_APP_ROLE) and keep the owner for migrate (DATABASE_MIGRATE_URL)",
            extra={
                "fields": {
                    "event": "database_role_too_powerful",
                    "superuser": row["superuser"],
                    "owns_tables": row["owns_tables"],
                }
            },
        )
