"""The value domains (migrations/0006.value-domains.sql): each admits exactly its Python enum's
values, and the database still refuses what the CHECKs they replaced refused."""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import Enum

import asyncpg
import pytest
from query_types import FixtureQueries

from service.http.context import AppContext
from service.payments.model import (
    AuditCause,
    DisputeState,
    ObjectKind,
    Outcome,
    PaymentStatus,
    RefundState,
    SessionState,
)


def values(*enums: Iterable[Enum]) -> set[str]:
    return {str(member.value) for enum in enums for member in enum}


# What each domain must admit. DUPLICATE is an answer, never stored (model.Outcome).
EXPECTED = {
    "payment_status": values(PaymentStatus),
    "event_outcome": values(Outcome) - {Outcome.DUPLICATE.value},
    "audit_cause": values(AuditCause),
    "fact_object_kind": values(ObjectKind),
    "fact_state": values(SessionState, DisputeState, RefundState),
}


async def test_each_value_domain_admits_exactly_its_enums_values(
    ctx: AppContext, test_queries: FixtureQueries
) -> None:
    async with ctx.pool.acquire() as conn:
        checks = {
            r["domain"]: r["definition"] async for r in test_queries.value_domain_checks(conn)
        }
    admitted = {domain: set(re.findall(r"'([^']*)'::text", checks[domain])) for domain in EXPECTED}
    assert admitted == EXPECTED
    # The other two keep the rules of the CHECKs they replaced.
    assert "'^[a-z]{3}$'" in checks["currency_code"]
    assert ">= 0" in checks["minor_units"]


async def test_the_database_refuses_a_status_no_enum_has(
    ctx: AppContext, test_queries: FixtureQueries
) -> None:
    async with ctx.pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="payment_status"):
            await test_queries.try_project_status(conn, status="half_paid")


async def test_a_fact_whose_columns_do_not_fit_is_refused_before_anything_is_written(
    ctx: AppContext, test_queries: FixtureQueries
) -> None:
    async with ctx.pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="does not fit"):
            await test_queries.try_fact_that_does_not_fit(conn)
