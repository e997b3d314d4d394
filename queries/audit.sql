-- Audit trail: one append-only row per status change. The table refuses UPDATE, DELETE and
-- TRUNCATE (see migrations/0001.initial.sql). Its rows are written by the functions that
-- change a status (settle_project_status, store_checkout_session in 0003.facts.sql), in the
-- transaction of the change; this file only reads them.

-- name: list-project-history(project_id)
-- A project's status changes, oldest first: its hash chain's order, which is the order they
-- were written in (a project's writers are serialised by its row lock). Read straight from
-- payment_audit_chain_seq_key (project_id, chain_seq), no sort.
SELECT audit_id, project_id, from_status, to_status, cause, cause_event_id, payment_intent_id,
       request_id,
       actor, changed_at
  FROM payment_audit
 WHERE project_id = :project_id
 ORDER BY chain_seq;

-- name: list-audit-chain()
-- Every audit row, chain by chain (one per project) in chain order, with the exact text its
-- row_hash covers: all columns but row_hash as canonical jsonb, nulls left out. `audit
-- verify` recomputes the hashes from it in Python (built-ins only here, nothing the table's
-- owner could replace). The session's TimeZone must be UTC, as in the trigger (the command
-- connects so). Full scan, by payment_audit_chain_seq_key; an operator's command, never on a
-- request path.
SELECT project_id, chain_seq, audit_id, row_hash,
       jsonb_strip_nulls(to_jsonb(a) - 'row_hash')::text AS content
  FROM payment_audit a
 ORDER BY project_id, chain_seq;

-- name: list-audit-heads()
-- Where each chain ends, as its insert trigger last left it: rows removed from a chain's end
-- show up as a head past its last row.
SELECT project_id, chain_seq, row_hash FROM payment_audit_heads ORDER BY project_id;

-- name: list-audit-rows-since(since)
-- `audit export`: the rows changed since a time, chain by chain, each with the previous row's
-- hash in its chain, so an auditor can recompute SHA-256(prev_hash || hashed) line by line.
SELECT project_id, chain_seq, row_hash, prev_hash,
       jsonb_strip_nulls(to_jsonb(chained) - 'row_hash' - 'prev_hash')::text AS hashed
  FROM (SELECT a.*,
               lag(row_hash, 1, '\x'::bytea)
                   OVER (PARTITION BY project_id ORDER BY chain_seq) AS prev_hash
          FROM payment_audit a) AS chained
 WHERE changed_at >= :since
 ORDER BY project_id, chain_seq;
