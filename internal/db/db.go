// Package db opens Beaver's database (PostgreSQL or embedded SQLite) through
// one GORM code path and runs the embedded goose migrations.
package db

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	_ "modernc.org/sqlite" // pure-Go SQLite, registered as "sqlite"

	"github.com/beaver-gateway/beaver/migrations"
)

// Dialects.
const (
	Postgres = "postgres"
	SQLite   = "sqlite"
)

// DB is the GORM handle plus which dialect it speaks.
type DB struct {
	*gorm.DB
	Dialect string

	stopCheckpoints chan struct{} // SQLite only
}

// Open connects to url: "sqlite://PATH" (the directory is created) or
// "postgres://...". Every time is stored in UTC.
func Open(url string) (*DB, error) {
	cfg := &gorm.Config{
		Logger:                 logger.Discard,
		NowFunc:                func() time.Time { return time.Now().UTC() },
		SkipDefaultTransaction: true, // we open transactions where they matter
		TranslateError:         true,
	}
	switch {
	case strings.HasPrefix(url, "sqlite://"):
		path := strings.TrimPrefix(url, "sqlite://")
		if path == "" {
			return nil, fmt.Errorf("db: empty sqlite path in %q", url)
		}
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("db: create %s: %w", dir, err)
			}
		}
		// WAL lets readers run beside the one writer; IMMEDIATE transactions
		// take the write lock up front so two writers never deadlock on an
		// upgrade. synchronous=NORMAL in WAL mode: a commit survives the
		// process being killed (the OS has the WAL pages); only a power loss
		// or kernel crash can drop the last commits. Use PostgreSQL where
		// that matters.
		//
		// Automatic checkpoints are off: they run inside whichever commit
		// crosses the WAL size limit and fsync the database file there, which
		// showed as 10+ ms spikes on the request path. A background goroutine
		// checkpoints instead (see checkpointLoop).
		dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(15000)" +
			"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_pragma=wal_autocheckpoint(0)" +
			"&_txlock=immediate&_time_format=sqlite"
		g, err := gorm.Open(sqliteDialector{sqlite.Dialector{DriverName: "sqlite", DSN: dsn}}, cfg)
		if err != nil {
			return nil, fmt.Errorf("db: open sqlite %s: %w", path, err)
		}
		sqlDB, _ := g.DB()
		sqlDB.SetMaxOpenConns(8)
		sqlDB.SetMaxIdleConns(8)
		d := &DB{DB: g, Dialect: SQLite, stopCheckpoints: make(chan struct{})}
		go d.checkpointLoop()
		return d, nil
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		g, err := gorm.Open(postgres.Open(url), cfg)
		if err != nil {
			return nil, fmt.Errorf("db: open postgres: %w", err)
		}
		sqlDB, _ := g.DB()
		sqlDB.SetMaxOpenConns(32)
		sqlDB.SetMaxIdleConns(32)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
		return &DB{DB: g, Dialect: Postgres}, nil
	}
	return nil, fmt.Errorf("db: BEAVER_DATABASE_URL must start with sqlite:// or postgres://, got %q", redact(url))
}

// redact hides a password in a URL for error messages.
func redact(url string) string {
	if at := strings.Index(url, "@"); at > 0 {
		if scheme := strings.Index(url, "://"); scheme > 0 && scheme < at {
			return url[:scheme+3] + "***" + url[at:]
		}
	}
	return url
}

// checkpointLoop copies the SQLite WAL back into the database file every
// second (PASSIVE: it never waits for, or blocks, readers and writers), and
// truncates it when it has grown past 64 MiB.
func (d *DB) checkpointLoop() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-d.stopCheckpoints:
			return
		case <-t.C:
		}
		var busy, logPages, done int64
		row := d.DB.Raw("PRAGMA wal_checkpoint(PASSIVE)").Row()
		if row == nil || row.Scan(&busy, &logPages, &done) != nil {
			continue
		}
		if logPages > 16384 && done == logPages { // 4 KiB pages
			d.DB.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		}
	}
}

// Close closes the pool.
func (d *DB) Close() error {
	if d.stopCheckpoints != nil {
		select {
		case <-d.stopCheckpoints:
		default:
			close(d.stopCheckpoints)
		}
	}
	sqlDB, err := d.DB.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

func (d *DB) provider() (*goose.Provider, error) {
	sqlDB, err := d.DB.DB()
	if err != nil {
		return nil, err
	}
	dialect := goose.DialectPostgres
	if d.Dialect == SQLite {
		dialect = goose.DialectSQLite3
	}
	// Out of order: numbers are handed to branches before they merge, so a
	// database may be at a later one (00009) when an earlier one arrives
	// (00008, which only adds tables). Such migrations must not depend on
	// each other.
	return goose.NewProvider(dialect, sqlDB, migrations.FS, goose.WithAllowOutofOrder(true))
}

// MigrateUp applies every pending migration.
func (d *DB) MigrateUp(ctx context.Context) error {
	p, err := d.provider()
	if err != nil {
		return fmt.Errorf("db: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("db: migrate up: %w", err)
	}
	return nil
}

// MigrateDown rolls back to version (0 = everything).
func (d *DB) MigrateDown(ctx context.Context, version int64) error {
	p, err := d.provider()
	if err != nil {
		return fmt.Errorf("db: migrations: %w", err)
	}
	if _, err := p.DownTo(ctx, version); err != nil {
		return fmt.Errorf("db: migrate down: %w", err)
	}
	return nil
}

// MigrateStatus writes one line per migration.
func (d *DB) MigrateStatus(ctx context.Context, w io.Writer) error {
	p, err := d.provider()
	if err != nil {
		return fmt.Errorf("db: migrations: %w", err)
	}
	st, err := p.Status(ctx)
	if err != nil {
		return fmt.Errorf("db: migrate status: %w", err)
	}
	for _, s := range st {
		applied := "pending"
		if s.State == goose.StateApplied {
			applied = "applied " + s.AppliedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%05d %-40s %s\n", s.Source.Version, filepath.Base(s.Source.Path), applied)
	}
	return nil
}

// SQL exposes the raw pool (health checks).
func (d *DB) SQL() *sql.DB {
	s, _ := d.DB.DB()
	return s
}
