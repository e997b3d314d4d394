-- Undoes 0005.latest-state: the events' facts go back into stripe_facts, 0003's derivation and
-- settle and 0004's apply_stripe_fact come back, with the indexes they had. Statuses stay as
-- they were last derived; the objects' rows go (they are a fold of the facts).
DROP INDEX stripe_facts_read_once_idx;
ALTER TABLE stripe_facts ADD COLUMN event_id text UNIQUE
    REFERENCES stripe_events (event_id) DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX stripe_facts_object_id_idx ON stripe_facts (object_id);
CREATE INDEX stripe_facts_payment_intent_id_idx ON stripe_facts (payment_intent_id)
    WHERE payment_intent_id IS NOT NULL;
CREATE UNIQUE INDEX stripe_facts_read_once_idx ON stripe_facts (object_id, state)
    WHERE event_id IS NULL;
-- After the indexes: the rows' deferred foreign-key checks would forbid creating them.
INSERT INTO stripe_facts (event_id, object_kind, object_id, payment_intent_id, state, stage,
                          amount, amount_refunded, stripe_created_at)
SELECT e.event_id, e.object_kind, e.object_id, e.payment_intent_id, e.state, e.stage, e.amount,
       e.amount_refunded, e.stripe_created_at
  FROM stripe_events e
 WHERE e.object_kind IS NOT NULL;

CREATE INDEX projects_payment_intent_id_idx ON projects (payment_intent_id)
    WHERE payment_intent_id IS NOT NULL;
CREATE INDEX stripe_events_project_id_idx ON stripe_events (project_id)
    WHERE project_id IS NOT NULL;
CREATE INDEX stripe_events_stripe_created_at_idx ON stripe_events (stripe_created_at);

CREATE OR REPLACE FUNCTION session_payment_statuses(p_project_id text)
RETURNS TABLE (session_id text, status text, payment_intent_id text, paid_at timestamptz,
               paid_event_at timestamptz)
