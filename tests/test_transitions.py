"""The event -> status table of SPEC.md, row by row, and nothing outside it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.transitions import HANDLED_TYPES, STATUSES, TABLE, moves_for, next_status

NONE = None
ALL: list[str | None] = [NONE, *sorted(STATUSES)]

# SPEC.md's table, written out independently of service/transitions.py: (event type, the
# object's deciding fields, statuses it moves from, status it moves to).
SPEC_ROWS: list[tuple[str, dict[str, Any], set[str | None], str]] = [
    (
        "checkout.session.completed",
        {"payment_status": "paid"},
        {NONE, "pending", "expired", "failed", "processing"},
        "paid",
    ),
    (
        "checkout.session.completed",
        {"payment_status": "no_payment_required"},
        {NONE, "pending", "expired", "failed", "processing"},
        "paid",
    ),
    (
        "checkout.session.completed",
        {"payment_status": "unpaid"},
        {NONE, "pending", "expired", "failed"},
        "processing",
    ),
    (
        "checkout.session.async_payment_succeeded",
        {},
        {NONE, "pending", "expired", "failed", "processing"},
        "paid",
    ),
    ("checkout.session.async_payment_failed", {}, {"pending", "processing"}, "failed"),
    ("checkout.session.expired", {"id": "cs_current"}, {"pending"}, "expired"),
    (
        "charge.refunded",
        {"amount": 250000, "amount_refunded": 250000},
        {"paid", "disputed"},
        "refunded",
    ),
    ("charge.dispute.created", {}, {"paid"}, "disputed"),
    ("charge.dispute.closed", {"status": "won"}, {"disputed"}, "paid"),
    ("charge.dispute.closed", {"status": "lost"}, {"disputed"}, "refunded"),
]


@pytest.mark.parametrize(("event_type", "obj", "sources", "target"), SPEC_ROWS)
def test_each_row_moves_exactly_its_sources_to_its_target(
    event_type: str, obj: dict[str, Any], sources: set[str | None], target: str
) -> None:
    for current in ALL:
        expected = target if current in sources else None
        assert next_status(event_type, obj, current, "cs_current") == expected, current


def test_the_table_has_no_edge_the_spec_does_not_list() -> None:
    assert len(TABLE) == 9  # completed paid/no_payment_required share one edge
    assert {row[0] for row in SPEC_ROWS} == HANDLED_TYPES


def test_expired_moves_only_the_projects_current_session() -> None:
    obj = {"id": "cs_old"}
    assert next_status("checkout.session.expired", obj, "pending", "cs_new") is None
    assert next_status("checkout.session.expired", obj, "pending", None) is None


@pytest.mark.parametrize(
    "obj",
    [
        {"amount": 250000, "amount_refunded": 100000},
        {"amount": 250000, "amount_refunded": 0},
        {"amount": 250000},
        {"amount": "250000", "amount_refunded": "250000"},
    ],
)
def test_a_partial_or_malformed_refund_changes_nothing(obj: dict[str, Any]) -> None:
    assert next_status("charge.refunded", obj, "paid", None) is None


@pytest.mark.parametrize("status", ["warning_closed", "needs_response", None])
def test_a_dispute_closed_neither_won_nor_lost_changes_nothing(status: str | None) -> None:
    assert next_status("charge.dispute.closed", {"status": status}, "disputed", None) is None


def test_an_unknown_payment_status_changes_nothing() -> None:
    for current in ALL:
        assert (
            next_status("checkout.session.completed", {"payment_status": "x"}, current, None)
            is None
        )


def _allowed(event_type: str, obj: dict[str, Any], current: str | None) -> str | None:
    for row_type, fields, sources, target in SPEC_ROWS:
        if (
            row_type == event_type
            and current in sources
            and all(obj.get(k) == v for k, v in fields.items())
        ):
            return target
    return None


EVENTS = st.sampled_from(SPEC_ROWS).map(lambda row: (row[0], dict(row[1])))
NOISE = st.sampled_from(
    [
        ("charge.refunded", {"amount": 250000, "amount_refunded": 1}),
        ("charge.dispute.closed", {"status": "warning_closed"}),
        ("checkout.session.expired", {"id": "cs_someone_else"}),
        ("customer.created", {}),
        ("checkout.session.completed", {"payment_status": "bogus"}),
    ]
)


@given(st.lists(st.one_of(EVENTS, NOISE), max_size=30))
def test_any_sequence_of_events_only_walks_edges_of_the_table(
    events: list[tuple[str, dict[str, Any]]],
) -> None:
    status: str | None = None
    for event_type, obj in events:
        after = next_status(event_type, obj, status, "cs_current")
        assert after == _allowed(event_type, obj, status)
        if after is not None:
            assert after in STATUSES
            status = after


@given(st.lists(EVENTS, min_size=1, max_size=20))
def test_once_paid_only_a_refund_or_dispute_moves_it(
    events: list[tuple[str, dict[str, Any]]],
) -> None:
    status: str | None = "paid"
    for event_type, obj in events:
        after = next_status(event_type, obj, status, "cs_current")
        if status == "paid" and after is not None:
            assert event_type in {"charge.refunded", "charge.dispute.created"}
        status = after or status


@given(
    event_type=st.sampled_from(sorted(HANDLED_TYPES)),
    obj=st.fixed_dictionaries(
        {},
        optional={
            "id": st.sampled_from(["cs_current", "cs_other", "", 7]),
            "payment_status": st.sampled_from(["paid", "unpaid", "no_payment_required", "x"]),
            "amount": st.sampled_from([0, 250000, 100]),
            "amount_refunded": st.sampled_from([0, 250000, 100]),
            "status": st.sampled_from(["won", "lost", "warning_closed"]),
        },
    ),
    current_session=st.sampled_from([None, "cs_current", "cs_other"]),
)
def test_the_moves_handed_to_sql_decide_as_next_status_does(
    event_type: str, obj: dict[str, Any], current_session: str | None
) -> None:
    """queries/transitions.sql apply-event picks to_if_current_session when the project's
    session equals event_session_id, else to_otherwise: the same answer for every status."""
    moves = moves_for(event_type, obj)
    assert sorted(moves.statuses) == sorted(STATUSES)
    for status, if_current, otherwise in zip(
        moves.statuses, moves.to_if_current_session, moves.to_otherwise, strict=True
    ):
        is_current = current_session is not None and current_session == moves.event_session_id
        chosen = if_current if is_current else otherwise
        assert chosen == next_status(event_type, obj, status, current_session)
