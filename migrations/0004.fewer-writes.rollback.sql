-- Undoes 0004.fewer-writes: 0002's chain trigger and 0003's apply_stripe_fact come back, with
-- the columns, index and constraints they had. Data written since stays valid under both.
CREATE FUNCTION payment_audit_content(row_data payment_audit) RETURNS text
LANGUAGE sql STABLE SET TimeZone = 'UTC' AS $$
    SELECT jsonb_strip_nulls(to_jsonb(row_data) - 'row_hash')::text
$$;

CREATE OR REPLACE FUNCTION payment_audit_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    head payment_audit_heads%ROWTYPE;
BEGIN
    INSERT INTO payment_audit_heads (project_id, chain_seq, row_hash)
    VALUES (NEW.project_id, 0, '\x'::bytea)
    ON CONFLICT (project_id) DO NOTHING;
    SELECT * INTO head FROM payment_audit_heads WHERE project_id = NEW.project_id FOR UPDATE;
    NEW.chain_seq := head.chain_seq + 1;
    NEW.row_hash := NULL;
    NEW.row_hash := sha256(head.row_hash || convert_to(payment_audit_content(NEW), 'UTF8'));
    UPDATE payment_audit_heads SET chain_seq = NEW.chain_seq, row_hash = NEW.row_hash
     WHERE project_id = NEW.project_id;
    RETURN NEW;
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

ALTER TABLE payment_audit_heads ADD CONSTRAINT payment_audit_heads_project_id_fkey
    FOREIGN KEY (project_id) REFERENCES projects (project_id);
CREATE INDEX payment_audit_project_id_idx ON payment_audit (project_id, changed_at);
ALTER TABLE stripe_facts
    ADD COLUMN fact_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;
ALTER TABLE payment_audit
    ALTER CONSTRAINT payment_audit_cause_event_id_fkey NOT DEFERRABLE;
ALTER TABLE stripe_facts
    ALTER CONSTRAINT stripe_facts_event_id_fkey NOT DEFERRABLE;
