-- +goose Up
-- Auto-recharge settings, one row per account: charge the saved card for
-- amount_micros when a charge takes the balance below threshold_micros.
CREATE TABLE auto_recharge (
    account_id           TEXT PRIMARY KEY REFERENCES accounts (id),
    enabled              BOOLEAN NOT NULL DEFAULT FALSE,
    threshold_micros     BIGINT NOT NULL DEFAULT 0 CHECK (threshold_micros >= 0),
    amount_micros        BIGINT NOT NULL DEFAULT 0 CHECK (amount_micros >= 0),
    stripe_customer_id   TEXT NOT NULL DEFAULT '',
    payment_method_id    TEXT NOT NULL DEFAULT '',
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    -- the attempt (workflow id:run id) last counted as a failure, so a
    -- retried activity counts it once
    last_attempt_key     TEXT NOT NULL DEFAULT '',
    last_error           TEXT NOT NULL DEFAULT '',
    disabled_reason      TEXT NOT NULL DEFAULT '',
    updated_at           TIMESTAMP NOT NULL
);

-- Refunds of card top-ups: made by an admin through Beaver (source admin)
-- or found in a charge.refunded webhook (source stripe, e.g. the Dashboard).
-- amount_micros was debited from the ledger; shortfall_micros was refunded
-- at Stripe but could not be debited (already spent).
CREATE TABLE refunds (
    id               TEXT PRIMARY KEY,
    request_key      TEXT NOT NULL UNIQUE,
    top_up_id        TEXT NOT NULL REFERENCES top_ups (id),
    account_id       TEXT NOT NULL REFERENCES accounts (id),
    stripe_refund_id TEXT UNIQUE,
    amount_micros    BIGINT NOT NULL CHECK (amount_micros >= 0),
    shortfall_micros BIGINT NOT NULL DEFAULT 0 CHECK (shortfall_micros >= 0),
    source           TEXT NOT NULL CHECK (source IN ('admin', 'stripe')),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'rejected')),
    ledger_entry_id  TEXT NOT NULL DEFAULT '',
    failure_reason   TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);
CREATE INDEX refunds_top_up ON refunds (top_up_id);
CREATE INDEX refunds_account ON refunds (account_id, created_at);

-- Disputes (chargebacks) opened on card top-ups.
CREATE TABLE disputes (
    id                TEXT PRIMARY KEY,
    account_id        TEXT NOT NULL REFERENCES accounts (id),
    top_up_id         TEXT NOT NULL DEFAULT '',
    charge_id         TEXT NOT NULL DEFAULT '',
    payment_intent_id TEXT NOT NULL DEFAULT '',
    amount_micros     BIGINT NOT NULL DEFAULT 0,
    reason            TEXT NOT NULL DEFAULT '',
    status            TEXT NOT NULL DEFAULT '',
    admin_notified    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at        TIMESTAMP NOT NULL
);
CREATE INDEX disputes_account ON disputes (account_id);

-- +goose Down
DROP INDEX disputes_account;
DROP TABLE disputes;
DROP INDEX refunds_account;
DROP INDEX refunds_top_up;
DROP TABLE refunds;
DROP TABLE auto_recharge;
