-- +goose Up
-- The audit log: append-only, one hash chain per stream. A stream is the
-- account an act concerns ("account:<id>"), or "global" for acts on no
-- account (catalog, prices, providers, sign-in attempts on unknown emails):
-- appends to different accounts never wait on each other. audit_heads
-- holds each stream's last seq and hash; an append moves it with a
-- conditional update in the transaction of the act, so appends to one
-- stream are serialized and a deleted tail is still seen by verify.
CREATE TABLE audit_entries (
    id          TEXT PRIMARY KEY,
    stream      TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    account_id  TEXT NOT NULL DEFAULT '',
    at          TIMESTAMP NOT NULL,
    actor       TEXT NOT NULL,
    subject     TEXT NOT NULL,
    action      TEXT NOT NULL,
    ip          TEXT NOT NULL DEFAULT '',
    user_agent  TEXT NOT NULL DEFAULT '',
    request_id  TEXT NOT NULL DEFAULT '',
    changes     TEXT NOT NULL DEFAULT '{}',
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE UNIQUE INDEX audit_entries_stream_seq ON audit_entries (stream, seq);
CREATE INDEX audit_entries_account ON audit_entries (account_id, id);
CREATE INDEX audit_entries_action ON audit_entries (action, id);

CREATE TABLE audit_heads (
    stream TEXT PRIMARY KEY,
    seq    BIGINT NOT NULL,
    hash   TEXT NOT NULL
);

-- Signed requests: a key with require_signature needs X-Beaver-Signature,
-- made with signing_secret (sealed under BEAVER_SECRET, never hashed: the
-- server must compute the same MAC). signature_replays remembers each
-- accepted signature until it is too old to be accepted anyway (300 s), so
-- that a replay is refused by every replica.
ALTER TABLE api_keys ADD COLUMN require_signature BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE api_keys ADD COLUMN signing_secret TEXT NULL;

CREATE TABLE signature_replays (
    signature  TEXT PRIMARY KEY,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX signature_replays_expires ON signature_replays (expires_at);

-- +goose Down
DROP TABLE signature_replays;
ALTER TABLE api_keys DROP COLUMN signing_secret;
ALTER TABLE api_keys DROP COLUMN require_signature;
DROP TABLE audit_heads;
DROP TABLE audit_entries;
