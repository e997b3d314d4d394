"""What the payments use cases share: the transaction helper, the status-change record and
its log line, and the project id rule."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from service.db import is_unavailable
from service.errors import DatabaseUnavailable, InvalidProjectId
from service.payments.model import PaymentStatus
from service.webhook_events import PROJECT_ID

log = logging.getLogger("service.payments")


@dataclass(frozen=True)
class StatusChange:
    project_id: str
    from_status: PaymentStatus | None
    to_status: PaymentStatus

    @classmethod
    def of_row(cls, project_id: str, row: Mapping[str, Any]) -> StatusChange:
        """The change a settling statement reports in its from_status and to_status columns
        (from_status NULL: the project's first status)."""
        from_status = row["from_status"]
        return cls(
            project_id=project_id,
            from_status=PaymentStatus(from_status) if from_status else None,
            to_status=PaymentStatus(row["to_status"]),
        )


def validate_project_id(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidProjectId("project_id must be a string")
    if not PROJECT_ID.fullmatch(value):
        raise InvalidProjectId(
            "project_id must be 1-64 characters of A-Z, a-z, 0-9, underscore or hyphen"
        )
    return value


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """One transaction on a pooled connection; an unreachable database becomes one error."""
    async with connection(pool) as conn, conn.transaction():
        yield conn


@asynccontextmanager
async def connection(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection for ONE statement, which PostgreSQL runs atomically by itself:
    no BEGIN and COMMIT round trips around it."""
    try:
        async with pool.acquire() as conn:
            yield conn
    except Exception as error:
        if is_unavailable(error):
            raise DatabaseUnavailable("the database is unavailable") from error
        raise


def log_change(change: StatusChange, cause: str) -> None:
    log.info(
        "payment status changed",
        extra={
            "fields": {
                "event": "status_change",
                "project_id": change.project_id,
                "from_status": str(change.from_status) if change.from_status else None,
                "to_status": str(change.to_status),
                "cause": cause,
            }
        },
    )
