// Package testenv gives tests fresh, migrated databases: a temporary SQLite
// file, and a throwaway PostgreSQL database on the server named by
// BEAVER_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test).
// The same test body runs against both, by parameter.
package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
)

// PostgresURL is the server tests create their databases on.
func PostgresURL() string {
	if u := os.Getenv("BEAVER_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

var (
	pgOnce sync.Once
	pgErr  error
)

// postgresAvailable pings the server once per test binary.
func postgresAvailable() error {
	pgOnce.Do(func() {
		conn, err := sql.Open("pgx", PostgresURL())
		if err != nil {
			pgErr = err
			return
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		pgErr = conn.PingContext(ctx)
	})
	return pgErr
}

// Dialects lists the databases to run a test against: always SQLite, and
// PostgreSQL when it answers. A missing PostgreSQL is a loud skip, and a
// failure when BEAVER_REQUIRE_POSTGRES=1 (CI sets it).
func Dialects(t testing.TB) []string {
	out := []string{db.SQLite}
	if err := postgresAvailable(); err != nil {
		if os.Getenv("BEAVER_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("PostgreSQL required but not reachable at %s: %v", PostgresURL(), err)
		}
		t.Logf("!!! SKIPPING PostgreSQL variant: %s not reachable: %v", PostgresURL(), err)
		return out
	}
	return append(out, db.Postgres)
}

// Open returns a fresh, migrated database of the given dialect, dropped when
// the test ends.
func Open(t testing.TB, dialect string) *db.DB {
	t.Helper()
	d, _ := OpenURL(t, dialect)
	return d
}

// OpenURL is Open that also returns the database URL (for a second
// instance sharing the same database, or a child process).
func OpenURL(t testing.TB, dialect string) (*db.DB, string) {
	t.Helper()
	var u string
	switch dialect {
	case db.SQLite:
		u = "sqlite://" + filepath.Join(t.TempDir(), "beaver.db")
	case db.Postgres:
		u = createPostgresDB(t)
	default:
		t.Fatalf("unknown dialect %q", dialect)
	}
	d, err := db.Open(u)
	if err != nil {
		t.Fatalf("open %s: %v", dialect, err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if err := d.MigrateUp(context.Background()); err != nil {
		t.Fatalf("migrate %s: %v", dialect, err)
	}
	return d, u
}

func createPostgresDB(t testing.TB) string {
	if err := postgresAvailable(); err != nil {
		t.Skipf("PostgreSQL not reachable: %v", err)
	}
	admin, err := sql.Open("pgx", PostgresURL())
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	name := "beaver_t_" + strings.ToLower(strings.TrimPrefix(ids.New("x"), "x_"))
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	u, _ := url.Parse(PostgresURL())
	u.Path = "/" + name
	return u.String()
}

// Name formats a subtest name for a dialect.
func Name(dialect string) string { return fmt.Sprintf("db=%s", dialect) }

// ReviveRetired puts the default catalog's retired models back in service
// in a test database: most tests were written against the 2024 catalog
// (gpt-4o-mini, claude-3-5-haiku, gemini-1.5-flash…), and the fake upstream
// answers any model name. Call it after catalog.Seed and before the first
// price computation.
func ReviveRetired(t testing.TB, d *db.DB) {
	t.Helper()
	if err := d.Exec("UPDATE models SET active = ?, retired_at = NULL WHERE retired_at IS NOT NULL", true).Error; err != nil {
		t.Fatalf("testenv: revive retired models: %v", err)
	}
}
