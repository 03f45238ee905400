-- +goose Up
CREATE TABLE accounts (
    id                             TEXT PRIMARY KEY,
    email                          TEXT NOT NULL,
    email_lower                    TEXT NOT NULL UNIQUE,
    name                           TEXT NOT NULL DEFAULT '',
    password_hash                  TEXT NOT NULL,
    role                           TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    plan                           TEXT NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'pro', 'enterprise')),
    active                         BOOLEAN NOT NULL DEFAULT TRUE,
    email_verified                 BOOLEAN NOT NULL DEFAULT FALSE,
    flagged                        BOOLEAN NOT NULL DEFAULT FALSE,
    -- balance = sum of ledger entries; reserved = sum of this account's leases.
    balance_micros                 BIGINT NOT NULL DEFAULT 0 CHECK (balance_micros >= 0),
    reserved_micros                BIGINT NOT NULL DEFAULT 0 CHECK (reserved_micros >= 0),
    low_balance_threshold_micros   BIGINT NOT NULL DEFAULT 1000000 CHECK (low_balance_threshold_micros >= 0),
    rpm_limit_override             BIGINT CHECK (rpm_limit_override >= 0),
    monthly_request_limit_override BIGINT CHECK (monthly_request_limit_override >= 0),
    usage_month                    TEXT NOT NULL DEFAULT '',
    monthly_requests               BIGINT NOT NULL DEFAULT 0 CHECK (monthly_requests >= 0),
    stripe_customer_id             TEXT,
    created_at                     TIMESTAMP NOT NULL,
    updated_at                     TIMESTAMP NOT NULL,
    CHECK (reserved_micros <= balance_micros)
);

CREATE TABLE api_keys (
    id                 TEXT PRIMARY KEY,
    account_id         TEXT NOT NULL REFERENCES accounts (id),
    name               TEXT NOT NULL DEFAULT '',
    prefix             TEXT NOT NULL,
    key_hash           TEXT NOT NULL UNIQUE,
    active             BOOLEAN NOT NULL DEFAULT TRUE,
    expires_at         TIMESTAMP,
    last_used_at       TIMESTAMP,
    deleted_at         TIMESTAMP,
    spend_limit_micros BIGINT CHECK (spend_limit_micros >= 0),
    limit_reset        TEXT NOT NULL DEFAULT 'none' CHECK (limit_reset IN ('none', 'daily', 'weekly', 'monthly')),
    rpm_limit          BIGINT CHECK (rpm_limit >= 0),
    allowed_models     TEXT,
    allowed_ips        TEXT,
    -- spent in the current limit period, and held by leases against the limit.
    spent_micros       BIGINT NOT NULL DEFAULT 0 CHECK (spent_micros >= 0),
    reserved_micros    BIGINT NOT NULL DEFAULT 0 CHECK (reserved_micros >= 0),
    period_start       TIMESTAMP,
    created_at         TIMESTAMP NOT NULL,
    updated_at         TIMESTAMP NOT NULL
);
CREATE INDEX api_keys_account ON api_keys (account_id);

CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    created_at    TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP NOT NULL,
    revoked_at    TIMESTAMP,
    revoke_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_account ON sessions (account_id);

