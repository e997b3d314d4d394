-- Fewer writes per webhook (issue 10's speed): the same rules and the same data, written once.
--
-- 1. The event row is written last, once, with its outcome and project (0003 inserted it first
--    and updated it at the end: a second heap tuple and, its project_id being indexed, a second
--    entry in each of its three indexes). Exactly-once now rests on stripe_facts' unique
--    event_id for the events that carry a fact (the webhook's record-event keeps the primary
--    key for the rest), so the fact and the audit row name their event before its row exists:
--    those two references are checked at commit instead (DEFERRABLE INITIALLY DEFERRED).
-- 2. The audit chain's head moves in one upsert (0002 inserted it, locked it and updated it:
--    three statements, two tuples), with the row's hash computed in the trigger itself.
--    The hashes are byte for byte the same, so chains written before and after verify alike.
-- 3. Gone, because nothing reads them: stripe_facts' surrogate fact_id (its index was updated
--    on every fact), payment_audit_project_id_idx (a project's history is found through the
--    unique (project_id, chain_seq) index), the heads' foreign key to projects (the audit row
--    that moves a head already checks it), and payment_audit_content(), which the trigger no
--    longer calls.
-- depends: 0003.facts

ALTER TABLE stripe_facts
    ALTER CONSTRAINT stripe_facts_event_id_fkey DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE payment_audit
    ALTER CONSTRAINT payment_audit_cause_event_id_fkey DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE stripe_facts DROP COLUMN fact_id;
DROP INDEX payment_audit_project_id_idx;
ALTER TABLE payment_audit_heads DROP CONSTRAINT payment_audit_heads_project_id_fkey;

-- What a row's hash covers is unchanged: every column but row_hash, as canonical jsonb text,
-- null columns left out, timestamps in UTC (the function's own TimeZone setting).
CREATE OR REPLACE FUNCTION payment_audit_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public SET TimeZone = 'UTC' AS $$
DECLARE
    content jsonb;
BEGIN
    -- The row's content without chain_seq and row_hash (both NULL here, and nulls are left
    -- out), then chain_seq added: jsonb orders its keys itself, so the text is exactly
    -- 0002's payment_audit_content() of the finished row, which `audit verify` recomputes.
    NEW.chain_seq := NULL;
    NEW.row_hash := NULL;
    content := jsonb_strip_nulls(to_jsonb(NEW));
    INSERT INTO payment_audit_heads AS h (project_id, chain_seq, row_hash)
    VALUES (NEW.project_id, 1,
            sha256(convert_to((content || jsonb_build_object('chain_seq', 1))::text, 'UTF8')))
    ON CONFLICT (project_id) DO UPDATE
       SET chain_seq = h.chain_seq + 1,
           row_hash = sha256(h.row_hash || convert_to(
               (content || jsonb_build_object('chain_seq', h.chain_seq + 1))::text, 'UTF8'))
    RETURNING h.chain_seq, h.row_hash INTO NEW.chain_seq, NEW.row_hash;
    RETURN NEW;
END;
$$;

DROP FUNCTION payment_audit_content(payment_audit);

-- Records one fact and settles the project it belongs to, in the caller's one statement (as in
-- 0003.facts; the difference is the order of the writes, see the top of this file).
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
