"""The one derivation, stated twice: the database's derive_project_payment() (which every
status change runs) against service/payments/derivation.py (the SPEC's rules in Python),
over every small fact set and over generated larger ones. Neither can drift from the other."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from query_types import FixtureQueries

from service import db
from service.payments.derivation import Derived, StoredFact, derive_project_payment
from service.payments.facts import Fact
from service.payments.model import (
    DisputeState,
    ObjectKind,
    PaymentStatus,
    RefundState,
    SessionState,
)

T0 = datetime(2026, 11, 1, tzinfo=UTC)
SESSIONS = ("cs_A", "cs_B", "cs_c")  # mixed case: ties by session id are byte order
INTENTS = ("pi_1", "pi_2", "pi_3")
# Each session has its own payment intent, as in Stripe; cs_elsewhere is not the project's.
INTENT_OF = dict(zip((*SESSIONS, "cs_elsewhere"), (*INTENTS, "pi_4"), strict=True))


class Database:
    """One connection; each case runs in a transaction that is rolled back."""

    def __init__(self, url: str, queries: db.Queries, test_queries: FixtureQueries) -> None:
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection = self.loop.run_until_complete(asyncpg.connect(url))
        self.queries = queries
        self.test_queries = test_queries

    def derive(
        self, sessions: Sequence[str], current: str | None, facts: Sequence[StoredFact]
    ) -> Derived:
        return self.loop.run_until_complete(self._derive(sessions, current, facts))

    async def _derive(
        self, sessions: Sequence[str], current: str | None, facts: Sequence[StoredFact]
    ) -> Derived:
        suffix = uuid.uuid4().hex[:12]
        project = f"proj_derive_{suffix}"

        def own(object_id: str | None) -> str | None:
            return f"{object_id}_{suffix}" if object_id else None

        transaction = self.conn.transaction()
        await transaction.start()
        try:
            tq, conn = self.test_queries, self.conn
            await tq.add_project_row(
                conn,
                project_id=project,
                status="pending",
                checkout_session_id=own(current),
                payment_intent_id=None,
            )
            for session in sessions:
                await tq.add_checkout_session(conn, session_id=own(session), project_id=project)
            for n, stored in enumerate(facts):
                event_id = f"evt_{suffix}_{n}" if stored.event_id else None
                if event_id:
                    await tq.add_event_row(conn, event_id=event_id)
                fact = stored.fact
                await tq.add_fact(
                    conn,
                    event_id=event_id,
                    object_kind=str(fact.kind),
                    object_id=own(fact.object_id),
                    payment_intent_id=own(fact.payment_intent_id),
                    state=str(fact.state),
                    stage=int(fact.stage),
                    amount=fact.amount,
                    amount_refunded=fact.amount_refunded,
                    stripe_created_at=fact.created,
                )
            row = await self.queries.derive_project_payment(conn, project_id=project)
        finally:
            await transaction.rollback()
        assert row is not None

        def strip(value: str | None) -> str | None:
            return value.removesuffix(f"_{suffix}") if value else None

        return Derived(
            PaymentStatus(row["status"]), strip(row["session_id"]), strip(row["payment_intent_id"])
        )

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


@pytest.fixture(scope="module")
def database(
    database_url: str, queries: db.Queries, test_queries: FixtureQueries
) -> Iterator[Database]:
    database = Database(database_url, queries, test_queries)
    yield database
    database.close()


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def session_fact(session: str, state: SessionState, t: int, pi: str | None = "pi_1") -> Fact:
    return Fact(ObjectKind.SESSION, session, state, at(t), payment_intent_id=pi)


def refund_fact(pi: str, refunded: int, t: int, amount: int = 100) -> Fact:
    return Fact(
        ObjectKind.PAYMENT,
        pi,
        RefundState.REFUNDED,
        at(t),
        payment_intent_id=pi,
        amount=amount,
        amount_refunded=refunded,
    )


def dispute_fact(dispute: str, state: DisputeState, pi: str, t: int) -> Fact:
    return Fact(ObjectKind.DISPUTE, dispute, state, at(t), payment_intent_id=pi)


def check(
    database: Database, sessions: Sequence[str], current: str | None, facts: list[StoredFact]
) -> Derived:
    expected = derive_project_payment(sessions, current, facts)
    assert database.derive(sessions, current, facts) == expected, facts
    return expected


# --- exhaustive: every set of up to three facts about one session and its payment -------

CANDIDATES = [
    *(session_fact("cs_A", state, t) for state in SessionState for t in (1, 2)),
    refund_fact("pi_1", 40, 3),
    refund_fact("pi_1", 100, 3),
    refund_fact("pi_1", 100, 2),
    *(dispute_fact("dp_1", state, "pi_1", t) for state in DisputeState for t in (2, 3)),
    dispute_fact("dp_2", DisputeState.OPEN, "pi_1", 3),
    session_fact("cs_elsewhere", SessionState.PAID, 1),  # a Payment Link's session
]


def test_the_database_and_python_agree_on_every_small_fact_set(database: Database) -> None:
    seen: set[PaymentStatus] = set()
    for size in range(4):
        for combination in itertools.combinations(CANDIDATES, size):
            facts = [StoredFact(fact, "evt") for fact in combination]
            seen.add(check(database, ["cs_A"], "cs_A", facts).status)
    assert seen == set(PaymentStatus)  # every status was reached, so every rule was compared


def test_a_read_of_a_session_yields_to_any_event_about_it(database: Database) -> None:
    read = StoredFact(session_fact("cs_A", SessionState.AWAITING_PAYMENT, 0), None)
    failed = StoredFact(session_fact("cs_A", SessionState.PAYMENT_FAILED, 5), "evt")
    assert check(database, ["cs_A"], "cs_A", [read, failed]).status is PaymentStatus.FAILED
    assert check(database, ["cs_A"], "cs_A", [read]).status is PaymentStatus.PROCESSING


# --- generated: several sessions, payments and disputes, events and reads --------------

session_facts = st.builds(
    lambda session, state, t, named: session_fact(
        session, state, t, INTENT_OF[session] if named else None
    ),
    st.sampled_from(list(INTENT_OF)),
    st.sampled_from(list(SessionState)),
    st.integers(0, 4),
    st.booleans(),
)
event_facts = st.one_of(
    session_facts,
    st.builds(
        refund_fact, st.sampled_from(INTENTS), st.sampled_from((30, 70, 100)), st.integers(0, 4)
    ),
    st.builds(
        dispute_fact,
        st.sampled_from(("dp_1", "dp_2")),
        st.sampled_from(list(DisputeState)),
        st.sampled_from(INTENTS),
        st.integers(0, 4),
    ),
)
# A read of a session from Stripe is dated at the session's creation (t = 0), and stored once.
read_facts = st.builds(
    lambda session, state: session_fact(session, state, 0, INTENT_OF[session]),
    st.sampled_from(list(INTENT_OF)),
    st.sampled_from([SessionState.AWAITING_PAYMENT, SessionState.PAID, SessionState.EXPIRED]),
)
facts_strategy = st.tuples(
    st.lists(event_facts.map(lambda fact: StoredFact(fact, "evt")), max_size=7),
    st.lists(read_facts, max_size=2, unique_by=lambda f: (f.object_id, f.state)).map(
        lambda facts: [StoredFact(fact, None) for fact in facts]
    ),
).map(lambda both: both[0] + both[1])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sessions=st.lists(st.sampled_from(SESSIONS), unique=True, max_size=3),
    current=st.sampled_from((*SESSIONS, None)),
    facts=facts_strategy,
)
def test_the_database_and_python_agree_on_generated_fact_sets(
    database: Database, sessions: list[str], current: str | None, facts: list[StoredFact]
) -> None:
    check(database, sessions, current if current in sessions else None, facts)
