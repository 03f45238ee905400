-- +goose Up
-- Revocations reach every replica before their answer (internal/auth,
-- coherence.go). A change to a role, an account's status, a key or a
-- session takes the next epoch from auth_epoch and records what it made
-- stale in auth_changes, in the transaction that makes the change: the
-- UPDATE of the one counter row holds its lock until commit, so epochs
-- commit in order and a reader that sees epoch n sees every epoch before it.
-- Each replica reads the changes past the last epoch it applied, drops those
-- cache entries, then records that epoch in auth_replicas with a heartbeat
-- in milliseconds of the database's clock (one clock for every replica).
-- The replica that made a change answers once every replica with a recent
-- heartbeat has acknowledged its epoch.
CREATE TABLE auth_epoch (
    id    INTEGER PRIMARY KEY,
    epoch BIGINT NOT NULL
);
INSERT INTO auth_epoch (id, epoch) VALUES (1, 0);

-- targets: the invalidation messages ("key:<id>", "account:<id>",
-- "session:<id>"), one a line. Rows older than a few minutes are pruned,
-- except the newest, so that a gap in epochs shows a reader it fell behind.
CREATE TABLE auth_changes (
    epoch      BIGINT PRIMARY KEY,
    targets    TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE auth_replicas (
    instance_id  TEXT PRIMARY KEY,
    acked_epoch  BIGINT NOT NULL,
    heartbeat_ms BIGINT NOT NULL
);

-- +goose Down
DROP TABLE auth_replicas;
DROP TABLE auth_changes;
DROP TABLE auth_epoch;
