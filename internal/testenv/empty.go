package testenv

import (
	"path/filepath"
	"testing"

	"github.com/beaver-gateway/beaver/internal/db"
)

// EmptyURL returns the URL of a database of the given dialect that does not
// exist yet (SQLite) or has no tables (PostgreSQL: created, and dropped
// when the test ends), for tests that fill a database themselves (a
// restore).
func EmptyURL(t testing.TB, dialect string) string {
	t.Helper()
	switch dialect {
	case db.SQLite:
		return "sqlite://" + filepath.Join(t.TempDir(), "beaver.db")
	case db.Postgres:
		return createPostgresDB(t)
	}
	t.Fatalf("unknown dialect %q", dialect)
	return ""
}
