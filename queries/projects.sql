-- Projects: one row per project that ever started a checkout (or was paid through Stripe
-- without one). The payment status lives here; every change of it also goes to payment_audit.

-- name: get-project-payment(project_id)^
-- The status the frontend's success page polls for. Primary-key lookup.
SELECT project_id, status, updated_at
  FROM projects
 WHERE project_id = :project_id;

-- name: lock-project(project_id)^
-- Reads a project and locks its row until the transaction ends, so that concurrent webhooks
-- and checkouts for one project decide its next status one after the other.
SELECT project_id, status, checkout_session_id, checkout_url, checkout_expires_at,
       payment_intent_id
  FROM projects
 WHERE project_id = :project_id
   FOR UPDATE;

-- name: get-project-for-checkout(project_id)^
-- Reads what a checkout decides on, without locking: the checkout's own advisory lock
-- (checkout.sql) already serialises checkouts, and webhooks are re-checked under the row lock.
SELECT project_id, status, checkout_session_id, checkout_url, checkout_expires_at
  FROM projects
 WHERE project_id = :project_id;

-- name: find-project-by-payment-intent(payment_intent_id)$
-- Refunds and disputes may carry no project id of their own: find it through the payment
-- intent recorded when the checkout completed. Uses projects_payment_intent_id_idx.
SELECT project_id
  FROM projects
 WHERE payment_intent_id = :payment_intent_id
 LIMIT 1;

-- name: insert-project(project_id, status, checkout_session_id, checkout_url, checkout_expires_at, payment_intent_id, amount_total, currency)<!
-- Creates a project with its first status. Returns nothing when a concurrent transaction
-- created it first; the caller then locks that row and decides again.
INSERT INTO projects (project_id, status, checkout_session_id, checkout_url,
                      checkout_expires_at, payment_intent_id, amount_total, currency)
VALUES (:project_id, :status, :checkout_session_id, :checkout_url,
        :checkout_expires_at, :payment_intent_id, :amount_total, :currency)
ON CONFLICT (project_id) DO NOTHING
RETURNING project_id;

-- name: set-checkout-session(project_id, status, checkout_session_id, checkout_url, checkout_expires_at, amount_total, currency)!
-- Points a project (locked by the caller) at its new checkout session and what it will
-- charge.
UPDATE projects
   SET status = :status,
       checkout_session_id = :checkout_session_id,
       checkout_url = :checkout_url,
       checkout_expires_at = :checkout_expires_at,
       amount_total = :amount_total,
       currency = :currency,
       updated_at = now()
 WHERE project_id = :project_id;

-- name: set-project-status(project_id, status, payment_intent_id, amount_total, currency)!
-- Moves a project (locked by the caller) to a new status. Payment details only ever fill in
-- or refresh: an event that does not carry them (a dispute, a refund) keeps what is known.
UPDATE projects
   SET status = :status,
       payment_intent_id = COALESCE(:payment_intent_id, payment_intent_id),
       amount_total = COALESCE(:amount_total, amount_total),
       currency = COALESCE(:currency, currency),
       updated_at = now()
 WHERE project_id = :project_id;

-- name: claim-stripe-check(project_id, checked_before)$
-- Lets one request (on any replica) ask Stripe about a pending project's session, at most
-- once per interval: a success page polling the status cannot hammer Stripe. Returns the
-- session to look up, or nothing when there is none or another request asked recently.
UPDATE projects
   SET stripe_checked_at = now()
 WHERE project_id = :project_id
   AND status = 'pending'
   AND checkout_session_id IS NOT NULL
   AND (stripe_checked_at IS NULL OR stripe_checked_at < :checked_before)
RETURNING checkout_session_id;
