-- +goose Up
-- Background responses (POST /v1/responses with background true) live in
-- stored_responses like any stored response, with the same retention:
-- status goes queued → in_progress → completed | incomplete | failed |
-- cancelled, and response is the Response object as it stands.
--
-- job is the request as the background run needs it (the body, the stored
-- chain it continues, the client's IP and request id: responses.Job, JSON),
-- kept until the row is purged. answer and answer_model are the provider's
-- answer (a chat completion, JSON) and the model that gave it, recorded by
-- the run before it is charged: a run retried after a crash finds them and
-- charges that answer without asking the provider again, or, when the
-- usage log of the response's generation exists, charges nothing more
-- (gateway.Durable).
ALTER TABLE stored_responses ADD COLUMN background BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE stored_responses ADD COLUMN job TEXT NULL;
ALTER TABLE stored_responses ADD COLUMN answer TEXT NULL;
ALTER TABLE stored_responses ADD COLUMN answer_model TEXT NULL;

-- +goose Down
ALTER TABLE stored_responses DROP COLUMN answer_model;
ALTER TABLE stored_responses DROP COLUMN answer;
ALTER TABLE stored_responses DROP COLUMN job;
ALTER TABLE stored_responses DROP COLUMN background;
