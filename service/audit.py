"""The audit trail's hash chain, checked and exported for an auditor.

Each payment_audit row carries row_hash = SHA-256(previous row's row_hash || content), where
the previous row is the project's (one chain per project), content is the row's canonical
jsonb text (every column but row_hash, nulls left out) and a chain's first previous hash is
empty; the database computes it on insert (migration 0002.security).
`verify` recomputes every hash here, in Python, from the rows themselves, so an edit made by
someone who set the append-only triggers aside (the owner, a superuser), or who replaced the
trigger's function, is found and named.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from service.db import Queries

# The session setting the hashed text depends on (timestamptz renders in it).
SERVER_SETTINGS = {"TimeZone": "UTC"}

_DURATION = re.compile(r"^\s*(\d+)\s*([mhd])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def row_hash(previous: bytes, content: str) -> bytes:
    return hashlib.sha256(previous + content.encode("utf-8")).digest()


@dataclass(frozen=True)
class Verdict:
    rows: int
    head: bytes
    broken_at: int | None = None  # the audit_id of the first row that does not hold
    reason: str = ""

    @property
    def intact(self) -> bool:
        return not self.reason

    def line(self) -> str:
        if self.intact:
            return f"audit trail intact: {self.rows} rows, head {self.head.hex() or '-'}"
        where = f" at audit_id {self.broken_at}" if self.broken_at is not None else ""
        return f"audit trail BROKEN{where}: {self.reason}"


async def verify(conn: asyncpg.Connection, queries: Queries) -> Verdict:
    """Walk each project's chain from its first row; the first row that does not hold, or a
    chain that ends before its head says it does, is the verdict."""
    rows = 0
    ends: dict[str, tuple[int, bytes]] = {}  # project -> (last position, last hash) seen
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        async for row in queries.list_audit_chain(conn):
            rows += 1
            seq, previous = ends.get(row["project_id"], (0, b""))
            where = f"project {row['project_id']}, chain position {row['chain_seq']}"
            if row["chain_seq"] != seq + 1:
                return Verdict(
                    rows=rows,
                    head=previous,
                    broken_at=row["audit_id"],
                    reason=f"{where} follows {seq}: rows before it were removed",
                )
            computed = row_hash(previous, row["content"])
            if computed != bytes(row["row_hash"]):
                return Verdict(
                    rows=rows,
                    head=previous,
                    broken_at=row["audit_id"],
                    reason=f"{where}: the stored hash does not match the row's content and the "
                    "previous row's hash: the row was changed",
                )
            ends[row["project_id"]] = (row["chain_seq"], computed)
        heads = [dict(head) async for head in queries.list_audit_heads(conn)]
    for head in heads:
        end = ends.get(head["project_id"], (0, b""))
        if (head["chain_seq"], bytes(head["row_hash"])) != end:
            return Verdict(
                rows=rows,
                head=end[1],
                broken_at=None,
                reason=f"project {head['project_id']}'s chain head is at position "
                f"{head['chain_seq']} but its rows end at {end[0]}: rows were removed from the end",
            )
    digest = hashlib.sha256(b"".join(h for _, (_, h) in sorted(ends.items()))).digest()
    return Verdict(rows=rows, head=digest if ends else b"")


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`30d`, `72h`, `90m` before now -> the time it names; ValueError otherwise."""
    match = _DURATION.match(text)
    if not match or int(match[1]) <= 0:
        raise ValueError("--since takes a duration such as 90m, 72h or 30d")
    return (now or datetime.now(UTC)) - timedelta(**{_UNITS[match[2]]: int(match[1])})


async def export_lines(
    conn: asyncpg.Connection, queries: Queries, since: datetime
) -> AsyncIterator[bytes]:
    """One JSON line per audit row changed since `since`, in chain order: the row, the exact
    text its hash covers, its hash and the previous row's (hex)."""
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        async for row in queries.list_audit_rows_since(conn, since=since):
            line: dict[str, Any] = {
                "project_id": row["project_id"],
                "chain_seq": row["chain_seq"],
                "row": orjson.loads(row["hashed"]),
                "hashed": row["hashed"],
                "row_hash": bytes(row["row_hash"]).hex(),
                "prev_hash": bytes(row["prev_hash"]).hex(),
            }
            yield orjson.dumps(line) + b"\n"
