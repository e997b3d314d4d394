-- Actions owed to Stripe (stripe_actions, migrations/0003.facts.sql): a duplicate payment's
-- refund, a superseded session's expiry. Written by the functions that reveal them, in that
-- transaction; sent after the commit and retried by the sweep until Stripe confirms them.

-- name: list-owed-actions(project_id)
-- What is still owed, oldest first: one project's (after the commit that made it owed), or
-- every project's (project_id NULL: the sweep). Uses stripe_actions_owed_idx.
SELECT action_id, kind, object_id, project_id, idempotency_key, attempts
  FROM stripe_actions
 WHERE confirmed_at IS NULL
   AND (CAST(:project_id AS text) IS NULL OR project_id = :project_id)
 ORDER BY action_id
 LIMIT 500;

-- name: confirm-action(action_id, stripe_result)!
-- Stripe confirmed it (stripe_result: what it made, e.g. re_…, or why nothing was left to do).
UPDATE stripe_actions
   SET confirmed_at = now(), stripe_result = :stripe_result, attempts = attempts + 1,
       last_attempt_at = now(), last_error = NULL
 WHERE action_id = :action_id;

-- name: note-action-failure(action_id, last_error)!
-- An attempt that Stripe did not confirm: kept owed, for the next sweep.
UPDATE stripe_actions
   SET attempts = attempts + 1, last_attempt_at = now(), last_error = :last_error
 WHERE action_id = :action_id;
