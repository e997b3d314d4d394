-- Audit trail: one append-only row per status change. The table refuses UPDATE, DELETE and
-- TRUNCATE (see migrations/0001.initial.sql), so these are the only queries that touch it.

-- name: add-audit-row(project_id, from_status, to_status, cause, cause_event_id, request_id)!
-- Records one status change, in the transaction that made it. from_status is NULL for a
-- project's first status.
INSERT INTO payment_audit (project_id, from_status, to_status, cause, cause_event_id, request_id)
VALUES (:project_id, :from_status, :to_status, :cause, :cause_event_id, :request_id);

-- name: list-project-history(project_id)
-- A project's status changes, oldest first. Uses payment_audit_project_id_idx.
SELECT audit_id, project_id, from_status, to_status, cause, cause_event_id, request_id,
       changed_at
  FROM payment_audit
 WHERE project_id = :project_id
 ORDER BY changed_at, audit_id;
