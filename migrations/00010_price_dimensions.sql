-- +goose Up
-- Price dimensions beyond input, output, request fee, cache reads and
-- reasoning: cache writes (default lifetime and one hour), per-call tool
-- fees, a long-context tier and time-of-day windows. They are stored as one
-- JSON document per row (see internal/catalog/extra.go): integer micro-USD,
-- NULL when the model prices none of them.
ALTER TABLE models ADD COLUMN base_extra_prices TEXT;
ALTER TABLE model_prices ADD COLUMN base_extra_prices TEXT;
ALTER TABLE model_prices ADD COLUMN extra_prices TEXT;

-- What a request was charged for in each dimension: its cache writes, and
-- the charge broken down by dimension (pricing.Details as JSON).
ALTER TABLE usage_logs ADD COLUMN cache_write_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_logs ADD COLUMN cache_write_1h_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_logs ADD COLUMN cost_details TEXT;

-- +goose Down
ALTER TABLE usage_logs DROP COLUMN cost_details;
ALTER TABLE usage_logs DROP COLUMN cache_write_1h_tokens;
ALTER TABLE usage_logs DROP COLUMN cache_write_tokens;
ALTER TABLE model_prices DROP COLUMN extra_prices;
ALTER TABLE model_prices DROP COLUMN base_extra_prices;
ALTER TABLE models DROP COLUMN base_extra_prices;
