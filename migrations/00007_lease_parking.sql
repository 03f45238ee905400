-- +goose Up
-- Taking back leases other instances are not using (issue 26).
--
-- idle_since is set by the owning instance once a lease has had nothing in
-- flight for a moment ("parked"). Any instance may then take money out of
-- the row with a conditional update that bumps version; the owner, before
-- it uses the lease again, clears idle_since with an update conditional on
-- the version it parked, so a lease someone took from fails that update
-- and the owner re-reads what is left instead of spending what is gone.
-- Admission looks up the leases of one account (the index).
ALTER TABLE balance_leases ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE balance_leases ADD COLUMN idle_since TIMESTAMP;
CREATE INDEX balance_leases_account ON balance_leases (account_id);

-- +goose Down
DROP INDEX balance_leases_account;
ALTER TABLE balance_leases DROP COLUMN idle_since;
ALTER TABLE balance_leases DROP COLUMN version;
