-- +goose Up
-- Cache invalidations between processes sharing one SQLite file (the API and
-- `beaver worker`): each publish inserts a row, every process polls for rows
-- past the last id it has seen (internal/bus.Polled). PostgreSQL uses
-- LISTEN/NOTIFY instead and leaves this table empty; it exists on both so the
-- schema stays the same.
--
-- id is INTEGER PRIMARY KEY, the portable spelling: on SQLite it is the rowid,
-- assigned max(id)+1 under the write lock, so rows become visible in id
-- order. AUTOINCREMENT (SQLite only) is not needed to keep ids from being
-- reused: pruning never deletes the newest row. origin names the publishing
-- process, which has delivered its own message already. Polls read by
-- primary key; pruning (once a minute, a few minutes of rows) scans.
CREATE TABLE bus_messages (
    id         INTEGER PRIMARY KEY,
    origin     TEXT NOT NULL,
    message    TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE bus_messages;
