-- +goose Up
-- The lines of one account's batches that run at once, over every worker
-- process (BEAVER_BATCH_ACCOUNT_CONCURRENCY): a line runs while it holds
-- one of the account's slots 0..n-1. A slot is taken by inserting its row,
-- or by taking over a row whose lease ran out (its worker died), each a
-- single conditional statement; its holder renews lease_until while the
-- line runs and deletes the row when it ends.
CREATE TABLE batch_account_slots (
    account_id  TEXT NOT NULL,
    slot        BIGINT NOT NULL,
    holder      TEXT NOT NULL,
    lease_until TIMESTAMP NOT NULL,
    PRIMARY KEY (account_id, slot)
);

-- Expired files are found by their expiry (files.Sweep).
CREATE INDEX files_expires ON files (expires_at);

-- +goose Down
DROP INDEX files_expires;
DROP TABLE batch_account_slots;
