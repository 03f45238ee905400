-- +goose Up
-- Stripe webhook events already handled (deduplication of deliveries).
CREATE TABLE stripe_events (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL
);

-- Card top-ups through Stripe Checkout, one row per Checkout Session.
CREATE TABLE top_ups (
    id                  TEXT PRIMARY KEY,
    account_id          TEXT NOT NULL REFERENCES accounts (id),
    checkout_session_id TEXT NOT NULL UNIQUE,
    payment_intent_id   TEXT NOT NULL DEFAULT '',
    amount_micros       BIGINT NOT NULL CHECK (amount_micros >= 0),
    status              TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'paid', 'failed', 'expired')),
    ledger_entry_id     TEXT NOT NULL DEFAULT '',
    invoice_url         TEXT NOT NULL DEFAULT '',
    receipt_url         TEXT NOT NULL DEFAULT '',
    refunded_micros     BIGINT NOT NULL DEFAULT 0 CHECK (refunded_micros >= 0),
    created_at          TIMESTAMP NOT NULL,
    updated_at          TIMESTAMP NOT NULL
);
CREATE INDEX top_ups_account ON top_ups (account_id, created_at);

-- +goose Down
DROP INDEX top_ups_account;
DROP TABLE top_ups;
DROP TABLE stripe_events;
