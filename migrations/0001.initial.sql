-- Initial schema of payment-service. One row per project, one per received Stripe event,
-- one per checkout in flight, and an append-only audit trail of status changes.
-- depends:

CREATE TABLE projects (
    project_id          text PRIMARY KEY
                        CHECK (project_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    status              text NOT NULL
                        CHECK (status IN ('pending', 'processing', 'paid', 'failed',
                                          'expired', 'refunded', 'disputed')),
    checkout_session_id text,
    checkout_url        text,
    checkout_expires_at timestamptz,
    payment_intent_id   text,
    amount_total        bigint CHECK (amount_total >= 0),
    currency            text CHECK (currency ~ '^[a-z]{3}$'),
    -- When the status endpoint last asked Stripe about the pending session (rate limit).
    stripe_checked_at   timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Refunds and disputes often name only the payment intent: they find their project here.
CREATE INDEX projects_payment_intent_id_idx ON projects (payment_intent_id)
    WHERE payment_intent_id IS NOT NULL;

-- A project's latest checkout attempt in Stripe. While session_id is NULL it is in flight (or
-- was interrupted): the reservation that makes every replica re-send the same request with the
-- same idempotency key instead of opening a second session. Once the session is stored in
-- projects, session_id records it and the attempt is never re-sent.
CREATE TABLE checkout_attempts (
    project_id      text PRIMARY KEY
                    CHECK (project_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    idempotency_key text NOT NULL UNIQUE,
    expires_at      timestamptz NOT NULL,
    lease_until     timestamptz NOT NULL,
    session_id      text,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Every Stripe event the service has received, once. Never the payload: it carries customer PII.
CREATE TABLE stripe_events (
    event_id          text PRIMARY KEY,
    event_type        text NOT NULL,
    stripe_created_at timestamptz NOT NULL,
    livemode          boolean NOT NULL,
    project_id        text,
    outcome           text NOT NULL DEFAULT 'received'
                      CHECK (outcome IN ('received', 'applied', 'unchanged', 'ignored',
                                         'unknown_project')),
    received_at       timestamptz NOT NULL,
    applied_at        timestamptz
);

CREATE INDEX stripe_events_project_id_idx ON stripe_events (project_id)
    WHERE project_id IS NOT NULL;
CREATE INDEX stripe_events_stripe_created_at_idx ON stripe_events (stripe_created_at);

-- One row per status change. Append-only: the triggers below refuse UPDATE, DELETE and TRUNCATE
-- for every role, the table owner included.
CREATE TABLE payment_audit (
    audit_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id     text NOT NULL REFERENCES projects (project_id),
    from_status    text,
    to_status      text NOT NULL,
    -- stripe_event: a webhook or reconcile; api_checkout: POST /api/checkout;
    -- api_confirmation: the status endpoint read the session from Stripe before its webhook.
    cause          text NOT NULL CHECK (cause IN ('stripe_event', 'api_checkout',
                                                  'api_confirmation')),
    cause_event_id text REFERENCES stripe_events (event_id),
    request_id     text,
    changed_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK ((cause = 'stripe_event') = (cause_event_id IS NOT NULL))
);

CREATE INDEX payment_audit_project_id_idx ON payment_audit (project_id, changed_at);

CREATE FUNCTION payment_audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'payment_audit is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER payment_audit_no_update_or_delete
    BEFORE UPDATE OR DELETE ON payment_audit
    FOR EACH ROW EXECUTE FUNCTION payment_audit_refuse_change();

CREATE TRIGGER payment_audit_no_truncate
    BEFORE TRUNCATE ON payment_audit
    FOR EACH STATEMENT EXECUTE FUNCTION payment_audit_refuse_change();
