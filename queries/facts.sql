-- Facts: what each Stripe event (or read of a session from Stripe) tells about one Stripe
-- object, and the project status derived from them. The rules live in the functions of
-- migrations/0003.facts.sql as 0005.latest-state and 0007.fewer-steps rewrote them
-- (record_stripe_fact folds a fact into its object's row, derive_project_payment reads those
-- rows, settle_project_status and apply_stripe_fact write); see README.md.

-- name: apply-fact(event_id, event_type, event_created_at, livemode, received_at, object_kind, object_id, payment_intent_id, state, stage, amount, amount_refunded, fact_created_at, cause, request_id, actor)^
-- The whole webhook in one round trip, and the same for a session read from Stripe (event_id
-- NULL; cause api_confirmation or api_checkout): folds its fact into its object's row (once: a
-- repeated event or read stops here), finds the project whose session or payment it is, locks
-- that project's row, re-derives its status and, when it changed, writes it with one audit
-- row, and last records the event with its fact and outcome; all in the caller's statement,
-- which PostgreSQL commits atomically. Returns duplicate, outcome (applied, unchanged,
-- unattributed), project_id, from_status, to_status, and new_actions: the duplicate payments'
-- refunds it made owed (sent after the commit, service/payments/outbox.py).
SELECT duplicate, outcome, project_id, from_status, to_status, new_actions
  FROM apply_stripe_fact(:event_id, :event_type, :event_created_at, :livemode, :received_at,
                         :object_kind, :object_id, :payment_intent_id, :state, :stage,
                         :amount, :amount_refunded, :fact_created_at, :cause, :request_id,
                         :actor);

-- name: derive-project-payment(project_id)^
-- What the facts say a project's status is, without changing anything (tests, operators).
SELECT status, session_id, payment_intent_id
  FROM derive_project_payment(:project_id);
