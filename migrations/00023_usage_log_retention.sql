-- +goose Up
-- Usage-log retention (BEAVER_USAGE_LOG_RETENTION_DAYS) deletes the oldest
-- usage logs in batches by created_at; it never goes past the oldest batch
-- or background response still running, whose retries look their lines'
-- usage logs up to know whether they were charged (the partial indexes
-- find those at once). accounts (created_at, id) is GET /admin/accounts'
-- keyset order.
CREATE INDEX usage_logs_created ON usage_logs (created_at);
CREATE INDEX accounts_created ON accounts (created_at, id);
CREATE INDEX batches_unfinished ON batches (created_at)
    WHERE status IN ('validating', 'in_progress', 'finalizing', 'cancelling');
CREATE INDEX stored_responses_unfinished ON stored_responses (created_at)
    WHERE status IN ('queued', 'in_progress');

-- +goose Down
DROP INDEX stored_responses_unfinished;
DROP INDEX batches_unfinished;
DROP INDEX accounts_created;
DROP INDEX usage_logs_created;
