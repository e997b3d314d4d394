-- Audit trail: one append-only row per status change. The table refuses UPDATE, DELETE and
-- TRUNCATE (see migrations/0001.initial.sql). Its rows are written by the functions that
-- change a status (settle_project_status, store_checkout_session in 0002.facts.sql), in the
-- transaction of the change; this file only reads them.

-- name: list-project-history(project_id)
-- A project's status changes, oldest first. Uses payment_audit_project_id_idx.
SELECT audit_id, project_id, from_status, to_status, cause, cause_event_id, request_id,
       changed_at
  FROM payment_audit
 WHERE project_id = :project_id
 ORDER BY changed_at, audit_id;
