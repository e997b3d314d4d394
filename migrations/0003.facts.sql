-- The payment status as a function of Stripe's facts (SPEC "POST /webhooks/stripe").
--
-- Before: each event moved the project's status along an edge chosen by the status it found,
-- so the order of delivery decided the result. After: every event (and every read of a
-- session from Stripe) stores the FACT it tells about one Stripe object, and the project's
-- status is DERIVED from the latest fact of each object by one function,
-- derive_project_payment(), whatever order the facts arrived in. A fact that names an object
-- the service does not know yet (a refund before its payment, a session not stored yet) waits
-- in stripe_facts and counts as soon as that object becomes known.
--
-- One payment per project: whenever more than one of a project's sessions holds money, every
-- one but the kept payment is owed a full refund; that, and the expiry of a session made while
-- the project came to hold money, go to stripe_actions in the transaction that revealed them,
-- and stay there until Stripe confirms them. reconcile_sweeps is where serve's own reconcile
-- sweep got to.
-- depends: 0002.security

-- The checkout sessions the service itself created, per project. Only these count: a
-- session made elsewhere on the account (a Payment Link whose buyer typed a project id as
-- client_reference_id, another integration) is never in this table and so moves nothing.
CREATE TABLE checkout_sessions (
    session_id  text PRIMARY KEY,
    project_id  text NOT NULL REFERENCES projects (project_id),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX checkout_sessions_project_id_idx ON checkout_sessions (project_id);

-- One fact per event (event_id set) or per read of a session from Stripe (event_id NULL):
-- the state of one Stripe object at Stripe's created time. Never a payload field beyond these.
CREATE TABLE stripe_facts (
    fact_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id          text UNIQUE REFERENCES stripe_events (event_id),
    -- session: a Checkout Session (cs_…); payment: a payment intent's charge (refunds);
    -- dispute: one dispute (dp_…) on a payment intent.
    object_kind       text NOT NULL CHECK (object_kind IN ('session', 'payment', 'dispute')),
    -- cs_… for a session, pi_… for a payment, dp_… for a dispute.
    object_id         text NOT NULL,
    -- The payment intent the fact is about or names: how refunds and disputes reach a session.
    payment_intent_id text,
    state             text NOT NULL,
    -- Tie-break between facts of one object with the same created time: the later stage of
    -- its life wins (paid or failed after awaiting payment, closed after open).
    stage             smallint NOT NULL,
    -- A payment's charge: its amount and the cumulative amount refunded (minor units).
    amount            bigint,
    amount_refunded   bigint,
    stripe_created_at timestamptz NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (
        (object_kind = 'session' AND state IN ('awaiting_payment', 'paid', 'payment_failed',
                                               'expired'))
        OR (object_kind = 'payment' AND state = 'refunded' AND amount IS NOT NULL
            AND amount_refunded IS NOT NULL AND payment_intent_id = object_id)
        OR (object_kind = 'dispute' AND state IN ('open', 'won', 'lost')
            AND payment_intent_id IS NOT NULL)
    )
);

-- A session's facts; a payment intent's facts (refunds, disputes, and the session naming it).
CREATE INDEX stripe_facts_object_id_idx ON stripe_facts (object_id);
CREATE INDEX stripe_facts_payment_intent_id_idx ON stripe_facts (payment_intent_id)
    WHERE payment_intent_id IS NOT NULL;
-- A read of a session from Stripe says the same thing each time it is repeated: kept once.
CREATE UNIQUE INDEX stripe_facts_read_once_idx ON stripe_facts (object_id, state)
    WHERE event_id IS NULL;

-- Outcomes of the new model. unattributed: a fact whose session the service did not create
-- (or has not stored yet) or whose payment intent belongs to no session of the service; it is
-- kept and counts once that becomes known. livemode_mismatch / connect_account: recorded and
-- never counted.
ALTER TABLE stripe_events DROP CONSTRAINT stripe_events_outcome_check;
UPDATE stripe_events SET outcome = 'unattributed' WHERE outcome = 'unknown_project';
UPDATE stripe_events SET outcome = 'unchanged' WHERE outcome = 'received';
ALTER TABLE stripe_events ALTER COLUMN outcome DROP DEFAULT;
ALTER TABLE stripe_events ADD CONSTRAINT stripe_events_outcome_check
    CHECK (outcome IN ('applied', 'unchanged', 'ignored', 'unattributed', 'livemode_mismatch',
                       'connect_account'));

-- Projects from before this release: their session becomes a session of the service, and
-- their status becomes facts dated -infinity, so that any real event about the same object
-- still takes precedence. (A dispute open at the upgrade has no dispute id here; it is kept
-- under the project's own name until a payment event says otherwise.)
INSERT INTO checkout_sessions (session_id, project_id, created_at)
SELECT checkout_session_id, project_id, created_at
  FROM projects
 WHERE checkout_session_id IS NOT NULL;

INSERT INTO stripe_facts (object_kind, object_id, payment_intent_id, state, stage,
                          stripe_created_at)
SELECT 'session', checkout_session_id, payment_intent_id,
       CASE status WHEN 'processing' THEN 'awaiting_payment'
                   WHEN 'failed' THEN 'payment_failed'
                   WHEN 'expired' THEN 'expired'
                   ELSE 'paid' END,
       CASE status WHEN 'processing' THEN 1 ELSE 2 END,
       '-infinity'
  FROM projects
 WHERE checkout_session_id IS NOT NULL
   AND status IN ('processing', 'paid', 'failed', 'expired', 'refunded', 'disputed');

INSERT INTO stripe_facts (object_kind, object_id, payment_intent_id, state, stage, amount,
                          amount_refunded, stripe_created_at)
SELECT 'payment', payment_intent_id, payment_intent_id, 'refunded', 0,
       coalesce(amount_total, 0), coalesce(amount_total, 0), '-infinity'
  FROM projects
 WHERE status = 'refunded' AND payment_intent_id IS NOT NULL AND checkout_session_id IS NOT NULL;

INSERT INTO stripe_facts (object_kind, object_id, payment_intent_id, state, stage,
                          stripe_created_at)
SELECT 'dispute', 'legacy_' || project_id, payment_intent_id, 'open', 1, '-infinity'
  FROM projects
 WHERE status = 'disputed' AND payment_intent_id IS NOT NULL AND checkout_session_id IS NOT NULL;

CREATE TABLE stripe_actions (
    action_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- refund_duplicate: POST /v1/refunds for object_id (a payment intent), reason duplicate;
    -- expire_session: POST /v1/checkout/sessions/{object_id}/expire.
    kind            text NOT NULL CHECK (kind IN ('refund_duplicate', 'expire_session')),
    object_id       text NOT NULL,
    project_id      text NOT NULL REFERENCES projects (project_id),
    -- Derived from the object, so that no retry, replica or delivery order can ever make
    -- Stripe act twice.
    idempotency_key text NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    last_attempt_at timestamptz,
    -- Why the last attempt failed, in the service's words (never Stripe's message).
    last_error      text,
    -- When Stripe confirmed it, and what it made (re_… for a refund).
    confirmed_at    timestamptz,
    stripe_result   text,
    UNIQUE (kind, object_id)
);

-- The sweep and each sender look for what is still owed.
CREATE INDEX stripe_actions_owed_idx ON stripe_actions (project_id) WHERE confirmed_at IS NULL;

-- Audit rows for duplicate refunds name the payment they refund.
ALTER TABLE payment_audit ADD COLUMN payment_intent_id text;
-- duplicate_payment: a duplicate's refund became owed, in the transaction of the event (if
-- any) that revealed it; a stripe_event row always names its event, an API row never does.
ALTER TABLE payment_audit DROP CONSTRAINT payment_audit_cause_check;
ALTER TABLE payment_audit ADD CONSTRAINT payment_audit_cause_check
    CHECK (cause IN ('stripe_event', 'api_checkout', 'api_confirmation', 'duplicate_payment'));
