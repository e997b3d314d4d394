"""The value domains (migrations/0006.value-domains.sql, 0008.checks-once.sql): each admits
exactly its Python enum's values, and the database still refuses what the CHECKs they replaced
refused, as does the audit trigger that took over the audit row's CHECK (0008)."""

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
    # The others keep the rules of the CHECKs they replaced.
    assert "'^[a-z]{3}$'" in checks["currency_code"]
    assert ">= 0" in checks["minor_units"]
    assert "'^[A-Za-z0-9_-]{1,64}$'" in checks["project_key"]


async def test_the_database_refuses_a_status_no_enum_has(
    ctx: AppContext, test_queries: FixtureQueries
) -> None:
    async with ctx.pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="payment_status"):
            await test_queries.try_project(conn, project_id="domain-check", status="half_paid")


async def test_a_fact_whose_columns_do_not_fit_is_refused_before_anything_is_written(
    ctx: AppContext, test_queries: FixtureQueries
) -> None:
    async with ctx.pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="does not fit"):
            await test_queries.try_fact_that_does_not_fit(conn)


@pytest.mark.parametrize("project_id", ["", "x" * 65, "has space", "semi;colon", "ünicode"])
async def test_the_database_refuses_a_project_id_outside_the_pattern(
    ctx: AppContext, test_queries: FixtureQueries, project_id: str
) -> None:
    async with ctx.pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="project_key"):
            await test_queries.try_project(conn, project_id=project_id, status="pending")


@pytest.mark.parametrize(
    ("cause", "cause_event_id"),
    [("stripe_event", None), ("api_checkout", "evt_x"), ("api_confirmation", "evt_x")],
)
async def test_an_audit_row_whose_cause_and_event_do_not_fit_is_refused(
    ctx: AppContext, test_queries: FixtureQueries, cause: str, cause_event_id: str | None
) -> None:
    async with ctx.pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError) as refused:
            await test_queries.try_audit_row(
                conn, project_id="audit-rule", cause=cause, cause_event_id=cause_event_id
            )
    assert refused.value.constraint_name == "payment_audit_cause_event_check"
    assert refused.value.table_name == "payment_audit"
