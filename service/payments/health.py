"""Is the database there? (GET /health)"""

from __future__ import annotations

import asyncio

import asyncpg

from service.db import Queries, is_unavailable
from service.errors import DatabaseUnavailable


async def check_database(pool: asyncpg.Pool, queries: Queries, within_seconds: float) -> None:
    """Raise DatabaseUnavailable unless a pooled `SELECT 1` answers within `within_seconds`.

    The reason names only the kind of failure: exception texts can carry host and user.
    """

    async def ping() -> None:
        async with pool.acquire() as conn:
            await queries.ping(conn)

    try:
        await asyncio.wait_for(ping(), within_seconds)
    except TimeoutError:
        raise DatabaseUnavailable(
            f"database unavailable: no answer within {within_seconds:g} s"
        ) from None
    except Exception as error:
        if is_unavailable(error) or isinstance(error, asyncpg.PostgresError):
            kind = type(error).__name__
            raise DatabaseUnavailable(f"database unavailable: {kind}") from None
        raise
