-- Projects: one row per project that ever started a checkout (or was paid through Stripe
-- without one). The payment status lives here; every change of it also goes to payment_audit.

-- name: get-project-payment(project_id)^
-- The status the frontend's success page polls for. Primary-key lookup.
SELECT project_id, status, updated_at
  FROM projects
 WHERE project_id = :project_id;

-- name: get-project-for-checkout(project_id)^
-- Reads what a checkout decides on, without locking: the checkout's own advisory lock
-- (checkout.sql lock-checkout) already serialises checkouts, and store-checkout-session
-- re-decides under its locks (a fact that arrived meanwhile is counted there).
SELECT project_id, status, checkout_session_id, checkout_url, checkout_expires_at
  FROM projects
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
