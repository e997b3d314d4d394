-- Undoes 0002.security: the hash chain and the actor column go (the audit rows stay), and
-- the app role loses its grants here; the role itself is left, it may serve other databases.
DROP TRIGGER payment_audit_hash_chain ON payment_audit;
DROP FUNCTION payment_audit_chain();
DROP FUNCTION payment_audit_content(payment_audit);
DROP TABLE payment_audit_heads;
ALTER TABLE payment_audit DROP COLUMN row_hash, DROP COLUMN chain_seq, DROP COLUMN actor;
DO $$
DECLARE
    app_role text := COALESCE(NULLIF(current_setting('payment_service.app_role', true), ''),
                              'payment_app');
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app_role) THEN
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA public '
                       'REVOKE ALL ON TABLES FROM %I', app_role);
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA public '
                       'REVOKE ALL ON SEQUENCES FROM %I', app_role);
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA public FROM %I', app_role);
        EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM %I', app_role);
        EXECUTE format('REVOKE ALL ON SCHEMA public FROM %I', app_role);
        EXECUTE format('REVOKE ALL ON DATABASE %I FROM %I', current_database(), app_role);
    END IF;
END;
$$;
