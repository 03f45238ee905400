-- +goose Up
-- Upstream providers an operator added at run time (POST /admin/providers),
-- next to the six built-ins, which stay configured from the environment and
-- have no row here. internal/registry builds each replica's providers from
-- these rows and rebuilds them on a bus message.
--
-- Secrets are never stored in the clear: api_key_ciphertext is the key
-- sealed with a key derived from BEAVER_SECRET (auth.Keyed.Seal), empty when
-- there is none; api_key_env instead names an environment variable each
-- process reads the key from. headers is a JSON object of header name to
-- sealed value. base_urls and weights are JSON arrays (same length: weight i
-- belongs to base URL i); usage_semantics is a JSON object
-- ({"reasoning_outside_completion": bool, "send_reasoning_back": bool}).
CREATE TABLE providers (
    id                 TEXT PRIMARY KEY,
    format             TEXT NOT NULL,
    base_urls          TEXT NOT NULL,
    api_key_ciphertext TEXT NOT NULL DEFAULT '',
    api_key_env        TEXT NOT NULL DEFAULT '',
    headers            TEXT NOT NULL DEFAULT '{}',
    usage_semantics    TEXT NOT NULL DEFAULT '{}',
    weights            TEXT NOT NULL DEFAULT '[]',
    created_at         TIMESTAMP NOT NULL,
    updated_at         TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE providers;
