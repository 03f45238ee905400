-- +goose Up
-- A batch sent to its provider's own batch API (BEAVER_BATCH_NATIVE):
-- native_provider names the provider, native_id is its batch's id there,
-- and held_micros is the batch's durable hold, counted in the account's
-- (and key's) reserved_micros: the sum of its lines' bounds, added in the
-- transaction that marks the batch native, taken down by each line's
-- charge as it is settled and released to 0 at the end, each step a
-- conditional update.
ALTER TABLE batches ADD COLUMN native_provider TEXT NULL;
ALTER TABLE batches ADD COLUMN native_id TEXT NULL;
ALTER TABLE batches ADD COLUMN held_micros BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE batches DROP COLUMN held_micros;
ALTER TABLE batches DROP COLUMN native_id;
ALTER TABLE batches DROP COLUMN native_provider;
