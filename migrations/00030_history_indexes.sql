-- +goose Up
-- GET /api-keys/{id} sums one key's day rows over its spend-limit period
-- (its whole life when the limit never resets). The primary key leads with
-- (account_id, day), so that read walked every key's and model's rows of
-- the account over the period; this index finds the key's rows alone.
-- Settlement only touches it when a (day, key, model) row is first made.
CREATE INDEX daily_usage_key_day ON daily_usage (api_key_id, day);

-- GET /api-keys pages an account's keys newest first by keyset on id: a
-- range of this index instead of sorting every key of the account.
CREATE INDEX api_keys_account_id ON api_keys (account_id, id);

-- +goose Down
DROP INDEX api_keys_account_id;
DROP INDEX daily_usage_key_day;
