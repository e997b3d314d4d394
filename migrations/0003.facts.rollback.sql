-- Undoes 0003.facts: the functions, the facts and the sessions table go; outcomes written by
-- the new model fold back into the old ones. Statuses stay as they were last derived.
DROP FUNCTION store_checkout_session(text, text, text, text, timestamptz, bigint, text, text,
                                     text);
DROP FUNCTION apply_stripe_fact(text, text, timestamptz, boolean, timestamptz, text, text, text,
                                text, smallint, bigint, bigint, timestamptz, text, text, text);
DROP FUNCTION settle_project_status(text, text, text, text, text);
DROP FUNCTION derive_project_payment(text);
DROP FUNCTION session_payment_statuses(text);
DROP TABLE reconcile_sweeps;
DROP TABLE stripe_actions;
ALTER TABLE payment_audit DROP CONSTRAINT payment_audit_cause_event_check;
ALTER TABLE payment_audit ADD CONSTRAINT payment_audit_check
    CHECK ((cause = 'stripe_event') = (cause_event_id IS NOT NULL));
ALTER TABLE payment_audit DROP CONSTRAINT payment_audit_cause_check;
ALTER TABLE payment_audit ADD CONSTRAINT payment_audit_cause_check
    CHECK (cause IN ('stripe_event', 'api_checkout', 'api_confirmation'));
ALTER TABLE payment_audit DROP COLUMN payment_intent_id;
DROP TABLE stripe_facts;
DROP TABLE checkout_sessions;
ALTER TABLE stripe_events DROP CONSTRAINT stripe_events_outcome_check;
UPDATE stripe_events SET outcome = 'unknown_project' WHERE outcome = 'unattributed';
UPDATE stripe_events SET outcome = 'ignored'
 WHERE outcome IN ('livemode_mismatch', 'connect_account');
ALTER TABLE stripe_events ALTER COLUMN outcome SET DEFAULT 'received';
ALTER TABLE stripe_events ADD CONSTRAINT stripe_events_outcome_check
    CHECK (outcome IN ('received', 'applied', 'unchanged', 'ignored', 'unknown_project'));
