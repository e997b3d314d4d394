-- Least privilege and a tamper-evident audit trail (issue 12).
--   1. payment_audit gains the caller's identity (actor) and SHA-256 hash chains, one per
--      project: each row's row_hash is SHA-256(the project's previous row's row_hash || the
--      row's own content), computed by a
--      BEFORE INSERT trigger, so an edit made by anyone who can get around the append-only
--      triggers (the owner, a superuser) is found by `python -m service audit verify`.
--   2. The app role (DB_APP_ROLE, default payment_app; `migrate` passes it as the setting
--      payment_service.app_role) is created if missing and granted only what serve and
--      reconcile need: no UPDATE, DELETE or TRUNCATE on the audit trail, no DDL.
-- depends: 0001.initial

-- 1. The hash chains ---------------------------------------------------------------------
-- One chain per project: a project's status changes are already written one after the other
-- (its row lock), so chaining them costs no lock of its own, and webhooks of different
-- projects commit in parallel as before. (One chain over every row would make every status
-- change in the service wait for the previous one's commit and its disk flush.)

ALTER TABLE payment_audit
    -- Who caused the row: key:<id>, jwt:<sub>, anonymous (API_AUTH=none), stripe (a signed
    -- webhook), reconcile, or system. Never a token or a key.
    ADD COLUMN actor     text,
    -- The row's place in its project's chain, given under the chain's lock, so chain order is
    -- commit order even when audit_id (taken before the lock) is not.
    ADD COLUMN chain_seq bigint,
    ADD COLUMN row_hash  bytea;

-- Each chain's head: the last row's place and hash, per project. Its row lock, taken by every
-- audit insert of the project and held to commit, orders that project's writers (a REPEATABLE
-- READ writer that loses the race fails with a serialization error instead of forking the
-- chain). Only the trigger function (SECURITY DEFINER) writes it; the app role may read it.
-- Rows removed from a chain's end show up as a head past its last row.
CREATE TABLE payment_audit_heads (
    project_id text PRIMARY KEY REFERENCES projects (project_id),
    chain_seq  bigint NOT NULL,
    row_hash   bytea NOT NULL
);

-- What a row's hash covers: every column but row_hash, as canonical jsonb text, null
-- columns left out (so adding a nullable column later keeps old rows' hashes valid). The
-- time zone is pinned, since timestamptz renders in the session's. `audit verify`
-- recomputes the same text with to_jsonb itself (not this function, which the owner could
-- replace) and the hashes in Python.
CREATE FUNCTION payment_audit_content(row_data payment_audit) RETURNS text
LANGUAGE sql STABLE SET TimeZone = 'UTC' AS $$
    SELECT jsonb_strip_nulls(to_jsonb(row_data) - 'row_hash')::text
$$;

CREATE FUNCTION payment_audit_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    head payment_audit_heads%ROWTYPE;
BEGIN
    INSERT INTO payment_audit_heads (project_id, chain_seq, row_hash)
    VALUES (NEW.project_id, 0, '\x'::bytea)
    ON CONFLICT (project_id) DO NOTHING;
    SELECT * INTO head FROM payment_audit_heads WHERE project_id = NEW.project_id FOR UPDATE;
    NEW.chain_seq := head.chain_seq + 1;
    NEW.row_hash := NULL;
    NEW.row_hash := sha256(head.row_hash || convert_to(payment_audit_content(NEW), 'UTF8'));
    UPDATE payment_audit_heads SET chain_seq = NEW.chain_seq, row_hash = NEW.row_hash
     WHERE project_id = NEW.project_id;
    RETURN NEW;
END;
$$;

-- Chain the rows written before this migration, oldest first per project (the append-only
-- trigger is set aside for exactly this, inside this migration's transaction).
ALTER TABLE payment_audit DISABLE TRIGGER payment_audit_no_update_or_delete;
DO $$
DECLARE
    audit_row payment_audit%ROWTYPE;
    seq bigint := 0;
    last_hash bytea := '\x'::bytea;
    last_project text := NULL;
BEGIN
    FOR audit_row IN SELECT * FROM payment_audit ORDER BY project_id, changed_at, audit_id LOOP
        IF last_project IS DISTINCT FROM audit_row.project_id THEN
            IF last_project IS NOT NULL THEN
                INSERT INTO payment_audit_heads VALUES (last_project, seq, last_hash);
            END IF;
            seq := 0;
            last_hash := '\x'::bytea;
            last_project := audit_row.project_id;
        END IF;
        seq := seq + 1;
        audit_row.chain_seq := seq;
        audit_row.row_hash := NULL;
        last_hash := sha256(last_hash || convert_to(payment_audit_content(audit_row), 'UTF8'));
        UPDATE payment_audit SET chain_seq = seq, row_hash = last_hash
         WHERE audit_id = audit_row.audit_id;
    END LOOP;
    IF last_project IS NOT NULL THEN
        INSERT INTO payment_audit_heads VALUES (last_project, seq, last_hash);
    END IF;
END;
$$;
ALTER TABLE payment_audit ENABLE TRIGGER payment_audit_no_update_or_delete;

ALTER TABLE payment_audit
    ALTER COLUMN chain_seq SET NOT NULL,
    ALTER COLUMN row_hash SET NOT NULL,
    ADD CONSTRAINT payment_audit_chain_seq_key UNIQUE (project_id, chain_seq);

CREATE TRIGGER payment_audit_hash_chain
    BEFORE INSERT ON payment_audit
    FOR EACH ROW EXECUTE FUNCTION payment_audit_chain();

-- 2. The app role and its grants ---------------------------------------------------------

DO $$
DECLARE
    app_role text := COALESCE(NULLIF(current_setting('payment_service.app_role', true), ''),
                              'payment_app');
    yoyo_table text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app_role) THEN
        BEGIN
            -- NOLOGIN: the DBA gives it a password (ALTER ROLE … LOGIN PASSWORD) or grants
            -- it to a login role; see README "Two database roles".
            EXECUTE format('CREATE ROLE %I NOLOGIN', app_role);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created meanwhile by a migration of another database on this server
        END;
    END IF;

    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), app_role);
    EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', app_role);
    -- Every table the service reads and writes: what the migrations before this one made
    -- (0002's included)...
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %I',
                   app_role);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %I', app_role);
    -- ...and what later migrations make (tables created by this owner role). A later table
    -- that must not be rewritten revokes, in its own migration, as below.
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA public '
                   'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I', app_role);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA public '
                   'GRANT USAGE, SELECT ON SEQUENCES TO %I', app_role);
    -- The audit trail: read and append only. The chain's head is the trigger's to move;
    -- the app may read it (audit verify).
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON payment_audit FROM %I', app_role);
    EXECUTE format('REVOKE ALL ON payment_audit_heads FROM %I', app_role);
    EXECUTE format('GRANT SELECT ON payment_audit_heads TO %I', app_role);
    -- yoyo's bookkeeping is the migrate role's business.
    FOR yoyo_table IN SELECT tablename FROM pg_tables
                       WHERE schemaname = 'public' AND tablename LIKE '%yoyo%' LOOP
        EXECUTE format('REVOKE ALL ON %I FROM %I', yoyo_table, app_role);
    END LOOP;
END;
$$;

-- No DDL for anyone but the owner: PostgreSQL before 15 let every role create in public.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
