// Package backup copies Beaver's database to a file and back (`beaver
// backup`, `beaver restore`, the daily schedule on SQLite).
//
// SQLite: `VACUUM INTO` writes a consistent copy from one read transaction
// while the gateway goes on writing (WAL readers never block the writer).
// PostgreSQL: `pg_dump --format=custom`, which reads one snapshot. Either
// way the copy is written under a temporary name, checked (`PRAGMA
// integrity_check`, `pg_restore --list`), synced to disk and only then
// renamed to its final name, beaver-YYYYMMDDTHHMMSSZ.sqlite or .dump: a
// file with a backup's name is always a whole, checked backup.
package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/beaver-gateway/beaver/internal/db"
)

// Extensions of the two kinds of backup.
const (
	ExtSQLite   = ".sqlite"
	ExtPostgres = ".dump"
)

const stampLayout = "20060102T150405Z"

// namePattern matches the files Backup writes; retention deletes nothing
// else.
var namePattern = regexp.MustCompile(`^beaver-(\d{8}T\d{6}Z)\.(sqlite|dump)$`)

// FileName is the name of a backup of dialect taken at t (UTC, to the
// second).
func FileName(dialect string, t time.Time) string {
	ext := ExtSQLite
	if dialect == db.Postgres {
		ext = ExtPostgres
	}
	return "beaver-" + t.UTC().Format(stampLayout) + ext
}

// File is one backup found in a directory.
type File struct {
	Path  string
	Taken time.Time // from its name
}

// List returns the backups in dir (files named as Backup names them),
// newest first. A missing dir holds none.
func List(dir string) ([]File, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("backup: list %s: %w", dir, err)
	}
	var out []File
	for _, e := range entries {
		m := namePattern.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			continue
		}
		t, err := time.Parse(stampLayout, m[1])
		if err != nil {
			continue
		}
		out = append(out, File{Path: filepath.Join(dir, e.Name()), Taken: t})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Taken.Equal(out[j].Taken) {
			return out[i].Taken.After(out[j].Taken)
		}
		return out[i].Path > out[j].Path
	})
	return out, nil
}

// OfDay returns a backup in dir taken on day's UTC date, if there is one
// (the daily schedule's idempotence: a retry, or a second run that day,
// finds it and writes no other).
func OfDay(dir string, day time.Time) (string, bool, error) {
	files, err := List(dir)
	if err != nil {
		return "", false, err
	}
	y, m, d := day.UTC().Date()
	for _, f := range files {
		if fy, fm, fd := f.Taken.Date(); fy == y && fm == m && fd == d {
			return f.Path, true, nil
		}
	}
	return "", false, nil
}

// tmpPattern matches a backup being written (or left by a crash).
var tmpPattern = regexp.MustCompile(`^\.beaver-\d{8}T\d{6}Z\.(sqlite|dump)\.tmp$`)

// staleTmp is the age past which a temporary file is a crashed run's, not
// a running backup's.
const staleTmp = 24 * time.Hour

// Prune deletes all but the newest keep backups in dir (keep ≤ 0: deletes
// none), and temporary files that crashed runs left more than a day ago;
// it returns the paths it deleted. Other files are left alone.
func Prune(dir string, keep int) ([]string, error) {
	var deleted []string
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			if !tmpPattern.MatchString(e.Name()) {
				continue
			}
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleTmp {
				p := filepath.Join(dir, e.Name())
				if os.Remove(p) == nil {
					deleted = append(deleted, p)
				}
			}
		}
	}
	if keep <= 0 {
		return deleted, nil
	}
	files, err := List(dir)
	if err != nil || len(files) <= keep {
		return deleted, err
	}
	for _, f := range files[keep:] {
		if err := os.Remove(f.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return deleted, fmt.Errorf("backup: retention: %w", err)
		}
		deleted = append(deleted, f.Path)
	}
	return deleted, nil
}

// Backup writes a backup of d (whose URL is databaseURL: pg_dump connects
// by it) into dir, named for now, and returns its path. It runs beside a
// gateway that keeps writing; the copy holds exactly what was committed
// when its read began.
func Backup(ctx context.Context, d *db.DB, databaseURL, dir string, now time.Time) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("backup: create %s: %w", dir, err)
	}
	final := filepath.Join(dir, FileName(d.Dialect, now))
	tmp := filepath.Join(dir, "."+filepath.Base(final)+".tmp")
	_ = os.Remove(tmp) // a crashed earlier attempt's
	var err error
	switch d.Dialect {
	case db.SQLite:
		err = sqliteBackup(ctx, d, tmp)
	case db.Postgres:
		err = pgDump(ctx, databaseURL, tmp)
	default:
		err = fmt.Errorf("backup: unknown database dialect %q", d.Dialect)
	}
	if err == nil {
		err = syncFile(tmp)
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	return final, nil
}

// sqliteBackup copies the database into tmp with VACUUM INTO (one read
// transaction: a consistent snapshot; writers go on meanwhile) and checks
// the copy.
func sqliteBackup(ctx context.Context, d *db.DB, tmp string) error {
	if err := d.WithContext(ctx).Exec("VACUUM INTO ?", tmp).Error; err != nil {
		return fmt.Errorf("backup: sqlite VACUUM INTO: %w", err)
	}
	return sqliteIntegrity(ctx, tmp)
}

// sqliteIntegrity runs PRAGMA integrity_check on the SQLite file at path.
func sqliteIntegrity(ctx context.Context, path string) error {
	conn, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return fmt.Errorf("backup: open %s: %w", path, err)
	}
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("backup: integrity check of %s: %w", path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return fmt.Errorf("backup: integrity check of %s: %w", path, err)
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("backup: integrity check of %s: %w", path, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("backup: %s fails the integrity check: %s", path, strings.Join(problems, "; "))
	}
	return nil
}

// syncFile flushes path's bytes to disk.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("backup: sync %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("backup: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("backup: sync %s: %w", path, err)
	}
	return nil
}

// syncDir flushes a directory's entries (a rename) to disk.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("backup: sync %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("backup: sync %s: %w", dir, err)
	}
	return nil
}
