-- +goose Up
-- The last model discovery run per provider (ModelDiscoveryWorkflow, daily):
-- what the provider's model list served, which active catalog models of the
-- provider it no longer serves (catalog ids) and which models it serves that
-- the catalog lacks. The lists are JSON arrays of strings. error is the last
-- listing failure (null when the list was read); a failed listing keeps the
-- lists of the run before. digest identifies what is reported (missing, new,
-- failing or not), so that admins are emailed only when it changes;
-- changed_in names the run that last changed it, so that a retried activity
-- of that run answers "changed" again.
CREATE TABLE model_discovery (
    provider_id         TEXT PRIMARY KEY,
    checked_at          TIMESTAMP NOT NULL,
    served_by_provider  TEXT NOT NULL DEFAULT '[]',
    missing_at_provider TEXT NOT NULL DEFAULT '[]',
    new_at_provider     TEXT NOT NULL DEFAULT '[]',
    error               TEXT NULL,
    digest              TEXT NOT NULL DEFAULT '',
    changed_in          TEXT NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE model_discovery;
