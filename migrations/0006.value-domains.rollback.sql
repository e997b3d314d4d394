-- Undoes 0006.value-domains: the columns go back to their base types with 0005's CHECKs, and
-- record_stripe_fact to 0005's text (the table CHECKs hold its rules again).
ALTER TABLE projects
    ALTER COLUMN status TYPE text,
    ALTER COLUMN currency TYPE text,
    ALTER COLUMN amount_total TYPE bigint,
    ADD CONSTRAINT projects_status_check
        CHECK (status IN ('pending', 'processing', 'paid', 'failed', 'expired', 'refunded',
                          'disputed')),
    ADD CONSTRAINT projects_currency_check CHECK (currency ~ '^[a-z]{3}$'),
    ADD CONSTRAINT projects_amount_total_check CHECK (amount_total >= 0);
ALTER TABLE stripe_events
    ALTER COLUMN outcome TYPE text,
    ALTER COLUMN object_kind TYPE text,
    ALTER COLUMN state TYPE text,
    ADD CONSTRAINT stripe_events_outcome_check
        CHECK (outcome IN ('applied', 'unchanged', 'ignored', 'unattributed',
                           'livemode_mismatch', 'connect_account')),
    ADD CONSTRAINT stripe_events_fact_check CHECK (
        (object_kind IS NULL AND object_id IS NULL AND state IS NULL)
        OR (object_kind IN ('session', 'payment', 'dispute') AND object_id IS NOT NULL
            AND state IS NOT NULL AND stage IS NOT NULL)
    );
ALTER TABLE payment_audit
    ALTER COLUMN cause TYPE text,
    ADD CONSTRAINT payment_audit_cause_check
        CHECK (cause IN ('stripe_event', 'api_checkout', 'api_confirmation',
                         'duplicate_payment'));
ALTER TABLE stripe_objects
    ALTER COLUMN object_kind TYPE text,
    ALTER COLUMN state TYPE text,
    ADD CONSTRAINT stripe_objects_object_kind_check
        CHECK (object_kind IN ('session', 'payment', 'dispute')),
    ADD CONSTRAINT stripe_objects_check CHECK (
        (object_kind = 'session' AND state IN ('awaiting_payment', 'paid', 'payment_failed',
                                               'expired'))
        OR (object_kind = 'payment' AND state = 'refunded' AND amount IS NOT NULL
            AND amount_refunded IS NOT NULL AND payment_intent_id = object_id)
        OR (object_kind = 'dispute' AND state IN ('open', 'won', 'lost')
            AND payment_intent_id IS NOT NULL)
    );
DROP DOMAIN payment_status;
DROP DOMAIN currency_code;
DROP DOMAIN minor_units;
DROP DOMAIN event_outcome;
DROP DOMAIN audit_cause;
DROP DOMAIN fact_object_kind;
DROP DOMAIN fact_state;

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

