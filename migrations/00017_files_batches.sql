-- +goose Up
-- Files of POST /v1/files (OpenAI's Files API) and batches of POST
-- /v1/batches run by BatchWorkflow. A file belongs to its account; its
-- bytes live in a files.Store: by default in file_chunks (base64 text of
-- up to 1 MiB each, in seq order: portable and streamed, never held whole),
-- or in a directory (BEAVER_FILES_DIR), when file_chunks stays empty.
CREATE TABLE files (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    purpose    TEXT NOT NULL,
    filename   TEXT NOT NULL,
    bytes      BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NULL
);
CREATE INDEX files_account ON files (account_id, created_at);

CREATE TABLE file_chunks (
    file_id TEXT NOT NULL,
    seq     BIGINT NOT NULL,
    data    TEXT NOT NULL,
    PRIMARY KEY (file_id, seq)
);

-- A batch: its owner (the account, and the API key that created it, whose
-- policy its lines keep; not a foreign key: a deleted key fails the lines
-- left), OpenAI's Batch object's fields, and its request counts, kept up
-- to date as lines finish. errors is OpenAI's errors object (JSON) of a
-- batch whose input failed validation; metadata a JSON object.
CREATE TABLE batches (
    id                TEXT PRIMARY KEY,
    account_id        TEXT NOT NULL REFERENCES accounts (id),
    api_key_id        TEXT NULL,
    endpoint          TEXT NOT NULL,
    input_file_id     TEXT NOT NULL,
    completion_window TEXT NOT NULL,
    status            TEXT NOT NULL,
    output_file_id    TEXT NULL,
    error_file_id     TEXT NULL,
    errors            TEXT NULL,
    metadata          TEXT NULL,
    total             BIGINT NOT NULL DEFAULT 0,
    completed         BIGINT NOT NULL DEFAULT 0,
    failed            BIGINT NOT NULL DEFAULT 0,
    created_at        TIMESTAMP NOT NULL,
    expires_at        TIMESTAMP NOT NULL,
    in_progress_at    TIMESTAMP NULL,
    finalizing_at     TIMESTAMP NULL,
    completed_at      TIMESTAMP NULL,
    failed_at         TIMESTAMP NULL,
    expired_at        TIMESTAMP NULL,
    cancelling_at     TIMESTAMP NULL,
    cancelled_at      TIMESTAMP NULL
);
CREATE INDEX batches_account ON batches (account_id, created_at);

-- One line of a batch's input, copied at creation (validated), and what
-- became of it. status: pending → recorded (the upstream answer kept in
-- answer, with the model that gave it, before its charge) → succeeded |
-- failed | expired. generation_id is the line's usage log id, fixed in
-- advance, so a retried line sees whether its charge committed. output is
-- the output (or error) file's line for it.
CREATE TABLE batch_lines (
    batch_id      TEXT NOT NULL,
    line_index    BIGINT NOT NULL,
    custom_id     TEXT NOT NULL,
    body          TEXT NOT NULL,
    generation_id TEXT NOT NULL,
    status        TEXT NOT NULL,
    model         TEXT NULL,
    answer        TEXT NULL,
    output        TEXT NULL,
    PRIMARY KEY (batch_id, line_index)
);

-- +goose Down
DROP TABLE batch_lines;
DROP TABLE batches;
DROP TABLE file_chunks;
DROP TABLE files;
