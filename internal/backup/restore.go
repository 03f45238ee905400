package backup

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/verify"
)

// ErrNotEmpty refuses a restore into a database that already holds tables.
var ErrNotEmpty = errors.New("the target database is not empty")

// Kind tells what a backup file is, by its first bytes: db.SQLite (an
// SQLite database) or db.Postgres (a pg_dump custom archive).
func Kind(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	head := make([]byte, 16)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case bytes.Equal(head, []byte("SQLite format 3\x00")):
		return db.SQLite, nil
	case bytes.HasPrefix(head, []byte("PGDMP")):
		return db.Postgres, nil
	}
	return "", fmt.Errorf("restore: %s is not a Beaver backup (neither an SQLite database nor a pg_dump custom archive)", file)
}

// Restore puts the backup in file into the database at databaseURL, which
// must be empty (absent, or without any table), then brings it to this
// version's schema (a backup of an older Beaver is migrated up) and runs
// `beaver verify`'s checks, writing their results to w. Beaver must not be
// running on the target meanwhile.
func Restore(ctx context.Context, file, databaseURL string, o verify.Options, w io.Writer) error {
	kind, err := Kind(file)
	if err != nil {
		return err
	}
	target := db.Postgres
	if strings.HasPrefix(databaseURL, "sqlite://") {
		target = db.SQLite
	}
	if kind != target {
		return fmt.Errorf("restore: %s is a %s backup but BEAVER_DATABASE_URL is a %s database", file, kind, target)
	}
	switch kind {
	case db.SQLite:
		err = sqliteRestore(ctx, file, strings.TrimPrefix(databaseURL, "sqlite://"))
	default:
		err = pgRestoreEmpty(ctx, file, databaseURL)
	}
	if err != nil {
		return err
	}
	d, err := db.Open(databaseURL)
	if err != nil {
		return fmt.Errorf("restore: open the restored database: %w", err)
	}
	defer d.Close()
	if err := d.MigrateUp(ctx); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := verify.Run(ctx, d, o, verify.Checks, w); err != nil {
		return fmt.Errorf("restore: restored, but %w", err)
	}
	return nil
}

func notEmpty(tables int64) error {
	return fmt.Errorf("restore: %w: it has %d tables; restore into a new, empty database "+
		"(or delete this one first) and point BEAVER_DATABASE_URL at it", ErrNotEmpty, tables)
}

// pgRestoreEmpty checks that the database has no tables, then restores.
func pgRestoreEmpty(ctx context.Context, file, databaseURL string) error {
	if _, err := pgTool("pg_restore"); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	d, err := db.Open(databaseURL)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	var tables int64
	err = d.WithContext(ctx).Raw(`SELECT COUNT(*) FROM information_schema.tables
		WHERE table_schema NOT IN ('pg_catalog', 'information_schema')`).Scan(&tables).Error
	d.Close()
	if err != nil {
		return fmt.Errorf("restore: inspect the target database: %w", err)
	}
	if tables > 0 {
		return notEmpty(tables)
	}
	return pgRestore(ctx, databaseURL, file)
}

// sqliteRestore checks the backup, then copies it into place at path when
// no database is there (or one without any table).
func sqliteRestore(ctx context.Context, file, path string) error {
	if err := sqliteIntegrity(ctx, file); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	tables, err := sqliteTables(ctx, path)
	if err != nil {
		return err
	}
	if tables > 0 {
		return notEmpty(tables)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("restore: create %s: %w", dir, err)
	}
	tmp := filepath.Join(dir, "."+filepath.Base(path)+".restore")
	if err := copyFile(file, tmp); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	// The empty database's files go; a stale WAL must not meet the new file.
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			_ = os.Remove(tmp)
			return fmt.Errorf("restore: %w", err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("restore: %w", err)
	}
	return syncDir(dir)
}

// sqliteTables counts the tables of the SQLite database at path (0 when
// there is no file). A database whose file is still empty may hold its
// data in its WAL: SQLite itself is asked.
func sqliteTables(ctx context.Context, path string) (int64, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if st, err := os.Stat(path + "-wal"); err == nil && st.Size() > 0 {
			return 0, fmt.Errorf("restore: %s-wal exists without its database: move it away first", path)
		}
		return 0, nil
	}
	conn, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return 0, fmt.Errorf("restore: open %s: %w", path, err)
	}
	defer conn.Close()
	var n int64
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").Scan(&n); err != nil {
		return 0, fmt.Errorf("restore: inspect %s: %w", path, err)
	}
	return n, nil
}

// copyFile copies src to dst (created, synced to disk).
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("restore: copy %s: %w", src, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("restore: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}
