-- Checkout attempts: the reservation that keeps one Stripe Checkout Session per project across
-- replicas, and lets a checkout interrupted mid-call be retried with the same idempotency key.

-- name: lock-checkout(project_id)!
-- Serialises checkouts for one project across every replica until the transaction ends.
-- An advisory lock, because the project row may not exist yet. The second argument keeps
-- these locks apart from any other use of hashed advisory locks.
SELECT pg_advisory_xact_lock(hashtextextended(:project_id, 4711));

-- name: get-checkout-attempt(project_id)^
-- The checkout in flight for a project, if any.
SELECT project_id, idempotency_key, expires_at, lease_until
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
       created_at = now();

-- name: delete-checkout-attempt(project_id, idempotency_key)!
-- Ends an attempt: its session is stored, or Stripe gave a definite answer. Keyed on the
-- idempotency key too, so a caller never removes an attempt that another one took over.
DELETE FROM checkout_attempts
 WHERE project_id = :project_id
   AND idempotency_key = :idempotency_key;
