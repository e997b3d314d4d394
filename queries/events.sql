-- Stripe events: one row per event id ever received, so that each takes effect once.
-- Only what audit needs is kept: never the payload, which carries customer PII.

-- name: record-event(event_id, event_type, stripe_created_at, livemode, received_at)<!
-- Claims an event id. Returns nothing when the id is already recorded (a duplicate delivery);
-- a concurrent delivery of the same id waits here on the primary key until the first one
-- commits or rolls back, so exactly one of them applies it.
INSERT INTO stripe_events (event_id, event_type, stripe_created_at, livemode, received_at)
VALUES (:event_id, :event_type, :stripe_created_at, :livemode, :received_at)
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id;

-- name: finish-event(event_id, project_id, outcome)!
-- Records what the event did, in the same transaction that did it.
UPDATE stripe_events
   SET project_id = :project_id,
       outcome = :outcome,
       applied_at = clock_timestamp()
 WHERE event_id = :event_id;

-- name: get-event(event_id)^
-- One recorded event, for operators and tests.
SELECT event_id, event_type, stripe_created_at, livemode, project_id, outcome,
       received_at, applied_at
  FROM stripe_events
 WHERE event_id = :event_id;
