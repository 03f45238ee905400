-- +goose Up
-- Usage summed per account, UTC day, API key and model, written by the
-- settlement that writes the usage logs and ledger entries it sums (one
-- transaction), so the dashboards read a few hundred rows instead of
-- millions of logs. usage_logs stays the source of truth: `beaver verify`
-- checks every row against it. One table serves every view: the primary
-- key leads with (account_id, day), so an account's days are one index
-- range, and a key's or a model's rows are the same range filtered.
-- day is 'YYYY-MM-DD' text on both databases (it sorts as a date, and its
-- first 7 characters are the month); api_key_id is '' for sessions, since
-- NULLs never conflict in a unique key. charges counts the usage logs that
-- charged anything: the request charges' ledger entries.
CREATE TABLE daily_usage (
    account_id           TEXT NOT NULL REFERENCES accounts (id),
    day                  TEXT NOT NULL,
    api_key_id           TEXT NOT NULL DEFAULT '',
    model                TEXT NOT NULL,
    requests             BIGINT NOT NULL DEFAULT 0,
    charges              BIGINT NOT NULL DEFAULT 0,
    prompt_tokens        BIGINT NOT NULL DEFAULT 0,
    completion_tokens    BIGINT NOT NULL DEFAULT 0,
    cached_tokens        BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens     BIGINT NOT NULL DEFAULT 0,
    provider_cost_micros BIGINT NOT NULL DEFAULT 0,
    markup_micros        BIGINT NOT NULL DEFAULT 0,
    charged_micros       BIGINT NOT NULL DEFAULT 0,
    uncollected_micros   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, day, api_key_id, model)
);

-- An upgraded database starts consistent. Times are stored in UTC; both
-- databases render a timestamp as text starting with its date.
INSERT INTO daily_usage (account_id, day, api_key_id, model, requests, charges, prompt_tokens, completion_tokens,
    cached_tokens, reasoning_tokens, provider_cost_micros, markup_micros, charged_micros, uncollected_micros)
SELECT account_id, substr(CAST(created_at AS TEXT), 1, 10), COALESCE(api_key_id, ''), model,
    COUNT(*), SUM(CASE WHEN charged_micros > 0 THEN 1 ELSE 0 END), SUM(prompt_tokens), SUM(completion_tokens),
    SUM(cached_tokens), SUM(reasoning_tokens), SUM(provider_cost_micros), SUM(markup_micros), SUM(charged_micros),
    SUM(uncollected_micros)
FROM usage_logs
GROUP BY account_id, substr(CAST(created_at AS TEXT), 1, 10), COALESCE(api_key_id, ''), model;

-- GET /account/billing lists an account's last top-ups and refunds: with
-- millions of charges after them, walking (account_id, seq) backwards to
-- find them took seconds. Charges stay out of this index, so settlement
-- does not maintain it; queries name `type <> 'charge'` to use it.
CREATE INDEX ledger_entries_account_type_seq ON ledger_entries (account_id, type, seq) WHERE type <> 'charge';

-- +goose Down
DROP INDEX ledger_entries_account_type_seq;
DROP TABLE daily_usage;
