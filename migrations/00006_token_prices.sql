-- +goose Up
-- Prices of cached prompt tokens (cache reads) and of reasoning tokens, per
-- 1M tokens in micro-USD. On models NULL means "the same as the input
-- (output) price": a model whose provider publishes no such price follows
-- its input (output) price when an admin changes that. Each price version
-- records the resolved prices it charges; rows of versions computed before
-- this migration have NULL, read as that row's input (output) prices.
ALTER TABLE models ADD COLUMN base_cached_input_micros BIGINT CHECK (base_cached_input_micros >= 0);
ALTER TABLE models ADD COLUMN base_reasoning_micros BIGINT CHECK (base_reasoning_micros >= 0);
ALTER TABLE model_prices ADD COLUMN base_cached_input_micros BIGINT;
ALTER TABLE model_prices ADD COLUMN base_reasoning_micros BIGINT;
ALTER TABLE model_prices ADD COLUMN cached_input_micros BIGINT;
ALTER TABLE model_prices ADD COLUMN reasoning_micros BIGINT;

-- +goose Down
ALTER TABLE model_prices DROP COLUMN reasoning_micros;
ALTER TABLE model_prices DROP COLUMN cached_input_micros;
ALTER TABLE model_prices DROP COLUMN base_reasoning_micros;
ALTER TABLE model_prices DROP COLUMN base_cached_input_micros;
ALTER TABLE models DROP COLUMN base_reasoning_micros;
ALTER TABLE models DROP COLUMN base_cached_input_micros;
