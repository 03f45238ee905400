-- +goose Up
-- Sign-in with an identity provider (internal/idp). An identity is one
-- account at Google, GitHub or the configured OIDC provider, by its stable
-- subject there (never by its email, which can change hands); it belongs
-- to one Beaver account. email and email_verified are what the provider
-- said at the last sign-in, shown to the user.
CREATE TABLE identities (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    provider       TEXT NOT NULL,
    subject        TEXT NOT NULL,
    email          TEXT NOT NULL DEFAULT '',
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     TIMESTAMP NOT NULL,
    last_used_at   TIMESTAMP,
    UNIQUE (provider, subject)
);
CREATE INDEX identities_account ON identities (account_id);

-- The single-use code an identity provider's callback hands the dashboard
-- in the URL fragment, which it exchanges for session tokens
-- (POST /auth/oauth/exchange); stored as its keyed hash, valid a minute.
CREATE TABLE oauth_login_codes (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    provider   TEXT NOT NULL,
    code_hash  TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP
);
CREATE INDEX oauth_login_codes_expiry ON oauth_login_codes (expires_at);

-- +goose Down
DROP TABLE oauth_login_codes;
DROP TABLE identities;
