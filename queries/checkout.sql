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

-- name: store-first-session(project_id, idempotency_key, checkout_session_id, checkout_url, checkout_expires_at, amount_total, currency, request_id, actor)$
-- The fast path's second statement: creates the project with its first session, marks the
-- attempt stored and writes the audit row, all or nothing. Creates nothing (returns 0) when
-- the project appeared meanwhile (a webhook) or the attempt is no longer this caller's; the
-- caller then takes the locked path.
WITH created AS (
    INSERT INTO projects (project_id, status, checkout_session_id, checkout_url,
                          checkout_expires_at, amount_total, currency)
    SELECT CAST(:project_id AS text), 'pending', CAST(:checkout_session_id AS text),
           CAST(:checkout_url AS text), CAST(:checkout_expires_at AS timestamptz),
           CAST(:amount_total AS bigint), CAST(:currency AS text)
     WHERE EXISTS (SELECT 1 FROM checkout_attempts
                    WHERE project_id = :project_id
                      AND idempotency_key = :idempotency_key
                      AND session_id IS NULL)
    ON CONFLICT (project_id) DO NOTHING
    RETURNING project_id
), stored AS (
    UPDATE checkout_attempts
       SET session_id = :checkout_session_id, lease_until = now()
     WHERE project_id IN (SELECT project_id FROM created)
       AND idempotency_key = :idempotency_key
), audited AS (
    INSERT INTO payment_audit (project_id, from_status, to_status, cause, request_id, actor)
    SELECT project_id, NULL, 'pending', 'api_checkout', CAST(:request_id AS text),
           CAST(:actor AS text)
      FROM created
)
SELECT count(*) FROM created;

-- name: finish-checkout-attempt(project_id, idempotency_key, session_id)!
-- Marks the attempt stored (its session is now the project's), so it is never re-sent.
UPDATE checkout_attempts
   SET session_id = :session_id, lease_until = now()
 WHERE project_id = :project_id
   AND idempotency_key = :idempotency_key;

-- name: delete-checkout-attempt(project_id, idempotency_key)!
-- Forgets an attempt Stripe answered with an error, so the next checkout starts afresh.
-- Keyed on the idempotency key too, so a caller never removes an attempt another took over.
DELETE FROM checkout_attempts
 WHERE project_id = :project_id
   AND idempotency_key = :idempotency_key;
