-- Checkout attempts: the reservation that keeps one Stripe Checkout Session per project across
-- replicas, and lets a checkout interrupted mid-call be retried with the same idempotency key.

-- name: lock-checkout(project_id)!
-- Serialises checkouts for one project across every replica until the transaction ends.
-- An advisory lock, because the project row may not exist yet. The second argument keeps
-- these locks apart from any other use of hashed advisory locks.
SELECT pg_advisory_xact_lock(hashtextextended(:project_id, 4711));

-- name: get-checkout-attempt(project_id)^
-- The project's latest checkout attempt, if any (session_id NULL: not stored yet).
SELECT project_id, idempotency_key, expires_at, lease_until, session_id
  FROM checkout_attempts
 WHERE project_id = :project_id;

-- name: save-checkout-attempt(project_id, idempotency_key, expires_at, lease_until)!
-- Starts (or replaces) the attempt this caller will now send to Stripe.
INSERT INTO checkout_attempts (project_id, idempotency_key, expires_at, lease_until)
VALUES (:project_id, :idempotency_key, :expires_at, :lease_until)
ON CONFLICT (project_id) DO UPDATE
   SET idempotency_key = EXCLUDED.idempotency_key,
       expires_at = EXCLUDED.expires_at,
       lease_until = EXCLUDED.lease_until,
       session_id = NULL,
       created_at = now();

-- name: claim-first-checkout(project_id, idempotency_key, expires_at, lease_until)$
-- The fast path for a project never seen before (no project row, no attempt ever): one
-- statement, no lock. Returns the key when this caller now holds the project's first
-- attempt; nothing when the project or an attempt already exists (or a concurrent caller
-- inserted one first), and the caller then takes the locked path.
INSERT INTO checkout_attempts (project_id, idempotency_key, expires_at, lease_until)
SELECT CAST(:project_id AS text), CAST(:idempotency_key AS text),
       CAST(:expires_at AS timestamptz), CAST(:lease_until AS timestamptz)
 WHERE NOT EXISTS (SELECT 1 FROM projects WHERE project_id = :project_id)
ON CONFLICT (project_id) DO NOTHING
RETURNING idempotency_key;

-- name: delete-checkout-attempt(project_id, idempotency_key)!
-- Forgets an attempt Stripe answered with an error, so the next checkout starts afresh.
-- Keyed on the idempotency key too, so a caller never removes an attempt another took over.
DELETE FROM checkout_attempts
 WHERE project_id = :project_id
   AND idempotency_key = :idempotency_key;

-- name: store-checkout-session(project_id, idempotency_key, session_id, checkout_url, expires_at, amount_total, currency, request_id, actor)^
-- After Stripe answered: stores the session as the service's and the project's current one
-- (creating the project on its first checkout), marks the attempt stored and settles the
-- status with its audit row, in one statement (store_checkout_session() in
-- migrations/0003.facts.sql). stored = false when the attempt is no longer this caller's;
-- refused = true when the project holds money or awaits a delayed payment (the new session's
-- expiry is then owed to Stripe: new_actions counts what became owed).
SELECT stored, refused, from_status, to_status, new_actions
  FROM store_checkout_session(:project_id, :idempotency_key, :session_id, :checkout_url,
                              :expires_at, :amount_total, :currency, :request_id, :actor);
