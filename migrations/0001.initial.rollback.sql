-- Drops everything 0001.initial created, the audit trail included: only for a database
-- that never held real payments.
DROP TABLE payment_audit;
DROP FUNCTION payment_audit_refuse_change();
DROP TABLE stripe_events;
DROP TABLE checkout_attempts;
DROP TABLE projects;
