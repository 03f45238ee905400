-- +goose Up
-- Models at run time: an admin adds, changes and retires models without a
-- release. Retiring keeps the row and its price history (price versions and
-- usage logs name it): retired_at says since when requests for it answer
-- model_retired, replacement names the model to use instead (NULL: none).
ALTER TABLE models ADD COLUMN retired_at TIMESTAMP;
ALTER TABLE models ADD COLUMN replacement TEXT;

-- Admin-defined names that resolve like a model's bare name. They live in a
-- table of their own rather than in a JSON column on models because the
-- primary key makes an alias name one model across the whole database: two
-- admins on two replicas cannot both claim it, which a per-model JSON list
-- could not promise without locking every row.
CREATE TABLE model_aliases (
    alias      TEXT PRIMARY KEY,
    model_id   TEXT NOT NULL REFERENCES models (id),
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX model_aliases_model ON model_aliases (model_id);

-- +goose Down
DROP TABLE model_aliases;
ALTER TABLE models DROP COLUMN replacement;
ALTER TABLE models DROP COLUMN retired_at;
