-- Stripe events: one row per event id ever received, so that each takes effect once.
-- Only what audit needs is kept: never the payload, which carries customer PII.

-- name: record-event(event_id, event_type, stripe_created_at, livemode, project_id, outcome, received_at)<!
-- Records an event that changes no status (an ignored type, an unknown project, an edge the
-- table does not have). Returns nothing when the id is already recorded: a duplicate. A
-- concurrent delivery of the same id waits here on the primary key until the first one
-- commits or rolls back, so exactly one of them records it.
INSERT INTO stripe_events (event_id, event_type, stripe_created_at, livemode, project_id,
                           outcome, received_at, applied_at)
VALUES (:event_id, :event_type, :stripe_created_at, :livemode, :project_id,
        :outcome, :received_at, clock_timestamp())
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id;

-- name: get-event(event_id)^
-- One recorded event, for operators and tests.
SELECT event_id, event_type, stripe_created_at, livemode, project_id, outcome,
       received_at, applied_at
  FROM stripe_events
 WHERE event_id = :event_id;
