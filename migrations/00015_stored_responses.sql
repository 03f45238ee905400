-- +goose Up
-- Responses of POST /v1/responses kept for GET /v1/responses/{id}, its
-- input_items, and previous_response_id (store true, the default). A row
-- belongs to its account: any key of the account reads it, no other
-- account does. Reads ignore rows past expires_at (created_at +
-- BEAVER_RESPONSES_RETENTION_DAYS); the worker's LeaseSweepWorkflow purges
-- them every minute (hence the index).
--
-- input is this turn's own input items as given (a JSON array; a string
-- input is stored as one user message item, and items get ids where they
-- had none, for input_items' pagination); response is the full Response
-- object as answered (JSON), whose output items are the turn's answer.
-- previous_response_id links the chain: a turn's prompt is every earlier
-- turn's input and output, oldest first, then its own input. instructions
-- are not inherited, so the Response's own copy is enough. api_key_id is
-- the key that created it (null for a session); not a foreign key, as a
-- deleted key must not take the account's responses with it.
CREATE TABLE stored_responses (
    id                   TEXT PRIMARY KEY,
    account_id           TEXT NOT NULL REFERENCES accounts (id),
    api_key_id           TEXT NULL,
    model                TEXT NOT NULL,
    status               TEXT NOT NULL,
    previous_response_id TEXT NULL,
    input                TEXT NOT NULL,
    response             TEXT NOT NULL,
    created_at           TIMESTAMP NOT NULL,
    expires_at           TIMESTAMP NOT NULL
);
CREATE INDEX stored_responses_expires_at ON stored_responses (expires_at);

-- +goose Down
DROP TABLE stored_responses;
