-- +goose Up
-- An account's ledger entries in the order they committed. Entry ids are
-- taken before the transaction commits, so with two replicas writing one
-- account the id order is not the order balances changed in, and
-- balance_after_micros did not chain down a listing. Every writer bumps
-- accounts.ledger_seq in the same UPDATE that moves the balance: the row
-- lock that UPDATE holds until commit makes seq follow commit order.
ALTER TABLE accounts ADD COLUMN ledger_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ledger_entries ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;

-- Existing entries keep their id order, the best order there is for them.
UPDATE ledger_entries SET seq = r.n
FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY account_id ORDER BY id) AS n FROM ledger_entries) AS r
WHERE ledger_entries.id = r.id;
UPDATE accounts SET ledger_seq = (SELECT COUNT(*) FROM ledger_entries WHERE ledger_entries.account_id = accounts.id);

CREATE INDEX ledger_entries_account_seq ON ledger_entries (account_id, seq);

-- +goose Down
DROP INDEX ledger_entries_account_seq;
ALTER TABLE ledger_entries DROP COLUMN seq;
ALTER TABLE accounts DROP COLUMN ledger_seq;
