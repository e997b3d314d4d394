"""`python -m service migrate`: applies the schema once, however often and however many run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from query_types import FixtureQueries

from devtools.postgres import create_database, drop_database, with_database
from service import db

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def empty_database(owner_database_url: str) -> Iterator[str]:
    name = f"migrate_test_{uuid.uuid4().hex[:10]}"
    admin = with_database(owner_database_url, "postgres")
    url = asyncio.run(create_database(admin, name))
    yield url
    asyncio.run(drop_database(admin, name))


def migrate(url: str) -> subprocess.Popen[str]:
    # migrate needs the database and nothing else: no Stripe variable is set.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("STRIPE_")} | {
        "DATABASE_URL": url,
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "service", "migrate"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_concurrent_migrations_then_a_third_all_succeed(empty_database: str) -> None:
    first, second = migrate(empty_database), migrate(empty_database)
    outputs = [p.communicate(timeout=120) for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    applied = [out for out, _ in outputs]
    assert sum("0001.initial" in out for out in applied) == 1
    assert sum("none pending" in out for out in applied) == 1
    third = migrate(empty_database)
    out, err = third.communicate(timeout=120)
    assert third.returncode == 0, err
    assert "none pending" in out


def test_projects_from_before_the_facts_model_keep_their_status(
    empty_database: str, queries: db.Queries, test_queries: FixtureQueries
) -> None:
    """0001's projects, in every status, are given facts by 0003.facts that derive the same status,
    and a later real event about them still counts (a dispute on a legacy paid project)."""
    from yoyo import get_backend, read_migrations  # noqa: PLC0415 - only this test steps by hand

    from service.db import MIGRATIONS_DIR, yoyo_url  # noqa: PLC0415

    statuses = ["pending", "processing", "paid", "failed", "expired", "refunded", "disputed"]
    with get_backend(yoyo_url(empty_database)) as backend, backend.lock():
        migrations = read_migrations(str(MIGRATIONS_DIR))
        backend.apply_migrations(migrations.filter(lambda m: m.id == "0001.initial"))

    async def seed_then_check() -> None:
        conn = await asyncpg.connect(empty_database)
        try:
            for status in statuses:
                await test_queries.add_project_row(
                    conn,
                    project_id=f"legacy_{status}",
                    status=status,
                    checkout_session_id=f"cs_legacy_{status}",
                    payment_intent_id=f"pi_legacy_{status}",
                )
            await asyncio.to_thread(_apply_all, empty_database)
            for status in statuses:
                derived = await queries.derive_project_payment(conn, project_id=f"legacy_{status}")
                assert derived is not None
                assert derived["status"] == status
            row = await queries.apply_fact(
                conn,
                event_id="evt_legacy_dispute",
                event_type="charge.dispute.created",
                event_created_at=datetime.now(UTC),
                livemode=False,
                received_at=datetime.now(UTC),
                object_kind="dispute",
                object_id="dp_legacy",
                payment_intent_id="pi_legacy_paid",
                state="open",
                stage=1,
                amount=None,
                amount_refunded=None,
                fact_created_at=datetime.now(UTC),
                cause="stripe_event",
                request_id=None,
                actor="stripe",
            )
            assert row is not None
            assert (row["outcome"], row["to_status"]) == ("applied", "disputed")
        finally:
            await conn.close()

    asyncio.run(seed_then_check())


def _apply_all(url: str) -> None:
    from yoyo import get_backend, read_migrations  # noqa: PLC0415

    from service.db import MIGRATIONS_DIR, yoyo_url  # noqa: PLC0415

    with get_backend(yoyo_url(url)) as backend, backend.lock():
        backend.apply_migrations(backend.to_apply(read_migrations(str(MIGRATIONS_DIR))))
