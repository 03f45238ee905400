-- +goose Up
-- Two-factor sign-in (TOTP) and passkeys (WebAuthn).
--
-- accounts.totp_secret is the confirmed TOTP secret, sealed (AES-GCM under
-- BEAVER_SECRET, auth.Keyed.Seal); totp_pending_secret the one enrolled
-- but not yet confirmed with a code. two_factor is true once confirmed.
-- totp_last_step is the last time step (Unix seconds / 30) a code was
-- accepted for: a code is accepted only for a later step, by a conditional
-- update, so a used code cannot be replayed within its window.
ALTER TABLE accounts ADD COLUMN two_factor BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE accounts ADD COLUMN totp_secret TEXT NULL;
ALTER TABLE accounts ADD COLUMN totp_pending_secret TEXT NULL;
ALTER TABLE accounts ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0;

-- Ten single-use recovery codes per account, stored as keyed hashes; a new
-- confirmation replaces them all, disabling two-factor deletes them.
CREATE TABLE recovery_codes (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    code_hash  TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP NULL
);
CREATE INDEX recovery_codes_account ON recovery_codes (account_id);

-- Short-lived single-use challenges between two steps of a sign-in or a
-- passkey ceremony: kind "mfa" (the password was right, a code completes
-- it), "passkey_register" or "passkey_login" (data holds the WebAuthn
-- session data: challenge, user, allowed credentials). Only the token's
-- keyed hash is stored. account_id is null for a passkey sign-in, whose
-- account is known only from the credential. attempts counts wrong codes.
CREATE TABLE auth_challenges (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    account_id TEXT NULL REFERENCES accounts (id),
    data       TEXT NOT NULL DEFAULT '',
    attempts   BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP NULL
);
CREATE INDEX auth_challenges_expires_at ON auth_challenges (expires_at);

-- Passkeys: credential_id is the raw credential id, base64url (unique over
-- every account: one authenticator credential belongs to one account);
-- credential is go-webauthn's Credential as JSON (public key, sign count,
-- flags, transports). No secret is stored.
CREATE TABLE passkeys (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    credential_id TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    credential    TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    last_used_at  TIMESTAMP NULL
);
CREATE INDEX passkeys_account ON passkeys (account_id);

-- +goose Down
DROP TABLE passkeys;
DROP TABLE auth_challenges;
DROP TABLE recovery_codes;
ALTER TABLE accounts DROP COLUMN totp_last_step;
ALTER TABLE accounts DROP COLUMN totp_pending_secret;
ALTER TABLE accounts DROP COLUMN totp_secret;
ALTER TABLE accounts DROP COLUMN two_factor;
