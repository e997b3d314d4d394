"""`python -m service migrate`: applies the schema once, however often and however many run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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


def test_facts_recorded_before_the_latest_state_rows_derive_the_same_across_0005_and_back(
    empty_database: str, queries: db.Queries, test_queries: FixtureQueries
) -> None:
    """0005.latest-state folds the facts 0003/0004 stored (events' and reads') into one row per
    object: every project derives the status it had, an event recorded before is still a
    duplicate, and its rollback puts the facts back where 0004 reads them. 0006, 0007 and
    0008 on top, and back, change no status either."""
    from yoyo import get_backend, read_migrations  # noqa: PLC0415 - only this test steps by hand

    from service.db import MIGRATIONS_DIR, yoyo_url  # noqa: PLC0415

    def step(ids: set[str], *, rollback: bool = False) -> None:
        with get_backend(yoyo_url(empty_database)) as backend, backend.lock():
            chosen = read_migrations(str(MIGRATIONS_DIR)).filter(lambda m: m.id in ids)
            if rollback:
                backend.rollback_migrations(chosen)
            else:
                backend.apply_migrations(backend.to_apply(chosen))

    before_0005 = {"0001.initial", "0002.security", "0003.facts", "0004.fewer-writes"}
    step(before_0005)
    t0 = datetime(2026, 11, 1, tzinfo=UTC)

    # (project, [(event id or None for a read, kind, object, payment intent, state, stage,
    #   amount, refunded, seconds after t0)]), delivered in the order listed.
    lifecycles: list[
        tuple[
            str,
            list[tuple[str | None, str, str, str | None, str, int, int | None, int | None, int]],
        ]
    ] = [
        ("m_paid", [("evt_m1", "session", "cs_m_paid", "pi_m_paid", "paid", 2, None, None, 1)]),
        (
            "m_refund_first",
            [
                ("evt_m2", "payment", "pi_m_rf", "pi_m_rf", "refunded", 0, 500, 500, 9),
                ("evt_m3", "session", "cs_m_refund_first", "pi_m_rf", "paid", 2, None, None, 1),
            ],
        ),
        (
            "m_won",
            [
                ("evt_m4", "session", "cs_m_won", "pi_m_won", "paid", 2, None, None, 1),
                ("evt_m5", "dispute", "dp_m_won", "pi_m_won", "won", 2, None, None, 9),
                ("evt_m6", "dispute", "dp_m_won", "pi_m_won", "open", 1, None, None, 5),
            ],
        ),
        (
            "m_open",
            [
                ("evt_m7", "session", "cs_m_open", "pi_m_open", "paid", 2, None, None, 1),
                ("evt_m8", "dispute", "dp_m_open", "pi_m_open", "open", 1, None, None, 5),
            ],
        ),
        ("m_read", [(None, "session", "cs_m_read", "pi_m_read", "paid", 2, None, None, 1)]),
        (
            "m_failed",
            [
                ("evt_m9", "session", "cs_m_failed", None, "payment_failed", 2, None, None, 5),
                ("evt_m10", "session", "cs_m_failed", None, "awaiting_payment", 1, None, None, 1),
            ],
        ),
    ]
    expected = {
        "m_paid": "paid",
        "m_refund_first": "refunded",
        "m_won": "paid",
        "m_open": "disputed",
        "m_read": "paid",
        "m_failed": "failed",
    }

    async def apply(conn: asyncpg.Connection, fact: tuple[Any, ...]) -> asyncpg.Record:
        event_id, kind, object_id, intent, state, stage, amount, refunded, seconds = fact
        when = t0 + timedelta(seconds=seconds)
        row = await queries.apply_fact(
            conn,
            event_id=event_id,
            event_type="test" if event_id else None,
            event_created_at=when if event_id else None,
            livemode=False if event_id else None,
            received_at=datetime.now(UTC) if event_id else None,
            object_kind=kind,
            object_id=object_id,
            payment_intent_id=intent,
            state=state,
            stage=stage,
            amount=amount,
            amount_refunded=refunded,
            fact_created_at=when,
            cause="stripe_event" if event_id else "api_confirmation",
            request_id=None,
            actor="stripe",
        )
        assert row is not None
        return row

    async def statuses(conn: asyncpg.Connection) -> dict[str, str]:
        found = {}
        for project in expected:
            derived = await queries.derive_project_payment(conn, project_id=project)
            stored = await test_queries.get_project_row(conn, project_id=project)
            assert derived is not None
            assert stored is not None
            assert derived["status"] == stored["status"]
            found[project] = derived["status"]
        return found

    async def run() -> None:
        conn = await asyncpg.connect(empty_database)
        try:
            for project, facts in lifecycles:
                await test_queries.add_project_row(
                    conn,
                    project_id=project,
                    status="pending",
                    checkout_session_id=f"cs_{project}",
                    payment_intent_id=None,
                )
                await test_queries.add_checkout_session(
                    conn, session_id=f"cs_{project}", project_id=project
                )
                for fact in facts:
                    await apply(conn, fact)
            assert await statuses(conn) == expected
            await asyncio.to_thread(step, {"0005.latest-state"})
            assert await statuses(conn) == expected
            again = await apply(conn, lifecycles[0][1][0])
            assert again["duplicate"] is True
            await asyncio.to_thread(step, {"0005.latest-state"}, rollback=True)
            assert await statuses(conn) == expected
            assert (await apply(conn, lifecycles[2][1][1]))["duplicate"] is True
            await asyncio.to_thread(step, {"0005.latest-state"})
            assert await statuses(conn) == expected
            # 0006.value-domains, 0007.fewer-steps and 0008.checks-once change types, checks and
            # functions, not rows: there and back, one by one, the same statuses, and a known
            # event is known.
            later = ["0006.value-domains", "0007.fewer-steps", "0008.checks-once"]
            for migration in later:
                await asyncio.to_thread(step, {migration})
                assert await statuses(conn) == expected
            for migration in reversed(later):
                await asyncio.to_thread(step, {migration}, rollback=True)
                assert await statuses(conn) == expected
                assert (await apply(conn, lifecycles[3][1][1]))["duplicate"] is True
            for migration in later:
                await asyncio.to_thread(step, {migration})
            assert await statuses(conn) == expected
            # And a new event still counts: the open dispute is lost.
            lost = ("evt_m11", "dispute", "dp_m_open", "pi_m_open", "lost", 2, None, None, 9)
            assert (await apply(conn, lost))["to_status"] == "refunded"
        finally:
            await conn.close()

    asyncio.run(run())
