package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/backup"
	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/testenv"
)

// beaver backup prints the file it wrote and keeps the newest
// BEAVER_BACKUP_KEEP; beaver restore puts it into an empty database and
// verifies it, and refuses a database that has tables.
func TestBackupAndRestoreCommands(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			if _, err := exec.LookPath("pg_dump"); err != nil && dialect == db.Postgres && os.Getenv("BEAVER_REQUIRE_POSTGRES") != "1" {
				t.Skip("pg_dump not on PATH")
			}
			ctx := context.Background()
			_, url := testenv.OpenURL(t, dialect)
			dir := t.TempDir()
			old := time.Now().AddDate(0, 0, -10)
			for i := 0; i < 3; i++ {
				if err := os.WriteFile(filepath.Join(dir, backup.FileName(dialect, old.AddDate(0, 0, i))), []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg := &config.Config{DatabaseURL: url, BackupDir: filepath.Join(t.TempDir(), "unused"), BackupKeep: 2}
			var out bytes.Buffer
			if err := backupCommand(ctx, cfg, quiet, []string{dir}, &out); err != nil {
				t.Fatal(err)
			}
			file := strings.TrimSpace(out.String())
			if filepath.Dir(file) != dir || !strings.HasPrefix(filepath.Base(file), "beaver-") {
				t.Fatalf("printed %q", out.String())
			}
			files, _ := backup.List(dir)
			if len(files) != 2 || files[0].Path != file ||
				filepath.Base(files[1].Path) != backup.FileName(dialect, old.AddDate(0, 0, 2)) {
				t.Fatalf("after retention: %v", files)
			}

			out.Reset()
			target := &config.Config{DatabaseURL: testenv.EmptyURL(t, dialect)}
			if err := restoreCommand(ctx, target, []string{file}, &out); err != nil {
				t.Fatalf("restore: %v\n%s", err, out.String())
			}
			if !strings.Contains(out.String(), "ok   balances") || !strings.Contains(out.String(), "restored "+file) {
				t.Fatalf("restore printed:\n%s", out.String())
			}
			if err := restoreCommand(ctx, target, []string{file}, io.Discard); !errors.Is(err, backup.ErrNotEmpty) {
				t.Fatalf("restore over a restored database: %v", err)
			}
			if err := restoreCommand(ctx, target, nil, io.Discard); !errors.Is(err, errUsage) {
				t.Fatalf("restore without FILE: %v", err)
			}
			if err := backupCommand(ctx, cfg, quiet, []string{dir, dir}, io.Discard); !errors.Is(err, errUsage) {
				t.Fatalf("backup with two dirs: %v", err)
			}
		})
	}
}

// beaver backup on an SQLite path with no database says so instead of
// backing up a new, empty one.
func TestBackupCommandWithoutDatabase(t *testing.T) {
	cfg := &config.Config{DatabaseURL: "sqlite://" + filepath.Join(t.TempDir(), "none.db"), BackupDir: t.TempDir()}
	err := backupCommand(context.Background(), cfg, slog.Default(), nil, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "there is no database at") {
		t.Fatalf("err = %v", err)
	}
}
