-- Applying a Stripe event to a project: the event record, the status change and its audit
-- row in ONE statement, so the webhook's transaction costs four round trips (BEGIN, the
-- row lock, this, COMMIT). The status change and the audit row happen only if the event
-- record was new: a duplicate delivery writes nothing at all.

-- name: apply-event-to-project(event_id, event_type, stripe_created_at, livemode, received_at, project_id, from_status, to_status, payment_intent_id, amount_total, currency, request_id)^
-- For a project the caller has locked (projects.sql lock-project) and found in from_status.
-- Returns event_id NULL for a duplicate; changed = 0 would mean the row moved under the lock,
-- which the caller treats as a bug. Payment details only fill in or refresh (COALESCE).
WITH event AS (
    INSERT INTO stripe_events (event_id, event_type, stripe_created_at, livemode, project_id,
                               outcome, received_at, applied_at)
    VALUES (:event_id, :event_type, :stripe_created_at, :livemode, :project_id,
            'applied', :received_at, clock_timestamp())
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
), moved AS (
    UPDATE projects
       SET status = :to_status,
           payment_intent_id = COALESCE(:payment_intent_id, payment_intent_id),
           amount_total = COALESCE(:amount_total, amount_total),
           currency = COALESCE(:currency, currency),
           updated_at = now()
     WHERE project_id = :project_id
       AND status = :from_status
       AND EXISTS (SELECT 1 FROM event)
    RETURNING project_id
), audited AS (
    INSERT INTO payment_audit (project_id, from_status, to_status, cause, cause_event_id,
                               request_id)
    SELECT project_id, :from_status, :to_status, 'stripe_event', :event_id,
           CAST(:request_id AS text)
      FROM moved
)
SELECT (SELECT event_id FROM event) AS event_id,
       (SELECT count(*) FROM moved) AS changed;

-- name: apply-event-to-new-project(event_id, event_type, stripe_created_at, livemode, received_at, project_id, to_status, checkout_session_id, payment_intent_id, amount_total, currency, request_id)^
-- For an event about a project the service has no row for (paid without a checkout through
-- this service, or events arriving before the checkout was stored). Returns event_id NULL
-- for a duplicate; changed = 0 when another transaction created the project first, and the
-- caller then rolls back and decides again on that row.
WITH event AS (
    INSERT INTO stripe_events (event_id, event_type, stripe_created_at, livemode, project_id,
                               outcome, received_at, applied_at)
    VALUES (:event_id, :event_type, :stripe_created_at, :livemode, :project_id,
            'applied', :received_at, clock_timestamp())
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
), created AS (
    INSERT INTO projects (project_id, status, checkout_session_id, payment_intent_id,
                          amount_total, currency)
    SELECT CAST(:project_id AS text), CAST(:to_status AS text),
           CAST(:checkout_session_id AS text), CAST(:payment_intent_id AS text),
           CAST(:amount_total AS bigint), CAST(:currency AS text)
     WHERE EXISTS (SELECT 1 FROM event)
    ON CONFLICT (project_id) DO NOTHING
    RETURNING project_id
), audited AS (
    INSERT INTO payment_audit (project_id, from_status, to_status, cause, cause_event_id,
                               request_id)
    SELECT project_id, NULL, CAST(:to_status AS text), 'stripe_event', :event_id,
           CAST(:request_id AS text)
      FROM created
)
SELECT (SELECT event_id FROM event) AS event_id,
       (SELECT count(*) FROM created) AS changed;