CREATE TABLE refresh_tokens (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- Single-use tokens for email verification and password reset, stored hashed.
CREATE TABLE auth_tokens (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify_email', 'password_reset')),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP
);
CREATE INDEX auth_tokens_account ON auth_tokens (account_id, purpose);

-- Append-only: every balance change is one row; reference makes each change
-- happen at most once (request id, Stripe session id, idempotency key).
CREATE TABLE ledger_entries (
    id                   TEXT PRIMARY KEY,
    account_id           TEXT NOT NULL REFERENCES accounts (id),
    type                 TEXT NOT NULL CHECK (type IN ('topup', 'charge', 'refund', 'adjustment')),
    amount_micros        BIGINT NOT NULL,
    balance_after_micros BIGINT NOT NULL CHECK (balance_after_micros >= 0),
    reference            TEXT NOT NULL UNIQUE,
    description          TEXT NOT NULL DEFAULT '',
    created_at           TIMESTAMP NOT NULL,
    CHECK ((type = 'charge' AND amount_micros < 0) OR type <> 'charge')
);
CREATE INDEX ledger_entries_account ON ledger_entries (account_id, id);

CREATE TABLE usage_logs (
    id                   TEXT PRIMARY KEY,
    request_id           TEXT NOT NULL DEFAULT '',
    account_id           TEXT NOT NULL REFERENCES accounts (id),
    api_key_id           TEXT,
    model                TEXT NOT NULL,
    provider             TEXT NOT NULL,
    price_version        BIGINT NOT NULL,
    prompt_tokens        BIGINT NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens    BIGINT NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    cached_tokens        BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens     BIGINT NOT NULL DEFAULT 0,
    usage_estimated      BOOLEAN NOT NULL DEFAULT FALSE,
    provider_cost_micros BIGINT NOT NULL DEFAULT 0 CHECK (provider_cost_micros >= 0),
    markup_micros        BIGINT NOT NULL DEFAULT 0,
    charged_micros       BIGINT NOT NULL DEFAULT 0 CHECK (charged_micros >= 0),
    uncollected_micros   BIGINT NOT NULL DEFAULT 0 CHECK (uncollected_micros >= 0),
    balance_after_micros BIGINT NOT NULL DEFAULT 0,
    streamed             BOOLEAN NOT NULL DEFAULT FALSE,
    cancelled            BOOLEAN NOT NULL DEFAULT FALSE,
    error                TEXT,
    latency_ms           BIGINT NOT NULL DEFAULT 0,
    created_at           TIMESTAMP NOT NULL
);
CREATE INDEX usage_logs_account_time ON usage_logs (account_id, created_at);

CREATE TABLE models (
    id                 TEXT PRIMARY KEY,
    provider           TEXT NOT NULL,
    provider_model     TEXT NOT NULL,
    name               TEXT NOT NULL,
    context_length     BIGINT NOT NULL DEFAULT 0,
    max_output_tokens  BIGINT NOT NULL DEFAULT 4096 CHECK (max_output_tokens > 0),
    capabilities       TEXT NOT NULL DEFAULT '[]',
    active             BOOLEAN NOT NULL DEFAULT TRUE,
    base_input_micros  BIGINT NOT NULL CHECK (base_input_micros >= 0),
    base_output_micros BIGINT NOT NULL CHECK (base_output_micros >= 0),
    base_fee_micros    BIGINT NOT NULL DEFAULT 0 CHECK (base_fee_micros >= 0),
    created_at         TIMESTAMP NOT NULL,
    updated_at         TIMESTAMP NOT NULL
);

-- Each price computation is a new version shared by all models.
CREATE TABLE price_versions (
    version    BIGINT PRIMARY KEY,
    reason     TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE model_prices (
    model_id           TEXT NOT NULL REFERENCES models (id),
    version            BIGINT NOT NULL REFERENCES price_versions (version),
    base_input_micros  BIGINT NOT NULL,
    base_output_micros BIGINT NOT NULL,
    base_fee_micros    BIGINT NOT NULL,
    input_micros       BIGINT NOT NULL CHECK (input_micros >= base_input_micros),
    output_micros      BIGINT NOT NULL CHECK (output_micros >= base_output_micros),
    fee_micros         BIGINT NOT NULL CHECK (fee_micros >= base_fee_micros),
    category           TEXT NOT NULL,
    markup_permille    BIGINT NOT NULL,
    created_at         TIMESTAMP NOT NULL,
    PRIMARY KEY (model_id, version)
);

-- An instance's lease on an account's balance (and, for API keys, on the
-- key's spend limit: api_keys.reserved_micros). Requests hold against leases
-- in memory; the sweeper returns expired leases of dead instances.
CREATE TABLE balance_leases (
    id            TEXT PRIMARY KEY,
    instance_id   TEXT NOT NULL,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    api_key_id    TEXT NOT NULL DEFAULT '',
    amount_micros BIGINT NOT NULL CHECK (amount_micros >= 0),
    expires_at    TIMESTAMP NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    UNIQUE (instance_id, account_id, api_key_id)
);
CREATE INDEX balance_leases_expiry ON balance_leases (expires_at);

-- +goose Down
DROP TABLE balance_leases;
DROP TABLE model_prices;
DROP TABLE price_versions;
DROP TABLE models;
DROP TABLE usage_logs;
DROP TABLE ledger_entries;
DROP TABLE auth_tokens;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE api_keys;
DROP TABLE accounts;