ALTER TABLE payment_audit DROP CONSTRAINT payment_audit_check;
ALTER TABLE payment_audit ADD CONSTRAINT payment_audit_cause_event_check
    CHECK ((cause <> 'stripe_event' OR cause_event_id IS NOT NULL)
           AND (cause NOT IN ('api_checkout', 'api_confirmation') OR cause_event_id IS NULL));

-- Where the sweep got to: one row per sweep (there is one, 'reconcile').
CREATE TABLE reconcile_sweeps (
    sweep      text PRIMARY KEY,
    swept_to   timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- THE derivation of a payment status from facts: SPEC "POST /webhooks/stripe", the two rule
-- lists, in one place. Every path that changes a status (webhook, reconcile, success-page
-- confirmation, checkout) calls it through apply_stripe_fact() or store_checkout_session().
-- service/payments/derivation.py states the same rules in Python; tests/test_derivation.py
-- checks the two against each other over generated fact sets.
--
-- First each of the project's sessions: its status, its payment intent, and when Stripe
-- created its paid fact (paid_at; paid_event_at when an event, not a read, told it).
CREATE FUNCTION session_payment_statuses(p_project_id text)
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

-- Then the project: returns its status, the session it comes from and that session's payment
-- intent, and how many of its sessions hold money (more than one: duplicates).
CREATE FUNCTION derive_project_payment(p_project_id text)
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

-- Re-derives a project's status (its row locked by the caller) and, when it changed, stores it
-- with one audit row. Every other session of it that holds money is a duplicate of the kept
-- payment: its full refund becomes owed (stripe_actions, once per payment intent) with an
-- audit row of cause duplicate_payment. A duplicate is only named once both its own payment and
-- the kept one are known from Stripe's events (a read of a session, or a refund or dispute
-- standing in for its payment, dates it only roughly), so the same payment is kept whatever
-- the order. Returns the status before and after, and how many actions became owed.
CREATE FUNCTION settle_project_status(p_project_id text, p_cause text, p_cause_event_id text,
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

-- Records one fact and settles the project it belongs to, in the caller's one statement:
-- Whoever stores a fact about, or makes known the owner of, one Stripe object (a session id,
-- a payment intent id) first takes that object's transaction-level advisory lock (key space
-- 4712), so that a fact and the news of whose object it is can never miss each other:
-- whichever commits second sees the first.
-- the event record (exactly once), the fact, the status change and its audit row commit
-- together. p_event_id NULL: a read of a session from Stripe (cause api_confirmation or
-- api_checkout). Returns duplicate (this event's fact is already stored), the outcome, the
-- project it concerned, and the status before and after.
CREATE FUNCTION apply_stripe_fact(
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
    IF p_event_id IS NOT NULL THEN
        -- A concurrent delivery of the same id waits here until the first commits.
        INSERT INTO stripe_events (event_id, event_type, stripe_created_at, livemode,
                                   outcome, received_at, applied_at)
        VALUES (p_event_id, p_event_type, p_event_created_at, p_livemode, 'unattributed',
                p_received_at, clock_timestamp())
        ON CONFLICT ON CONSTRAINT stripe_events_pkey DO NOTHING;
    END IF;
    -- The object's lock (see below), then its payment intent's, always in that order.
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
        -- This event's fact (or this very read) is already stored: nothing new to settle.
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
    IF p_event_id IS NOT NULL THEN
        UPDATE stripe_events e
           SET outcome = v_outcome, project_id = v_project, applied_at = clock_timestamp()
         WHERE e.event_id = p_event_id;
    END IF;
    RETURN QUERY SELECT false, v_outcome, v_project, v_from, v_to, v_actions;
END;
$$;

-- Stores a session the service created as the project's current one (creating the project on
-- its first checkout), then settles the status: facts that arrived before the session was
-- stored (a replica died between Stripe's answer and its commit) count from here on.
-- Only the caller that still holds the unstored attempt stores (stored = false otherwise).
-- While another session of the project holds money or awaits a delayed payment, the new
-- session is recorded as the service's (a payment on it is a duplicate) but not made current,
-- its expiry in Stripe becomes owed, and refused is true.
CREATE FUNCTION store_checkout_session(
    p_project_id text, p_idempotency_key text, p_session_id text, p_checkout_url text,
    p_expires_at timestamptz, p_amount_total bigint, p_currency text, p_request_id text,
    p_actor text)
RETURNS TABLE (stored boolean, refused boolean, from_status text, to_status text,
               new_actions integer)
LANGUAGE plpgsql
AS $$
DECLARE
    v_current text;
    v_from    text;
    v_to      text;
    v_actions integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_project_id, 4711));
    PERFORM 1 FROM checkout_attempts a
     WHERE a.project_id = p_project_id AND a.idempotency_key = p_idempotency_key
       AND a.session_id IS NULL;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, false, NULL::text, NULL::text, 0;
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended(p_session_id, 4712));
    INSERT INTO projects (project_id, status, amount_total, currency)
    VALUES (p_project_id, 'pending', p_amount_total, p_currency)
    ON CONFLICT ON CONSTRAINT projects_pkey DO NOTHING;
    IF FOUND THEN
        v_current := NULL;  -- new project: its first status is written below, from NULL
    ELSE
        SELECT p.status INTO v_current FROM projects p
         WHERE p.project_id = p_project_id FOR UPDATE;
    END IF;
    INSERT INTO checkout_sessions (session_id, project_id)
    VALUES (p_session_id, p_project_id)
    ON CONFLICT ON CONSTRAINT checkout_sessions_pkey DO NOTHING;
    UPDATE checkout_attempts a SET session_id = p_session_id, lease_until = now()
     WHERE a.project_id = p_project_id AND a.idempotency_key = p_idempotency_key;
    IF v_current IN ('paid', 'processing', 'disputed') THEN
        INSERT INTO stripe_actions (kind, object_id, project_id, idempotency_key)
        VALUES ('expire_session', p_session_id, p_project_id, 'expire-' || p_session_id)
        ON CONFLICT (kind, object_id) DO NOTHING;
        SELECT s.from_status, s.to_status, s.new_actions INTO v_from, v_to, v_actions
          FROM settle_project_status(p_project_id, 'api_checkout', NULL, p_request_id,
                                     p_actor) s;
        RETURN QUERY SELECT true, true, v_from, v_to, v_actions + 1;
        RETURN;
    END IF;
    UPDATE projects p
       SET checkout_session_id = p_session_id, checkout_url = p_checkout_url,
           checkout_expires_at = p_expires_at, amount_total = p_amount_total,
           currency = p_currency, updated_at = now()
     WHERE p.project_id = p_project_id;
    IF v_current IS NULL THEN
        -- The new row says 'pending' only as a placeholder: its first audit row goes from NULL.
        UPDATE projects p SET status = (SELECT d.status FROM derive_project_payment(p_project_id) d)
         WHERE p.project_id = p_project_id;
        INSERT INTO payment_audit (project_id, from_status, to_status, cause, request_id, actor)
        SELECT p.project_id, NULL, p.status, 'api_checkout', p_request_id, p_actor
          FROM projects p WHERE p.project_id = p_project_id
        RETURNING payment_audit.to_status INTO v_to;
        RETURN QUERY SELECT true, v_to IN ('paid', 'processing', 'disputed'), NULL::text, v_to, 0;
        RETURN;
    END IF;
    SELECT s.from_status, s.to_status, s.new_actions INTO v_from, v_to, v_actions
      FROM settle_project_status(p_project_id, 'api_checkout', NULL, p_request_id, p_actor) s;
    RETURN QUERY SELECT true, v_to IN ('paid', 'processing', 'disputed'), v_from, v_to,
                        v_actions;
END;
$$;
