// Package migrations holds Beaver's SQL schema as goose migrations. The same
// files run on PostgreSQL and SQLite: they use only portable types (TEXT,
// BIGINT, BOOLEAN, TIMESTAMP) and the application stores every time in UTC.
package migrations

import "embed"

// FS holds the *.sql migrations, embedded into the binary.
//
//go:embed *.sql
var FS embed.FS
