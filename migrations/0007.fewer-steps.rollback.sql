-- Undoes 0007.fewer-steps: 0004's audit chain trigger and 0005's apply_stripe_fact, as they
-- were (the rows they write are the same).
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
