-- The last two CHECKs a webhook paid for (issue 10's speed): the same rules, checked for less.
--
-- 0006.value-domains turned ten CHECKs into domains. Two were left, and every webhook still
-- read both back from their stored text and prepared them again (ExecConstraints): the project
-- id's pattern, checked on every UPDATE of projects although no webhook changes an id, and the
-- audit row's rule between its cause and its event. Counted with valgrind --tool=callgrind on
-- a stand-alone backend as in 0006 (BENCHMARKS.md, "Issue 10, fifth session"): the two cost
-- a webhook 107k of its 1.53M instructions.
--
-- 1. projects.project_id becomes the domain project_key, with the same pattern. A domain is
--    checked where a value is written to the column (an INSERT; an UPDATE that sets the id),
--    so a webhook, which sets only the status, checks nothing. The columns that refer to it
--    stay text: a foreign key from text to a domain over text compares them as text.
-- 2. The audit row's rule moves into the audit trail's own BEFORE INSERT trigger,
--    payment_audit_chain, which every row passes through to get its hash. It refuses a row
--    that breaks the rule with check_violation under the old constraint's name, before the
--    chain moves. Only the table's owner can set the trigger aside, as only it could drop the
--    CHECK.
--
-- ALTER COLUMN TYPE to a domain without a constraint yet is binary-coercible: no table
-- rewrite. ALTER DOMAIN ADD CONSTRAINT then checks the ids already stored.
-- depends: 0007.fewer-steps

CREATE DOMAIN project_key AS text;
ALTER TABLE projects
    DROP CONSTRAINT projects_project_id_check,
    ALTER COLUMN project_id TYPE project_key;
ALTER DOMAIN project_key ADD CONSTRAINT project_key_check
    CHECK (VALUE ~ '^[A-Za-z0-9_-]{1,64}$');

ALTER TABLE payment_audit DROP CONSTRAINT payment_audit_cause_event_check;

-- As in 0007.fewer-steps, first refusing a row whose cause and event do not fit (the rule of
-- 0003's payment_audit_cause_event_check): a Stripe event's row names its event, an API call's
-- names none, and a duplicate's refund may name the event that revealed it.
CREATE OR REPLACE FUNCTION payment_audit_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public SET TimeZone = 'UTC' AS $$
DECLARE
    content jsonb;
BEGIN
    IF (NEW.cause = 'stripe_event' AND NEW.cause_event_id IS NULL)
       OR (NEW.cause IN ('api_checkout', 'api_confirmation') AND NEW.cause_event_id IS NOT NULL)
    THEN
        RAISE EXCEPTION 'an audit row of cause % must % an event', NEW.cause,
              CASE WHEN NEW.cause = 'stripe_event' THEN 'name' ELSE 'not name' END
              USING ERRCODE = 'check_violation', TABLE = 'payment_audit',
                    CONSTRAINT = 'payment_audit_cause_event_check';
    END IF;
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
