-- Value sets as domains (issue 10's speed): the same values refused, checked for less.
--
-- PostgreSQL re-reads a table's CHECK constraints from their stored text and prepares them
-- again in every statement that writes the table (ExecConstraints), whatever the columns the
-- statement touched. A webhook writes four tables with ten such checks, and reading and
-- preparing them was a quarter of the database's instructions per webhook (counted with
-- valgrind --tool=callgrind on a stand-alone backend; BENCHMARKS.md, "Issue 10, fourth
-- session"). A domain's check is prepared once per connection (the type cache) and only
-- evaluated per row. So:
--
-- 1. Each column that holds one of a fixed set of values (a status, an outcome, a cause, a
--    fact's kind and state), or a currency or amount, gets a domain with exactly the set its
--    CHECK had, and the CHECK goes. The values are the Python enums' in service/payments/
--    model.py; tests/test_value_domains.py checks each domain against its enum.
-- 2. The rules over several columns of a fact (which states a kind has; a refund fact names
--    its amounts and is its own payment intent; a dispute names its payment intent) were
--    checked on stripe_objects and stripe_events: both rows are written from the same
--    parameters by apply_stripe_fact, after record_stripe_fact, which now refuses a fact that
--    breaks them (check_violation) before either is written. stripe_facts (the reads, written
--    seldom) keeps its own CHECK of the same rules.
-- 3. payment_audit keeps its cause/event rule as a CHECK: the audit trail is the table the
--    database itself guards.
--
-- Every ALTER COLUMN TYPE below is to a domain without a constraint yet (binary-coercible:
-- no table rewrite); ALTER DOMAIN ADD CONSTRAINT then checks the rows already stored.
-- depends: 0005.latest-state

CREATE DOMAIN payment_status AS text;
CREATE DOMAIN currency_code AS text;
CREATE DOMAIN minor_units AS bigint;
CREATE DOMAIN event_outcome AS text;
CREATE DOMAIN audit_cause AS text;
CREATE DOMAIN fact_object_kind AS text;
CREATE DOMAIN fact_state AS text;

ALTER TABLE projects
    DROP CONSTRAINT projects_status_check,
    DROP CONSTRAINT projects_currency_check,
    DROP CONSTRAINT projects_amount_total_check,
    ALTER COLUMN status TYPE payment_status,
    ALTER COLUMN currency TYPE currency_code,
    ALTER COLUMN amount_total TYPE minor_units;
ALTER TABLE stripe_events
    DROP CONSTRAINT stripe_events_outcome_check,
    DROP CONSTRAINT stripe_events_fact_check,
    ALTER COLUMN outcome TYPE event_outcome,
    ALTER COLUMN object_kind TYPE fact_object_kind,
    ALTER COLUMN state TYPE fact_state;
ALTER TABLE payment_audit
    DROP CONSTRAINT payment_audit_cause_check,
    ALTER COLUMN cause TYPE audit_cause;
ALTER TABLE stripe_objects
    DROP CONSTRAINT stripe_objects_object_kind_check,
    DROP CONSTRAINT stripe_objects_check,
    ALTER COLUMN object_kind TYPE fact_object_kind,
    ALTER COLUMN state TYPE fact_state;

ALTER DOMAIN payment_status ADD CONSTRAINT payment_status_check
    CHECK (VALUE IN ('pending', 'processing', 'paid', 'failed', 'expired', 'refunded',
                     'disputed'));
ALTER DOMAIN currency_code ADD CONSTRAINT currency_code_check CHECK (VALUE ~ '^[a-z]{3}$');
ALTER DOMAIN minor_units ADD CONSTRAINT minor_units_check CHECK (VALUE >= 0);
ALTER DOMAIN event_outcome ADD CONSTRAINT event_outcome_check
    CHECK (VALUE IN ('applied', 'unchanged', 'ignored', 'unattributed', 'livemode_mismatch',
                     'connect_account'));
ALTER DOMAIN audit_cause ADD CONSTRAINT audit_cause_check
    CHECK (VALUE IN ('stripe_event', 'api_checkout', 'api_confirmation', 'duplicate_payment'));
ALTER DOMAIN fact_object_kind ADD CONSTRAINT fact_object_kind_check
    CHECK (VALUE IN ('session', 'payment', 'dispute'));
ALTER DOMAIN fact_state ADD CONSTRAINT fact_state_check
    CHECK (VALUE IN ('awaiting_payment', 'paid', 'payment_failed', 'expired', 'refunded',
                     'open', 'won', 'lost'));

-- As in 0005.latest-state, but first refusing a fact whose columns do not fit together (the
-- rules stripe_objects_check and stripe_events_fact_check held; stripe_facts_check still does).
CREATE OR REPLACE FUNCTION record_stripe_fact(
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
-- (The columns' NOT NULL constraints refuse a fact without its id, state or stage.)
IF NOT coalesce(CASE p_object_kind
       WHEN 'session' THEN p_state IN ('awaiting_payment', 'paid', 'payment_failed', 'expired')
       WHEN 'payment' THEN p_state = 'refunded' AND p_amount IS NOT NULL
                           AND p_amount_refunded IS NOT NULL AND p_payment_intent_id = p_object_id
       WHEN 'dispute' THEN p_state IN ('open', 'won', 'lost') AND p_payment_intent_id IS NOT NULL
   END, false) THEN
    RAISE EXCEPTION 'a % fact in state % does not fit its columns', p_object_kind, p_state
          USING ERRCODE = 'check_violation';
END IF;
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
