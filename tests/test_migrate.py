"""`python -m service migrate`: applies the schema once, however often and however many run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.postgres import create_database, drop_database, with_database

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
