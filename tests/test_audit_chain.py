"""The audit trail's hash chain: computed by the database on every insert, whoever inserts
and however many at once; `audit verify` finds the edit an owner makes with the triggers set
aside and names the row; `audit export` writes the rows as JSON lines an auditor can check."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys

import asyncpg
from helpers import RunDatabase, new_id
from processes import ROOT, run_to_end
from query_types import FixtureQueries


def run_audit(database: RunDatabase, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m service audit …` as an operator runs it: with the app role's URL only."""
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "DATABASE_"))
    } | {"DATABASE_URL": database.app_url, "PYTHONPATH": str(ROOT)}
    return run_to_end([sys.executable, "-m", "service", "audit", *args], environment)


async def add_rows(
    url: str, test_queries: FixtureQueries, count: int, project: str | None = None
) -> list[int]:
    """`count` audit rows of a project (a new one unless named), written as the given role;
    their audit ids."""
    conn = await asyncpg.connect(url)
    try:
        if project is None:
            project = new_id()
            await test_queries.add_test_project(conn, project_id=project)
        return [
            await test_queries.add_test_audit_row(
                conn, project_id=project, to_status="pending", actor=f"key:test-{n}"
            )
            for n in range(count)
        ]
    finally:
        await conn.close()


async def owner_edit(url: str, test_queries: FixtureQueries, edit: str, audit_id: int) -> None:
    """What the issue did as the owner: triggers disabled, a row edited, triggers back on."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await test_queries.disable_audit_triggers(conn)
            await getattr(test_queries, edit)(conn, audit_id=audit_id)
            await test_queries.enable_audit_triggers(conn)
    finally:
        await conn.close()


async def test_audit_verify_finds_the_row_the_owner_edited_with_the_triggers_disabled(
    fresh_database: RunDatabase, test_queries: FixtureQueries
) -> None:
    ids = await add_rows(fresh_database.app_url, test_queries, 5)
    intact = await asyncio.to_thread(run_audit, fresh_database, "verify")
    assert intact.returncode == 0, intact.stderr
    assert "audit trail intact: 5 rows" in intact.stdout

    await owner_edit(fresh_database.owner_url, test_queries, "tamper_audit_row", ids[2])
    broken = await asyncio.to_thread(run_audit, fresh_database, "verify")
    assert broken.returncode == 1, broken.stdout
    assert f"BROKEN at audit_id {ids[2]}" in broken.stderr
    assert "the row was changed" in broken.stderr


async def verified_after(
    database: RunDatabase, test_queries: FixtureQueries, rows: int, edit: str, which: int
) -> tuple[list[int], subprocess.CompletedProcess[str]]:
    """`rows` audit rows, then the owner's `edit` (a statement of tests/queries) of the row at
    index `which`, then `audit verify`: the rows' ids and what it said."""
    ids = await add_rows(database.app_url, test_queries, rows)
    await owner_edit(database.owner_url, test_queries, edit, ids[which])
    return ids, await asyncio.to_thread(run_audit, database, "verify")


async def test_audit_verify_finds_a_row_removed_from_the_middle_or_from_the_end(
    fresh_database: RunDatabase, test_queries: FixtureQueries
) -> None:
    ids, middle = await verified_after(fresh_database, test_queries, 4, "delete_audit_row", 1)
    assert middle.returncode == 1
    assert f"BROKEN at audit_id {ids[2]}" in middle.stderr
    assert "removed" in middle.stderr


async def test_audit_verify_finds_the_last_row_removed(
    fresh_database: RunDatabase, test_queries: FixtureQueries
) -> None:
    _, tail = await verified_after(fresh_database, test_queries, 3, "delete_audit_row", -1)
    assert tail.returncode == 1
    assert "rows were removed from the end" in tail.stderr


async def test_concurrent_writers_as_different_roles_keep_every_chain_unbroken(
    fresh_database: RunDatabase, test_queries: FixtureQueries
) -> None:
    """Twelve writers at once, half of them on one shared project, as two roles."""
    shared = new_id()
    conn = await asyncpg.connect(fresh_database.app_url)
    try:
        await test_queries.add_test_project(conn, project_id=shared)
    finally:
        await conn.close()
    urls = [fresh_database.app_url, fresh_database.owner_url] * 6
    writers = [
        add_rows(url, test_queries, 5, shared if n % 2 else None) for n, url in enumerate(urls)
    ]
    written = await asyncio.gather(*writers)
    verdict = await asyncio.to_thread(run_audit, fresh_database, "verify")
    assert verdict.returncode == 0, verdict.stderr
    assert f"audit trail intact: {sum(len(w) for w in written)} rows" in verdict.stdout


async def test_audit_export_writes_json_lines_whose_hashes_an_auditor_can_recompute(
    fresh_database: RunDatabase, test_queries: FixtureQueries
) -> None:
    ids = await add_rows(fresh_database.app_url, test_queries, 3)
    exported = await asyncio.to_thread(run_audit, fresh_database, "export", "--since", "30d")
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [line["row"]["audit_id"] for line in lines] == ids
    assert [line["row"]["actor"] for line in lines] == ["key:test-0", "key:test-1", "key:test-2"]
    previous = ""
    for line in lines:
        assert line["prev_hash"] == previous
        digest = hashlib.sha256(bytes.fromhex(previous) + line["hashed"].encode()).hexdigest()
        assert line["row_hash"] == digest
        assert json.loads(line["hashed"]) == line["row"]
        previous = digest
    none_recent = await asyncio.to_thread(run_audit, fresh_database, "export", "--since", "0d")
    assert none_recent.returncode == 2
    assert "--since" in none_recent.stderr
