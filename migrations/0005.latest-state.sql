-- Each Stripe object's latest state in one row (issue 10's speed): the same rules, read from
-- one row per object instead of aggregated over all its facts on every webhook.
--
-- 1. stripe_objects: one row per Stripe object any fact told about (a session, a payment
--    intent's refunds, a dispute), holding what the derivation needs of its facts: the latest
--    state (the fact Stripe created last, the later stage on a tie), the earliest times that
--    matter (first fact; first paid fact, from an event or at all) and the payment intent.
--    record_stripe_fact() folds one fact into it. The fold is commutative and idempotent (the
--    latest of two is the latest whichever comes first, a minimum is a minimum), so the row is
--    the same whatever order and however often the facts arrive: the order-independence of the
--    SPEC now rests on this one statement.
-- 2. The fact an event contributed moves into its own stripe_events row (object_kind,
--    object_id, payment_intent_id, state, stage, amount, amount_refunded; its created time is
--    the event's), as the SPEC's "the event record keeps the fact it contributed" puts it:
--    one row written per webhook instead of two, and stripe_objects can be rebuilt from them.
--    stripe_facts keeps the reads of sessions from Stripe (success page, checkout, reconcile),
--    once per session and state, as before.
-- 3. The derivation (session_payment_statuses) reads the objects; settle_project_status writes
--    the status, its audit row and the payment intent in one statement, and apply_stripe_fact
--    shrinks from about fifteen statements to six, the event row still written last and once.
-- 4. projects_payment_intent_id_idx goes: since 0003 nothing finds a project by its payment
--    intent (the objects do), and without it settling a status is a HOT update.
-- depends: 0004.fewer-writes

CREATE TABLE stripe_objects (
    -- Which object: its id, and for a dispute its id and payment intent. (Stripe never gives
    -- two payments one dispute id; keyed by both, a dispute id reused by test data or a
    -- stand-in still counts once per payment, as each fact did before.)
    object_key        text PRIMARY KEY,
    -- cs_… for a session, pi_… for a payment's refunds, dp_… for a dispute.
    object_id         text NOT NULL,
    object_kind       text NOT NULL CHECK (object_kind IN ('session', 'payment', 'dispute')),
    -- The payment intent its facts named (for a session, the smallest if they differed): how
    -- refunds and disputes reach a session, and a session's payment reaches its project.
    payment_intent_id text,
    -- Its latest state, and what decides which state is latest: Stripe's created time, then
    -- the stage (paid or failed after awaiting, closed after open), then for refunds the
    -- larger cumulative amount refunded.
    state             text NOT NULL,
    stage             smallint NOT NULL,
    state_at          timestamptz NOT NULL,
    -- A payment's charge amount and cumulative amount refunded, from its latest refund fact.
    amount            bigint,
    amount_refunded   bigint,
    -- When Stripe created its first fact: a refund or dispute proves its payment happened.
    first_at          timestamptz NOT NULL,
    -- A session: when Stripe created its first paid fact, from an event (paid_event_at) or
    -- from an event or a read (paid_at); the kept payment is the one paid first.
    paid_at           timestamptz,
    paid_event_at     timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (
        (object_kind = 'session' AND state IN ('awaiting_payment', 'paid', 'payment_failed',
                                               'expired'))
        OR (object_kind = 'payment' AND state = 'refunded' AND amount IS NOT NULL
            AND amount_refunded IS NOT NULL AND payment_intent_id = object_id)
        OR (object_kind = 'dispute' AND state IN ('open', 'won', 'lost')
            AND payment_intent_id IS NOT NULL)
    )
);

-- A payment intent's refunds and disputes, and the session that names it.
CREATE INDEX stripe_objects_payment_intent_id_idx ON stripe_objects (payment_intent_id)
    WHERE payment_intent_id IS NOT NULL;

-- Folds one fact into its object's row (from_event: told by an event, not read from Stripe)
-- and returns the object's latest state. The one place that decides which of an object's facts
-- is its latest.
CREATE FUNCTION record_stripe_fact(
    p_from_event boolean, p_object_kind text, p_object_id text, p_payment_intent_id text,
    p_state text, p_stage smallint, p_amount bigint, p_amount_refunded bigint,
    p_created_at timestamptz)
RETURNS text
-- plpgsql, not sql: it keeps its plan from one call to the next (a sql function's is made
-- again on every call, which cost the webhook more than the insert itself).
LANGUAGE plpgsql
AS $$
DECLARE
    v_state text;
BEGIN
INSERT INTO stripe_objects AS o (object_key, object_id, object_kind, payment_intent_id, state,
                                 stage, state_at, amount, amount_refunded, first_at, paid_at,
                                 paid_event_at)
VALUES (CASE WHEN p_object_kind = 'dispute' THEN p_object_id || ' ' || p_payment_intent_id
             ELSE p_object_id END,
        p_object_id, p_object_kind, p_payment_intent_id, p_state, p_stage, p_created_at,
        p_amount, p_amount_refunded, p_created_at,
        CASE WHEN p_state = 'paid' THEN p_created_at END,
        CASE WHEN p_state = 'paid' AND p_from_event THEN p_created_at END)
ON CONFLICT ON CONSTRAINT stripe_objects_pkey DO UPDATE
   SET (state, stage, state_at, amount, amount_refunded) = (
           -- The later of the two: created last; on a tie the later stage; for refunds the
           -- larger cumulative refund (then charge amount); last, the state's name as bytes,
           -- so that even a tie of equals has one answer.
           SELECT v.state, v.stage, v.state_at, v.amount, v.amount_refunded
             FROM (VALUES (o.state, o.stage, o.state_at, o.amount, o.amount_refunded),
                          (excluded.state, excluded.stage, excluded.state_at, excluded.amount,
                           excluded.amount_refunded))
                  AS v (state, stage, state_at, amount, amount_refunded)
            ORDER BY v.state_at DESC, v.stage DESC, v.amount_refunded DESC NULLS LAST,
                     v.amount DESC NULLS LAST, v.state COLLATE "C" DESC
            LIMIT 1),
       -- least() skips NULLs: the earliest of what is known.
       payment_intent_id = least(o.payment_intent_id COLLATE "C",
                                 excluded.payment_intent_id COLLATE "C"),
       first_at = least(o.first_at, excluded.first_at),
       paid_at = least(o.paid_at, excluded.paid_at),
       paid_event_at = least(o.paid_event_at, excluded.paid_event_at),
       updated_at = now()
RETURNING o.state INTO v_state;
RETURN v_state;
END;
$$;

-- The fact each event contributed, in its own row (NULL: it told none).
ALTER TABLE stripe_events
    ADD COLUMN object_kind       text,
    ADD COLUMN object_id         text,
    ADD COLUMN payment_intent_id text,
    ADD COLUMN state             text,
    ADD COLUMN stage             smallint,
    ADD COLUMN amount            bigint,
    ADD COLUMN amount_refunded   bigint,
    ADD CONSTRAINT stripe_events_fact_check CHECK (
        (object_kind IS NULL AND object_id IS NULL AND state IS NULL)
        OR (object_kind IN ('session', 'payment', 'dispute') AND object_id IS NOT NULL
            AND state IS NOT NULL AND stage IS NOT NULL)
    );

UPDATE stripe_events e
   SET object_kind = f.object_kind, object_id = f.object_id,
       payment_intent_id = f.payment_intent_id, state = f.state, stage = f.stage,
       amount = f.amount, amount_refunded = f.amount_refunded
  FROM stripe_facts f
 WHERE f.event_id = e.event_id;

-- Every fact so far, events' and reads', folded into the objects (in any order: the fold
-- does not care).
SELECT count(record_stripe_fact(f.event_id IS NOT NULL, f.object_kind, f.object_id,
                          f.payment_intent_id, f.state, f.stage, f.amount, f.amount_refunded,
                          f.stripe_created_at))
  FROM stripe_facts f;

-- stripe_facts keeps the reads only (event_id NULL): the events' facts are in their rows now.
DELETE FROM stripe_facts WHERE event_id IS NOT NULL;
ALTER TABLE stripe_facts DROP COLUMN event_id;  -- and its foreign key and read-once index
DROP INDEX stripe_facts_object_id_idx;
DROP INDEX stripe_facts_payment_intent_id_idx;
-- A read of a session from Stripe says the same thing each time it is repeated: kept once.
CREATE UNIQUE INDEX stripe_facts_read_once_idx ON stripe_facts (object_id, state);

DROP INDEX projects_payment_intent_id_idx;
-- Nothing the service runs finds events by project or by time (reconcile asks Stripe for the
-- window and looks each id up by primary key); kept up to date on every webhook, they cost it
-- two index entries each. An operator who wants one back: CREATE INDEX CONCURRENTLY.
DROP INDEX stripe_events_project_id_idx;
DROP INDEX stripe_events_stripe_created_at_idx;

-- THE derivation, first step (the rules are 0003.facts's, unchanged): each of the project's
-- sessions with its status, its payment intent and when Stripe created its paid fact (paid_at;
-- paid_event_at when an event, not a read, told it). One row of stripe_objects per session,
-- and one index scan for its payment's refunds and disputes.
CREATE OR REPLACE FUNCTION session_payment_statuses(p_project_id text)
RETURNS TABLE (session_id text, status text, payment_intent_id text, paid_at timestamptz,
               paid_event_at timestamptz)
LANGUAGE sql STABLE
AS $$
SELECT cs.session_id,
       CASE
           WHEN money.fully_refunded OR money.dispute_lost THEN 'refunded'
           WHEN money.dispute_open THEN 'disputed'
           WHEN s.state = 'paid' OR money.proof_at IS NOT NULL THEN 'paid'
           WHEN s.state = 'payment_failed' THEN 'failed'
           WHEN s.state = 'awaiting_payment' THEN 'processing'
           WHEN s.state = 'expired' THEN 'expired'
           ELSE 'pending'
       END,
       s.payment_intent_id,
       coalesce(s.paid_event_at, money.proof_at, s.paid_at),
       s.paid_event_at
  FROM checkout_sessions cs
  -- Its own row, by primary key. (LIMIT 1 keeps this a lookup per session: planned as a join,
  -- a database not analyzed yet takes a project for one with hundreds of sessions and
  -- scans every object instead.)
  LEFT JOIN LATERAL (
      SELECT o.state, o.payment_intent_id, o.paid_at, o.paid_event_at
        FROM stripe_objects o
       WHERE o.object_key = cs.session_id AND o.object_kind = 'session'
       LIMIT 1) s ON true
  -- Its payment's latest refund state and each dispute's latest state; the first of their
  -- facts proves the payment happened even before its own event.
  LEFT JOIN LATERAL (
      SELECT coalesce(bool_or(o.amount_refunded >= o.amount)
                          FILTER (WHERE o.object_kind = 'payment'), false) AS fully_refunded,
             coalesce(bool_or(o.state = 'lost') FILTER (WHERE o.object_kind = 'dispute'),
                      false) AS dispute_lost,
             coalesce(bool_or(o.state = 'open') FILTER (WHERE o.object_kind = 'dispute'),
                      false) AS dispute_open,
             min(o.first_at) AS proof_at
        FROM stripe_objects o
       WHERE o.payment_intent_id = s.payment_intent_id
         AND o.object_kind IN ('payment', 'dispute')) money ON true
 WHERE cs.project_id = p_project_id;
$$;

-- THE derivation, second step (0003.facts's rules, unchanged): the project's status, the
-- session it comes from and that session's payment intent, and how many of its sessions hold
-- money (more than one: duplicates). The first of the SPEC's rules that holds, as one sort of
-- the project's few sessions (0003 ran a subquery per rule):
--   1. money held: the kept payment's session, whose paid fact Stripe created first;
--   2. a delayed payment on its way;
--   3. the current session (the one the latest checkout made or reused);
--   3'. a project the service never checked out: its only session (the first by id);
--   and pending when it has no session at all.
CREATE OR REPLACE FUNCTION derive_project_payment(p_project_id text)
RETURNS TABLE (status text, session_id text, payment_intent_id text, holding bigint)
LANGUAGE sql STABLE
AS $$
SELECT r.status, r.session_id, r.payment_intent_id, r.holding
  FROM (
      SELECT st.status, st.session_id, st.payment_intent_id, st.paid_at,
             count(*) FILTER (WHERE st.status IN ('paid', 'disputed')) OVER () AS holding,
             CASE WHEN st.status IN ('paid', 'disputed') THEN 1
                  WHEN st.status = 'processing' THEN 2
                  WHEN st.session_id = (SELECT p.checkout_session_id FROM projects p
                                         WHERE p.project_id = p_project_id) THEN 3
                  ELSE 4
             END AS rule
        FROM session_payment_statuses(p_project_id) st
      UNION ALL
      SELECT 'pending', NULL, NULL, NULL, 0, 5
  ) r
 ORDER BY r.rule, CASE WHEN r.rule = 1 THEN r.paid_at END, r.session_id COLLATE "C"
 LIMIT 1;
$$;

-- Every other session of the project that holds money is a duplicate of the kept payment
-- (session p_kept, the project now p_status): its full refund becomes owed (stripe_actions, once
-- per payment intent) with an audit row of cause duplicate_payment. A duplicate is only named
-- once both its own payment and the kept one are known from Stripe's events (a read of a
-- session, or a refund or dispute standing in for its payment, dates it only roughly), so the
-- same payment is kept whatever the order. Returns how many refunds became owed. Called only
-- when more than one session holds money (planned with every audit insert, this statement
-- cost every webhook more than the rest of its work).
CREATE FUNCTION owe_duplicate_refunds(p_project_id text, p_kept text, p_status text,
                                      p_cause_event_id text, p_request_id text, p_actor text)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_owed integer;
BEGIN
    WITH duplicates AS (
        SELECT s.payment_intent_id
          FROM session_payment_statuses(p_project_id) s
         WHERE s.status IN ('paid', 'disputed')
           AND s.session_id <> p_kept
           AND s.payment_intent_id IS NOT NULL
           AND s.paid_event_at IS NOT NULL
           AND EXISTS (SELECT 1 FROM session_payment_statuses(p_project_id) k
                        WHERE k.session_id = p_kept AND k.paid_event_at IS NOT NULL)
    ), owed AS (
        INSERT INTO stripe_actions (kind, object_id, project_id, idempotency_key)
        SELECT 'refund_duplicate', d.payment_intent_id, p_project_id,
               'refund-duplicate-' || d.payment_intent_id
          FROM duplicates d
        ON CONFLICT (kind, object_id) DO NOTHING
        RETURNING object_id
    ), audited AS (
        INSERT INTO payment_audit (project_id, from_status, to_status, cause, cause_event_id,
                                   request_id, actor, payment_intent_id)
        SELECT p_project_id, p_status, p_status, 'duplicate_payment', p_cause_event_id,
               p_request_id, p_actor, o.object_id
          FROM owed o
        RETURNING 1
    )
    SELECT count(*) INTO v_owed FROM audited;
    RETURN v_owed;
END;
$$;

-- Re-derives a project's status (its row locked by the caller) and, when it changed, stores it
-- with one audit row, in one statement; the payment intent it comes from is kept up to date.
-- Then the duplicates' refunds (owe_duplicate_refunds), after the status change's audit row.
-- Returns the status before and after, and how many actions became owed. The checkout's
-- settle; apply_stripe_fact writes the same way in its own statement, with the event row.
CREATE OR REPLACE FUNCTION settle_project_status(p_project_id text, p_cause text,
                                                 p_cause_event_id text, p_request_id text,
                                                 p_actor text, OUT from_status text,
                                                 OUT to_status text, OUT new_actions integer)
LANGUAGE plpgsql
-- One plan for every project: the statement below is otherwise planned again on every call
-- (PostgreSQL's default for a plan it cannot prove cheaper), which cost as much as running it.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_kept    text;
    v_holding bigint;
BEGIN
    WITH before AS (
        SELECT p.status FROM projects p WHERE p.project_id = p_project_id
    ), derived AS (
        SELECT d.status, d.session_id, d.payment_intent_id, d.holding
          FROM derive_project_payment(p_project_id) d
    ), moved AS (
        UPDATE projects p
           SET status = d.status,
               payment_intent_id = coalesce(d.payment_intent_id, p.payment_intent_id),
               updated_at = CASE WHEN d.status IS DISTINCT FROM p.status THEN now()
                                 ELSE p.updated_at END
          FROM derived d
         WHERE p.project_id = p_project_id
           AND (d.status IS DISTINCT FROM p.status
                OR (d.payment_intent_id IS NOT NULL
                    AND d.payment_intent_id IS DISTINCT FROM p.payment_intent_id))
    ), audited AS (
        INSERT INTO payment_audit (project_id, from_status, to_status, cause, cause_event_id,
                                   request_id, actor)
        SELECT p_project_id, b.status, d.status, p_cause, p_cause_event_id, p_request_id,
               p_actor
          FROM before b, derived d
         WHERE d.status IS DISTINCT FROM b.status
    )
    SELECT b.status, d.status, d.session_id, d.holding
      INTO from_status, to_status, v_kept, v_holding
      FROM derived d LEFT JOIN before b ON true;
    new_actions := 0;
    IF v_holding > 1 THEN
        new_actions := owe_duplicate_refunds(p_project_id, v_kept, to_status, p_cause_event_id,
                                             p_request_id, p_actor);
    END IF;
END;
$$;

-- Records one fact and settles the project it belongs to, in the caller's one statement: the
-- object's lock, the fact folded into its object (once per event id, once per read), the
-- project found and locked, its status settled, and last the event row with its outcome.
-- Whoever stores a fact about, or makes known the owner of, one Stripe object (a session id,
-- a payment intent id) first takes that object's transaction-level advisory lock (key space
-- 4712), so that a fact and the news of whose object it is can never miss each other:
-- whichever commits second sees the first. Every delivery of one event names the same object,
-- so the lock also orders them: the second sees the first's event row and stops (duplicate).
CREATE OR REPLACE FUNCTION apply_stripe_fact(
    p_event_id text, p_event_type text, p_event_created_at timestamptz, p_livemode boolean,
    p_received_at timestamptz, p_object_kind text, p_object_id text,
    p_payment_intent_id text, p_state text, p_stage smallint, p_amount bigint,
    p_amount_refunded bigint, p_fact_created_at timestamptz, p_cause text, p_request_id text,
    p_actor text)
RETURNS TABLE (duplicate boolean, outcome text, project_id text, from_status text,
               to_status text, new_actions integer)
LANGUAGE plpgsql
-- One plan for every call (see settle_project_status).
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_project  text;
    v_from     text;
    v_to       text;
    v_outcome  text;
    v_actions  integer := 0;
    v_state    text;  -- the object's latest state; only the assignment form needs it
    v_kept     text;
    v_holding  bigint;
BEGIN
    -- The object's lock, then its payment intent's, always in that order.
    PERFORM pg_advisory_xact_lock(hashtextextended(p_object_id, 4712)),
            CASE WHEN p_payment_intent_id <> p_object_id
                 THEN pg_advisory_xact_lock(hashtextextended(p_payment_intent_id, 4712)) END;
    IF p_event_id IS NULL THEN
        -- A read of a session from Stripe, kept once per session and state: a repeated read
        -- has nothing new to settle.
        INSERT INTO stripe_facts (object_kind, object_id, payment_intent_id, state, stage,
                                  amount, amount_refunded, stripe_created_at)
        VALUES (p_object_kind, p_object_id, p_payment_intent_id, p_state, p_stage, p_amount,
                p_amount_refunded, p_fact_created_at)
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            RETURN QUERY SELECT false, 'unchanged'::text, NULL::text, NULL::text, NULL::text, 0;
            RETURN;
        END IF;
    ELSIF EXISTS (SELECT 1 FROM stripe_events e
                   WHERE e.event_id = p_event_id AND e.object_id IS NOT NULL) THEN
        -- This event's fact is already recorded: a duplicate. (An event recorded before
        -- 0003.facts has a row without a fact, and counts now.)
        RETURN QUERY SELECT true, 'unchanged'::text, NULL::text, NULL::text, NULL::text, 0;
        RETURN;
    END IF;
    -- The fact, folded into its object. (Calls are assignments: plpgsql evaluates those
    -- without starting a query for them.)
    v_state := record_stripe_fact(p_event_id IS NOT NULL, p_object_kind, p_object_id,
                                  p_payment_intent_id, p_state, p_stage, p_amount,
                                  p_amount_refunded, p_fact_created_at);
    -- Whose fact is it, its project's row locked? A session's: the project the service created
    -- it for. A payment's or a dispute's: the project of the service's session that names its
    -- payment intent.
    IF p_object_kind = 'session' THEN
        SELECT p.project_id INTO v_project
          FROM checkout_sessions cs
          JOIN projects p ON p.project_id = cs.project_id
         WHERE cs.session_id = p_object_id
           FOR UPDATE OF p;
    ELSE
        SELECT p.project_id INTO v_project
          FROM projects p
         WHERE p.project_id = (SELECT cs.project_id
                                 FROM stripe_objects o
                                 JOIN checkout_sessions cs ON cs.session_id = o.object_key
                                WHERE o.object_kind = 'session'
                                  AND o.payment_intent_id = p_payment_intent_id
                                ORDER BY cs.project_id
                                LIMIT 1)
           FOR UPDATE;
    END IF;
    -- Settle and record, in one statement: the status derived again and, when it changed,
    -- written with its audit row (as settle_project_status writes it: the same three steps,
    -- here joined by the event row so that a webhook pays for one statement, not two and a
    -- function call); and last the event row, once, with its fact and outcome. It exists
    -- already only for an event recorded before 0003.facts (without a fact): that row takes
    -- the fact and the outcome. With no project (unattributed) only the event row is written.
    WITH before AS (
        SELECT p.status FROM projects p WHERE p.project_id = v_project
    ), derived AS (
        SELECT d.status, d.session_id, d.payment_intent_id, d.holding
          FROM derive_project_payment(v_project) d
         WHERE v_project IS NOT NULL
    ), moved AS (
        UPDATE projects p
           SET status = d.status,
               payment_intent_id = coalesce(d.payment_intent_id, p.payment_intent_id),
               updated_at = CASE WHEN d.status IS DISTINCT FROM p.status THEN now()
                                 ELSE p.updated_at END
          FROM derived d
         WHERE p.project_id = v_project
           AND (d.status IS DISTINCT FROM p.status
                OR (d.payment_intent_id IS NOT NULL
                    AND d.payment_intent_id IS DISTINCT FROM p.payment_intent_id))
    ), audited AS (
        INSERT INTO payment_audit (project_id, from_status, to_status, cause, cause_event_id,
                                   request_id, actor)
        SELECT v_project, b.status, d.status,
               CASE WHEN p_event_id IS NULL THEN p_cause ELSE 'stripe_event' END, p_event_id,
               p_request_id, p_actor
          FROM before b, derived d
         WHERE d.status IS DISTINCT FROM b.status
    ), settled AS (
        SELECT b.status AS from_status, d.status AS to_status, d.session_id, d.holding,
               CASE WHEN v_project IS NULL THEN 'unattributed'
                    WHEN d.status IS DISTINCT FROM b.status THEN 'applied'
                    ELSE 'unchanged' END AS outcome
          FROM (SELECT 1) one
          LEFT JOIN derived d ON true
          LEFT JOIN before b ON true
    ), recorded AS (
        INSERT INTO stripe_events AS e (event_id, event_type, stripe_created_at, livemode,
                                        project_id, outcome, received_at, applied_at,
                                        object_kind, object_id, payment_intent_id, state,
                                        stage, amount, amount_refunded)
        SELECT p_event_id, p_event_type, p_event_created_at, p_livemode, v_project, s.outcome,
               p_received_at, clock_timestamp(), p_object_kind, p_object_id,
               p_payment_intent_id, p_state, p_stage, p_amount, p_amount_refunded
          FROM settled s
         WHERE p_event_id IS NOT NULL
        ON CONFLICT ON CONSTRAINT stripe_events_pkey DO UPDATE
           SET outcome = excluded.outcome, project_id = excluded.project_id,
               applied_at = excluded.applied_at, object_kind = excluded.object_kind,
               object_id = excluded.object_id, payment_intent_id = excluded.payment_intent_id,
               state = excluded.state, stage = excluded.stage, amount = excluded.amount,
               amount_refunded = excluded.amount_refunded
    )
    SELECT s.from_status, s.to_status, s.session_id, s.holding, s.outcome
      INTO v_from, v_to, v_kept, v_holding, v_outcome
      FROM settled s;
    IF v_holding > 1 THEN
        v_actions := owe_duplicate_refunds(v_project, v_kept, v_to, p_event_id, p_request_id,
                                           p_actor);
    END IF;
    RETURN QUERY SELECT false, v_outcome, v_project, v_from, v_to, v_actions;
END;
$$;
