-- Undoes 0008.checks-once: both rules are CHECKs again, and the audit chain's trigger is
-- 0007's (the hash it computes is the same).
ALTER TABLE payment_audit ADD CONSTRAINT payment_audit_cause_event_check
    CHECK ((cause <> 'stripe_event' OR cause_event_id IS NOT NULL)
           AND (cause NOT IN ('api_checkout', 'api_confirmation') OR cause_event_id IS NULL));

ALTER TABLE projects
    ALTER COLUMN project_id TYPE text,
    ADD CONSTRAINT projects_project_id_check CHECK (project_id ~ '^[A-Za-z0-9_-]{1,64}$');
DROP DOMAIN project_key;

CREATE OR REPLACE FUNCTION payment_audit_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public SET TimeZone = 'UTC' AS $$
DECLARE
    content jsonb;
BEGIN
    -- The row's content without chain_seq and row_hash (both NULL here, and nulls are left
    -- out), then chain_seq added: jsonb orders its keys itself, so the text is exactly
    -- 0002's payment_audit_content() of the finished row, which `audit verify` recomputes.
    NEW.chain_seq := NULL;
    NEW.row_hash := NULL;
    content := jsonb_strip_nulls(to_jsonb(NEW));
    -- The project's head moves on; a project's first audit row makes its head. Should two
    -- first rows race, the one whose insert finds the other's head goes round and moves it.
    LOOP
        UPDATE payment_audit_heads AS h
           SET chain_seq = h.chain_seq + 1,
               row_hash = sha256(h.row_hash || convert_to(
                   (content || jsonb_build_object('chain_seq', h.chain_seq + 1))::text, 'UTF8'))
         WHERE h.project_id = NEW.project_id
        RETURNING h.chain_seq, h.row_hash INTO NEW.chain_seq, NEW.row_hash;
        EXIT WHEN FOUND;
        INSERT INTO payment_audit_heads AS h (project_id, chain_seq, row_hash)
        VALUES (NEW.project_id, 1,
                sha256(convert_to((content || jsonb_build_object('chain_seq', 1))::text,
                                  'UTF8')))
        ON CONFLICT (project_id) DO NOTHING
        RETURNING h.chain_seq, h.row_hash INTO NEW.chain_seq, NEW.row_hash;
        EXIT WHEN FOUND;
    END LOOP;
    RETURN NEW;
END;
$$;