LANGUAGE sql STABLE
AS $$
WITH sessions AS (
    SELECT cs.session_id, own.state, own.payment_intent_id, own.paid_event_at, own.paid_any_at
      FROM checkout_sessions cs
      -- The session's own facts, in one index scan (stripe_facts_object_id_idx).
      LEFT JOIN LATERAL (
          SELECT
              -- Its latest state: the fact Stripe created last, the later stage on a tie.
              (array_agg(f.state ORDER BY f.stripe_created_at DESC, f.stage DESC,
                                          f.state COLLATE "C" DESC))[1] AS state,
              -- (compared as bytes, then back in the column's collation for the indexes)
              min(f.payment_intent_id COLLATE "C") COLLATE "default" AS payment_intent_id,
              -- When Stripe created its paid fact: from events when any, else from a read.
              min(f.stripe_created_at) FILTER (WHERE f.state = 'paid' AND f.event_id IS NOT NULL)
                  AS paid_event_at,
              min(f.stripe_created_at) FILTER (WHERE f.state = 'paid') AS paid_any_at
            FROM stripe_facts f
           WHERE f.object_kind = 'session' AND f.object_id = cs.session_id) own ON true
     WHERE cs.project_id = p_project_id
), with_payment AS (
    SELECT s.*,
           coalesce(money.fully_refunded, false) AS fully_refunded,
           coalesce(disputes.any_lost, false) AS dispute_lost,
           coalesce(disputes.any_open, false) AS dispute_open,
           money.proof_at
      FROM sessions s
      -- Its payment's refunds and disputes, in one index scan (stripe_facts_payment_intent_id_idx):
      -- the latest refund state (the largest cumulative amount at the latest time), and the
      -- first of them, which proves the payment happened even before its own event.
      LEFT JOIN LATERAL (
          SELECT (array_agg(f.amount_refunded >= f.amount
                            ORDER BY f.stripe_created_at DESC, f.amount_refunded DESC,
                                     f.amount DESC)
                      FILTER (WHERE f.object_kind = 'payment'))[1] AS fully_refunded,
                 min(f.stripe_created_at) AS proof_at
            FROM stripe_facts f
           WHERE f.payment_intent_id = s.payment_intent_id
             AND f.object_kind IN ('payment', 'dispute')) money ON true
      -- Each dispute on the payment at its latest state.
      LEFT JOIN LATERAL (
          SELECT bool_or(d.state = 'lost') AS any_lost, bool_or(d.state = 'open') AS any_open
            FROM (SELECT (array_agg(f.state ORDER BY f.stripe_created_at DESC, f.stage DESC,
                                                    f.state COLLATE "C" DESC))[1] AS state
                    FROM stripe_facts f
                   WHERE f.object_kind = 'dispute' AND f.payment_intent_id = s.payment_intent_id
                   GROUP BY f.object_id) d) disputes ON true
)
    SELECT w.session_id,
           CASE
               WHEN w.fully_refunded OR w.dispute_lost THEN 'refunded'
               WHEN w.dispute_open THEN 'disputed'
               WHEN w.state = 'paid' OR w.proof_at IS NOT NULL THEN 'paid'
               WHEN w.state = 'payment_failed' THEN 'failed'
               WHEN w.state = 'awaiting_payment' THEN 'processing'
               WHEN w.state = 'expired' THEN 'expired'
               ELSE 'pending'
           END AS status,
           w.payment_intent_id,
           coalesce(w.paid_event_at, w.proof_at, w.paid_any_at) AS paid_at,
           w.paid_event_at
      FROM with_payment w;
$$;

CREATE OR REPLACE FUNCTION derive_project_payment(p_project_id text)
RETURNS TABLE (status text, session_id text, payment_intent_id text, holding bigint)
LANGUAGE sql STABLE
AS $$
WITH statuses AS (
    SELECT * FROM session_payment_statuses(p_project_id)
)
SELECT r.status, r.session_id, r.payment_intent_id,
       (SELECT count(*) FROM statuses st WHERE st.status IN ('paid', 'disputed')) AS holding
  FROM (
      -- 1. Money held: the kept payment's session, whose paid fact Stripe created first.
      (SELECT st.status, st.session_id, st.payment_intent_id, 1 AS rule
         FROM statuses st
        WHERE st.status IN ('paid', 'disputed')
        ORDER BY st.paid_at, st.session_id COLLATE "C"
        LIMIT 1)
      UNION ALL
      -- 2. A delayed payment on its way.
      (SELECT st.status, st.session_id, st.payment_intent_id, 2
         FROM statuses st
        WHERE st.status = 'processing'
        ORDER BY st.session_id COLLATE "C"
        LIMIT 1)
      UNION ALL
      -- 3. The current session (the one the latest checkout made or reused).
      (SELECT st.status, st.session_id, st.payment_intent_id, 3
         FROM statuses st
         JOIN projects p ON p.checkout_session_id = st.session_id
        WHERE p.project_id = p_project_id)
      UNION ALL
      -- 3'. A project the service never checked out: its only session.
      (SELECT st.status, st.session_id, st.payment_intent_id, 4
         FROM statuses st
        ORDER BY st.session_id COLLATE "C"
        LIMIT 1)
      UNION ALL
      SELECT 'pending', NULL, NULL, 5
  ) r
 ORDER BY r.rule
 LIMIT 1;
$$;

CREATE OR REPLACE FUNCTION settle_project_status(p_project_id text, p_cause text, p_cause_event_id text,
                                      p_request_id text, p_actor text,
                                      OUT from_status text, OUT to_status text,
                                      OUT new_actions integer)
LANGUAGE plpgsql
AS $$
DECLARE
    v_payment_intent text;
    v_kept           text;
    v_holding        bigint;
BEGIN
    SELECT p.status INTO from_status FROM projects p WHERE p.project_id = p_project_id;
    SELECT d.status, d.payment_intent_id, d.session_id, d.holding
      INTO to_status, v_payment_intent, v_kept, v_holding
      FROM derive_project_payment(p_project_id) d;
    IF to_status IS DISTINCT FROM from_status THEN
        UPDATE projects
           SET status = to_status,
               payment_intent_id = coalesce(v_payment_intent, projects.payment_intent_id),
               updated_at = now()
         WHERE project_id = p_project_id;
    ELSIF v_payment_intent IS NOT NULL THEN
        UPDATE projects SET payment_intent_id = v_payment_intent
         WHERE project_id = p_project_id
           AND payment_intent_id IS DISTINCT FROM v_payment_intent;
    END IF;
    new_actions := 0;
    -- The common case, one payment (or none), writes its audit row alone; the statement that
    -- looks for duplicates is kept for when more than one session holds money (planned as
    -- one, it cost every webhook more than the rest of its work).
    IF v_holding > 1 THEN
        WITH duplicates AS (
            SELECT s.payment_intent_id
              FROM session_payment_statuses(p_project_id) s
             WHERE s.status IN ('paid', 'disputed')
               AND s.session_id <> v_kept
               AND s.payment_intent_id IS NOT NULL
               AND s.paid_event_at IS NOT NULL
               AND EXISTS (SELECT 1 FROM session_payment_statuses(p_project_id) k
                            WHERE k.session_id = v_kept AND k.paid_event_at IS NOT NULL)
        ), owed AS (
            INSERT INTO stripe_actions (kind, object_id, project_id, idempotency_key)
            SELECT 'refund_duplicate', d.payment_intent_id, p_project_id,
                   'refund-duplicate-' || d.payment_intent_id
              FROM duplicates d
            ON CONFLICT (kind, object_id) DO NOTHING
            RETURNING object_id
        ), audited AS (
            -- Last: the audit insert's trigger takes the project's chain head, held to commit.
            INSERT INTO payment_audit (project_id, from_status, to_status, cause, cause_event_id,
                                       request_id, actor, payment_intent_id)
            SELECT p_project_id, from_status, to_status, p_cause, p_cause_event_id, p_request_id,
                   p_actor, NULL
             WHERE to_status IS DISTINCT FROM from_status
            UNION ALL
            SELECT p_project_id, to_status, to_status, 'duplicate_payment', p_cause_event_id,
                   p_request_id, p_actor, o.object_id
              FROM owed o
            RETURNING cause
        )
        SELECT count(*) FILTER (WHERE cause = 'duplicate_payment') INTO new_actions FROM audited;
    ELSIF to_status IS DISTINCT FROM from_status THEN
        -- Last: the audit insert's trigger takes the project's chain head, held to commit.
        INSERT INTO payment_audit (project_id, from_status, to_status, cause, cause_event_id,
                                   request_id, actor)
        VALUES (p_project_id, from_status, to_status, p_cause, p_cause_event_id, p_request_id,
                p_actor);
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION apply_stripe_fact(
    p_event_id text, p_event_type text, p_event_created_at timestamptz, p_livemode boolean,
    p_received_at timestamptz, p_object_kind text, p_object_id text,
    p_payment_intent_id text, p_state text, p_stage smallint, p_amount bigint,
    p_amount_refunded bigint, p_fact_created_at timestamptz, p_cause text, p_request_id text,
    p_actor text)
RETURNS TABLE (duplicate boolean, outcome text, project_id text, from_status text,
               to_status text, new_actions integer)
LANGUAGE plpgsql
AS $$
DECLARE
    v_project  text;
    v_from     text;
    v_to       text;
    v_outcome  text;
    v_actions  integer := 0;
BEGIN
    -- The object's lock, then its payment intent's, always in that order (see 0003.facts).
    PERFORM pg_advisory_xact_lock(hashtextextended(p_object_id, 4712));
    IF p_payment_intent_id IS NOT NULL AND p_payment_intent_id <> p_object_id THEN
        PERFORM pg_advisory_xact_lock(hashtextextended(p_payment_intent_id, 4712));
    END IF;
    INSERT INTO stripe_facts (event_id, object_kind, object_id, payment_intent_id, state, stage,
                              amount, amount_refunded, stripe_created_at)
    VALUES (p_event_id, p_object_kind, p_object_id, p_payment_intent_id, p_state, p_stage,
            p_amount, p_amount_refunded, p_fact_created_at)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        -- This event's fact (or this very read) is already stored: a duplicate. A concurrent
        -- delivery of the same event id waits on stripe_facts' unique event_id until the
        -- first one commits, then lands here.
        RETURN QUERY SELECT p_event_id IS NOT NULL, 'unchanged'::text, NULL::text, NULL::text,
                            NULL::text, 0;
        RETURN;
    END IF;
    -- Whose fact is it? A session's: the project the service created it for. A payment's or a
    -- dispute's: the project of the service's session that names its payment intent.
    IF p_object_kind = 'session' THEN
        SELECT cs.project_id INTO v_project
          FROM checkout_sessions cs WHERE cs.session_id = p_object_id;
    ELSE
        SELECT cs.project_id INTO v_project
          FROM stripe_facts f
          JOIN checkout_sessions cs ON cs.session_id = f.object_id
         WHERE f.object_kind = 'session' AND f.payment_intent_id = p_payment_intent_id
         ORDER BY cs.project_id
         LIMIT 1;
    END IF;
    IF v_project IS NULL THEN
        v_outcome := 'unattributed';
    ELSE
        PERFORM 1 FROM projects p WHERE p.project_id = v_project FOR UPDATE;
        SELECT s.from_status, s.to_status, s.new_actions INTO v_from, v_to, v_actions
          FROM settle_project_status(
                   v_project,
                   CASE WHEN p_event_id IS NULL THEN p_cause ELSE 'stripe_event' END,
                   p_event_id, p_request_id, p_actor) s;
        v_outcome := CASE WHEN v_to IS DISTINCT FROM v_from THEN 'applied' ELSE 'unchanged' END;
    END IF;
    -- The event row, once, with its outcome. It exists already only for an event recorded
    -- before 0003.facts (which stored no fact of it): its row takes the new outcome.
    IF p_event_id IS NOT NULL THEN
        INSERT INTO stripe_events AS e (event_id, event_type, stripe_created_at, livemode,
                                   project_id, outcome, received_at, applied_at)
        VALUES (p_event_id, p_event_type, p_event_created_at, p_livemode, v_project, v_outcome,
                p_received_at, clock_timestamp())
        ON CONFLICT ON CONSTRAINT stripe_events_pkey DO UPDATE
           SET outcome = excluded.outcome, project_id = excluded.project_id,
               applied_at = excluded.applied_at;
    END IF;
    RETURN QUERY SELECT false, v_outcome, v_project, v_from, v_to, v_actions;
END;
$$;

DROP FUNCTION owe_duplicate_refunds(text, text, text, text, text, text);
DROP FUNCTION record_stripe_fact(boolean, text, text, text, text, smallint, bigint, bigint,
                                 timestamptz);
DROP TABLE stripe_objects;
ALTER TABLE stripe_events
    DROP CONSTRAINT stripe_events_fact_check,
    DROP COLUMN object_kind,
    DROP COLUMN object_id,
    DROP COLUMN payment_intent_id,
    DROP COLUMN state,
    DROP COLUMN stage,
    DROP COLUMN amount,
    DROP COLUMN amount_refunded;
