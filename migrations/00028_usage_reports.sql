-- +goose Up
-- Usage report emails (weekly and monthly; CONTRACT.md "Operations").
--
-- accounts.usage_reports is the account's choice: 'weekly', 'monthly',
-- 'both' or 'off' (PATCH /users/me usage_reports); every account starts
-- with 'monthly'.
ALTER TABLE accounts ADD COLUMN usage_reports TEXT NOT NULL DEFAULT 'monthly';

-- One row per report sent, written after the email went out: a second run
-- for the same account and period (a manual start, a workflow id reused
-- after retention) finds it and sends nothing. period is the report's
-- cadence and period key, e.g. 'weekly:2026-W49' or 'monthly:2026-11'.
-- The workflow id (usage-report:<account>:<period>) already keeps two
-- runs from overlapping; this row outlives the workflow's history.
CREATE TABLE usage_reports_sent (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    period     TEXT NOT NULL,
    sent_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (account_id, period)
);

-- +goose Down
DROP TABLE usage_reports_sent;
ALTER TABLE accounts DROP COLUMN usage_reports;
