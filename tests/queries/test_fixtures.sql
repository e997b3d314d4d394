-- Test-only statements: set up states the public API cannot reach quickly, and try what the
-- database must refuse. Never loaded by the service.

-- name: move-checkout-expiry(project_id, expires_at)!
-- Pretends the project's open session expires at another time (e.g. in four minutes).
UPDATE projects SET checkout_expires_at = :expires_at WHERE project_id = :project_id;

-- name: try-update-audit(project_id)!
-- Must fail: the audit trail is append-only.
UPDATE payment_audit SET to_status = 'paid' WHERE project_id = :project_id;

-- name: try-delete-audit(project_id)!
-- Must fail: the audit trail is append-only.
DELETE FROM payment_audit WHERE project_id = :project_id;

-- name: try-truncate-audit#
-- Must fail: the audit trail is append-only.
TRUNCATE payment_audit CASCADE;

-- name: get-project-row(project_id)^
-- Everything stored about a project.
SELECT * FROM projects WHERE project_id = :project_id;

-- name: get-checkout-attempt-row(project_id)^
-- The checkout attempt in flight, if any.
SELECT * FROM checkout_attempts WHERE project_id = :project_id;

-- name: dump-everything()$
-- Every stored row of the service's tables as JSON text, to search it for what must not be
-- there (customer e-mail, name, address; secrets).
SELECT concat_ws(E'\n',
    (SELECT string_agg(row_to_json(p)::text, E'\n') FROM projects p),
    (SELECT string_agg(row_to_json(c)::text, E'\n') FROM checkout_attempts c),
    (SELECT string_agg(row_to_json(e)::text, E'\n') FROM stripe_events e),
    (SELECT string_agg(row_to_json(a)::text, E'\n') FROM payment_audit a),
    (SELECT string_agg(row_to_json(s)::text, E'\n') FROM checkout_sessions s),
    (SELECT string_agg(row_to_json(f)::text, E'\n') FROM stripe_facts f),
    (SELECT string_agg(row_to_json(o)::text, E'\n') FROM stripe_objects o));

-- name: add-project-row(project_id, status, checkout_session_id, payment_intent_id)!
-- A project row as a checkout (or, before 0003.facts, a webhook) left it.
INSERT INTO projects (project_id, status, checkout_session_id, payment_intent_id,
                      amount_total, currency)
VALUES (:project_id, :status, :checkout_session_id, :payment_intent_id, 2500, 'usd');

-- name: add-checkout-session(session_id, project_id)!
-- A session the service created for the project.
INSERT INTO checkout_sessions (session_id, project_id) VALUES (:session_id, :project_id);

-- name: add-event-row(event_id)!
-- An event record for a fact to belong to.
INSERT INTO stripe_events (event_id, event_type, stripe_created_at, livemode, outcome,
                           received_at)
VALUES (:event_id, 'test', now(), false, 'unchanged', now());

-- name: add-fact(event_id, object_kind, object_id, payment_intent_id, state, stage, amount, amount_refunded, stripe_created_at)!
-- One fact folded into its object, as apply_stripe_fact does (without settling anything);
-- event_id NULL: a read of a session from Stripe.
SELECT record_stripe_fact(CAST(:event_id AS text) IS NOT NULL, :object_kind, :object_id,
                          :payment_intent_id, :state, :stage, :amount, :amount_refunded,
                          :stripe_created_at);

-- name: disable-audit-triggers#
-- What the table's owner can do (issue 12): set the append-only triggers aside.
ALTER TABLE payment_audit DISABLE TRIGGER USER;

-- name: enable-audit-triggers#
-- And put them back, leaving no trace but the edit.
ALTER TABLE payment_audit ENABLE TRIGGER USER;

-- name: tamper-audit-row(audit_id)!
-- The edit `audit verify` must find: a refund rewritten as a payment.
UPDATE payment_audit SET to_status = 'paid' WHERE audit_id = :audit_id;

-- name: delete-audit-row(audit_id)!
-- Another edit it must find: a row removed.
DELETE FROM payment_audit WHERE audit_id = :audit_id;

-- name: add-test-project(project_id)!
-- A bare project row for audit rows to point at.
INSERT INTO projects (project_id, status) VALUES (:project_id, 'pending');

-- name: add-test-audit-row(project_id, to_status, actor)<!
-- One audit row as the service writes it (the trigger chains it); returns its audit_id.
INSERT INTO payment_audit (project_id, from_status, to_status, cause, actor)
VALUES (:project_id, NULL, :to_status, 'api_checkout', :actor)
RETURNING audit_id;

-- name: list-table-privileges(role)
-- What the role may do to each of the service's tables.
SELECT c.relname AS table_name, p.privilege
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
 CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES',
                         'TRIGGER']) AS p(privilege)
 WHERE c.relkind = 'r' AND has_table_privilege(:role, c.oid, p.privilege)
 ORDER BY 1, 2;

-- name: get-schema-privileges(role)^
-- May the role create objects in the schema or the database?
SELECT has_schema_privilege(:role, 'public', 'CREATE') AS create_in_schema,
       has_database_privilege(:role, current_database(), 'CREATE') AS create_in_database;

-- name: create-later-table#
-- What a later migration might add, created by the owner: the app role must get it too.
CREATE TABLE later_migration_table (id bigint PRIMARY KEY);

-- name: try-replica-mode#
-- Must fail for the app role: a superuser's way around every trigger.
SET session_replication_role = replica;

-- name: value-domain-checks()
-- Each value domain (migrations/0006.value-domains.sql, 0008.checks-once.sql) with its CHECK
-- as PostgreSQL prints it, to compare the values it admits with the Python enums'.
SELECT t.typname AS domain, pg_get_constraintdef(c.oid) AS definition
  FROM pg_type t
  JOIN pg_constraint c ON c.contypid = t.oid
 WHERE t.typtype = 'd'
   AND t.typnamespace = 'public'::regnamespace
 ORDER BY t.typname;

-- name: try-fact-that-does-not-fit()$
-- Must fail: a dispute fact without its payment intent (record_stripe_fact refuses it).
SELECT record_stripe_fact(true, 'dispute', 'dp_unfit', NULL, 'open', CAST(1 AS smallint),
                          NULL, NULL, now());

-- name: try-project(project_id, status)!
-- Must fail for a status that is no payment status (the payment_status domain, 0006) or an id
-- outside 1-64 of A-Z a-z 0-9 _ - (the project_key domain, 0008).
INSERT INTO projects (project_id, status) VALUES (:project_id, :status);

-- name: try-audit-row(project_id, cause, cause_event_id)!
-- Must fail when the cause and the event do not fit (the audit trigger's rule, 0008).
INSERT INTO payment_audit (project_id, from_status, to_status, cause, cause_event_id, actor)
VALUES (:project_id, NULL, 'pending', :cause, :cause_event_id, 'test');
