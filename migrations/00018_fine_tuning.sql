-- +goose Up
-- Fine-tuning jobs relayed to OpenAI (POST /v1/fine_tuning/jobs). The id is
-- the upstream job's (ftjob-...); a job belongs to the account that created
-- it, and no other account sees it.
--
-- held_micros is the job's durable hold: admission adds it to the
-- account's reserved_micros in the same transaction that inserts the row
-- (so it survives restarts for as long as the job trains, unlike the
-- billing engine's in-memory holds and leases), and the settlement takes it
-- back out, also in one transaction with the charge, exactly once: the
-- settlement is the conditional update that sets settled_at where it is
-- NULL. The training price (per 1M training tokens, base and marked up,
-- and the markup per-mille) is the one the job was admitted under.
-- hold_tokens is the admission's upper bound of the trained tokens
-- (the training file's token bound × the epochs bound). upstream is the
-- last job object OpenAI answered (JSON), as relayed to the client.
CREATE TABLE fine_tuning_jobs (
    id                     TEXT PRIMARY KEY,
    account_id             TEXT NOT NULL REFERENCES accounts (id),
    api_key_id             TEXT NULL,
    model                  TEXT NOT NULL,
    base_model             TEXT NOT NULL,
    training_file          TEXT NOT NULL,
    status                 TEXT NOT NULL,
    hold_tokens            BIGINT NOT NULL,
    held_micros            BIGINT NOT NULL,
    training_base_micros   BIGINT NOT NULL,
    training_price_micros  BIGINT NOT NULL,
    markup_permille        BIGINT NOT NULL,
    price_version          BIGINT NOT NULL,
    trained_tokens         BIGINT NULL,
    fine_tuned_model       TEXT NULL,
    charged_micros         BIGINT NOT NULL DEFAULT 0,
    uncollected_micros     BIGINT NOT NULL DEFAULT 0,
    upstream               TEXT NOT NULL,
    created_at             TIMESTAMP NOT NULL,
    updated_at             TIMESTAMP NOT NULL,
    settled_at             TIMESTAMP NULL
);
CREATE INDEX fine_tuning_jobs_account ON fine_tuning_jobs (account_id, created_at);

-- Training files uploaded to OpenAI through Beaver (purpose fine-tune). The
-- id is the upstream file's (file-...); a job may train only on files of
-- its own account. OpenAI does not let anyone download a fine-tune file,
-- so what admission needs of it is counted at upload: its examples and
-- token_bound, an upper bound of the tokens one epoch trains on.
CREATE TABLE fine_tuning_files (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    filename     TEXT NOT NULL,
    bytes        BIGINT NOT NULL,
    examples     BIGINT NOT NULL,
    token_bound  BIGINT NOT NULL,
    upstream     TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL
);
CREATE INDEX fine_tuning_files_account ON fine_tuning_files (account_id);

-- A fine-tuned model is a private catalog model: only its owner's account
-- sees it (GET /v1/models) and may use it; everyone else gets 404
-- model_not_found. NULL = a public model, as every model was before.
ALTER TABLE models ADD COLUMN owner_account_id TEXT NULL;

-- +goose Down
ALTER TABLE models DROP COLUMN owner_account_id;
DROP TABLE fine_tuning_files;
DROP TABLE fine_tuning_jobs;
