-- The webhook's statement in fewer steps (issue 10's speed): the same rules, the same rows.
--
-- 1. apply_stripe_fact reads the project's status as it locks the row, derives the new one in a
--    statement of its own (derive_project_payment, THE derivation, unchanged), and writes the
--    status, its audit row and the event row in one statement of plain values. 0005 joined the
--    derivation's result into every write through CTEs, and preparing those joins cost more
--    than the writes. It returns its row with RETURN NEXT (no query) instead of RETURN QUERY.
-- 2. The audit chain's trigger moves the project's head with an UPDATE, and inserts it only
--    when the project has none yet: every project has one from its first audit row on (its
--    checkout), and 0004's upsert computed the first row's hash as well on every call. The
--    hash is the same expression, so chains written before and after verify alike.
--
-- Measured with valgrind --tool=callgrind on a stand-alone backend, a webhook paying a pending
-- project: 1.72M instructions per call after 0006, 1.52-1.59M after this (BENCHMARKS.md).
-- depends: 0006.value-domains

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
    -- The project's head moves on; a project's first audit row makes its head. Should two
    -- first rows race, the one whose insert finds the other's head goes round and moves it.
    LOOP
        UPDATE payment_audit_heads AS h
           SET chain_seq = h.chain_seq + 1,
               row_hash = sha256(h.row_hash || convert_to(
                   (content || jsonb_build_object('chain_seq', h.chain_seq + 1))::text, 'UTF8'))
         WHERE h.project_id = NEW.project_id
        RETURNING h.chain_seq, h.row_hash INTO NEW.chain_seq, NEW.row_hash;
        EXIT WHEN FOUND;
        INSERT INTO payment_audit_heads AS h (project_id, chain_seq, row_hash)
        VALUES (NEW.project_id, 1,
                sha256(convert_to((content || jsonb_build_object('chain_seq', 1))::text,
                                  'UTF8')))
        ON CONFLICT (project_id) DO NOTHING
        RETURNING h.chain_seq, h.row_hash INTO NEW.chain_seq, NEW.row_hash;
        EXIT WHEN FOUND;
    END LOOP;
    RETURN NEW;
END;
$$;

-- Records one fact and settles the project it belongs to, in the caller's one statement: the
-- object's lock, the fact folded into its object (once per event id, once per read), the
-- project found and locked, its status derived, and the status, its audit row and last the
-- event row with its outcome written together. The locks are 0005's (see there).
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
    v_pi       text;
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
            duplicate := false; outcome := 'unchanged'; new_actions := 0;
            RETURN NEXT;
            RETURN;
        END IF;
    ELSIF EXISTS (SELECT 1 FROM stripe_events e
                   WHERE e.event_id = p_event_id AND e.object_id IS NOT NULL) THEN
        -- This event's fact is already recorded: a duplicate. (An event recorded before
        -- 0003.facts has a row without a fact, and counts now.)
        duplicate := true; outcome := 'unchanged'; new_actions := 0;
        RETURN NEXT;
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
        SELECT p.project_id, p.status INTO v_project, v_from
          FROM checkout_sessions cs
          JOIN projects p ON p.project_id = cs.project_id
         WHERE cs.session_id = p_object_id
           FOR UPDATE OF p;
    ELSE
        SELECT p.project_id, p.status INTO v_project, v_from
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
    -- The project's status derived again (THE derivation), then, in one statement, the
    -- status stored with its audit row when it changed, and last the event row, once, with
    -- its fact and outcome. It exists already only for an event recorded before 0003.facts
    -- (without a fact): that row takes the fact and the outcome. With no project
    -- (unattributed) only the event row is written.
    IF v_project IS NOT NULL THEN
        SELECT d.status, d.session_id, d.payment_intent_id, d.holding
          INTO v_to, v_kept, v_pi, v_holding
          FROM derive_project_payment(v_project) d;
    END IF;
    -- Applied: the status changed (v_from was read under the row's lock). The one decision
    -- behind the status's update, its audit row and the event's outcome.
    v_outcome := CASE WHEN v_project IS NULL THEN 'unattributed'
                      WHEN v_to IS DISTINCT FROM v_from THEN 'applied'
                      ELSE 'unchanged' END;
    WITH moved AS (
        UPDATE projects p
           SET status = v_to,
               payment_intent_id = coalesce(v_pi, p.payment_intent_id),
               updated_at = CASE WHEN v_outcome = 'applied' THEN now() ELSE p.updated_at END
         WHERE p.project_id = v_project
           AND (v_outcome = 'applied'
                OR (v_pi IS NOT NULL AND v_pi IS DISTINCT FROM p.payment_intent_id))
    ), audited AS (
        INSERT INTO payment_audit (project_id, from_status, to_status, cause, cause_event_id,
                                   request_id, actor)
        SELECT v_project, v_from, v_to,
               CASE WHEN p_event_id IS NULL THEN p_cause ELSE 'stripe_event' END, p_event_id,
               p_request_id, p_actor
         WHERE v_outcome = 'applied'
    )
    INSERT INTO stripe_events AS e (event_id, event_type, stripe_created_at, livemode,
                                    project_id, outcome, received_at, applied_at,
                                    object_kind, object_id, payment_intent_id, state,
                                    stage, amount, amount_refunded)
    SELECT p_event_id, p_event_type, p_event_created_at, p_livemode, v_project, v_outcome,
           p_received_at, clock_timestamp(), p_object_kind, p_object_id,
           p_payment_intent_id, p_state, p_stage, p_amount, p_amount_refunded
     WHERE p_event_id IS NOT NULL
    ON CONFLICT ON CONSTRAINT stripe_events_pkey DO UPDATE
       SET outcome = excluded.outcome, project_id = excluded.project_id,
           applied_at = excluded.applied_at, object_kind = excluded.object_kind,
           object_id = excluded.object_id, payment_intent_id = excluded.payment_intent_id,
           state = excluded.state, stage = excluded.stage, amount = excluded.amount,
           amount_refunded = excluded.amount_refunded;
    IF v_holding > 1 THEN
        v_actions := owe_duplicate_refunds(v_project, v_kept, v_to, p_event_id, p_request_id,
                                           p_actor);
    END IF;
    duplicate := false; outcome := v_outcome; project_id := v_project; from_status := v_from;
    to_status := v_to; new_actions := v_actions;
    RETURN NEXT;
END;
$$;
