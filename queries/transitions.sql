-- Applying a Stripe event to a project: the row lock, the decision, the event record, the
-- status change and its audit row in ONE statement, so a webhook costs one round trip and
-- one commit. The status change and the audit row happen only if the event record was new:
-- a duplicate delivery writes nothing at all.

-- name: apply-event(event_id, event_type, stripe_created_at, livemode, received_at, project_id, statuses, to_if_current_session, to_otherwise, event_session_id, payment_intent_id, amount_total, currency, request_id, actor)^
-- For an event about a project that may have a row. The caller passes the event's edges of
-- the status table (service/transitions.py) as three parallel arrays: for a project in
-- statuses[i], the status to move to when the event's checkout session (event_session_id)
-- is the project's current one, and when it is not (NULL: do not move).
-- Concurrency (READ COMMITTED): `locked` takes the row lock first; a concurrent webhook or
-- checkout holding it makes this statement wait, and the row is then re-read at its newest
-- version, so the decision is made on the status as it is now. The UPDATE re-checks that
-- same newest version (which this statement has locked), and a duplicate of an event being
-- applied concurrently waits on the row lock, then on the event's primary key, and records
-- nothing. Returns found_status NULL when the project has no row (nothing is written; the
-- caller takes apply-event-to-new-project); event_id NULL for a duplicate; outcome applied
-- or unchanged (no edge from the project's status); changed = 1 when the project moved.
-- Payment details only fill in or refresh (COALESCE).
WITH locked AS (
    SELECT project_id, status, checkout_session_id
      FROM projects
     WHERE project_id = :project_id
       FOR UPDATE
), decided AS (
    SELECT locked.project_id, locked.status AS from_status,
           CASE WHEN locked.checkout_session_id = :event_session_id
                THEN edge.to_if_current_session
                ELSE edge.to_otherwise
           END AS to_status
      FROM locked
      JOIN unnest(CAST(:statuses AS text[]), CAST(:to_if_current_session AS text[]),
                  CAST(:to_otherwise AS text[]))
           AS edge(from_status, to_if_current_session, to_otherwise)
        ON edge.from_status = locked.status
), moving AS (
    SELECT project_id, from_status, to_status FROM decided WHERE to_status IS NOT NULL
), event AS (
    INSERT INTO stripe_events (event_id, event_type, stripe_created_at, livemode, project_id,
                               outcome, received_at, applied_at)
    SELECT :event_id, :event_type, :stripe_created_at, :livemode, project_id,
           CASE WHEN EXISTS (SELECT 1 FROM moving) THEN 'applied' ELSE 'unchanged' END,
           :received_at, clock_timestamp()
      FROM locked
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id, outcome
), moved AS (
    UPDATE projects
       SET status = moving.to_status,
           payment_intent_id = COALESCE(:payment_intent_id, projects.payment_intent_id),
           amount_total = COALESCE(:amount_total, projects.amount_total),
           currency = COALESCE(:currency, projects.currency),
           updated_at = now()
      FROM moving
     WHERE projects.project_id = moving.project_id
       AND EXISTS (SELECT 1 FROM event)
    RETURNING projects.project_id, moving.from_status, moving.to_status
), audited AS (
    INSERT INTO payment_audit (project_id, from_status, to_status, cause, cause_event_id,
                               request_id, actor)
    SELECT project_id, from_status, to_status, 'stripe_event', :event_id,
           CAST(:request_id AS text), CAST(:actor AS text)
      FROM moved
)
SELECT (SELECT status FROM locked) AS found_status,
       (SELECT event_id FROM event) AS event_id,
       (SELECT outcome FROM event) AS outcome,
       (SELECT to_status FROM moving) AS to_status,
       (SELECT count(*) FROM moved) AS changed;

-- name: apply-event-to-new-project(event_id, event_type, stripe_created_at, livemode, received_at, project_id, to_status, checkout_session_id, payment_intent_id, amount_total, currency, request_id, actor)^
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
                               request_id, actor)
    SELECT project_id, NULL, CAST(:to_status AS text), 'stripe_event', :event_id,
           CAST(:request_id AS text), CAST(:actor AS text)
      FROM created
)
SELECT (SELECT event_id FROM event) AS event_id,
       (SELECT count(*) FROM created) AS changed;
