package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/beaver-gateway/beaver/internal/backup"
	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/retention"
	"github.com/beaver-gateway/beaver/internal/verify"
)

// backupCommand is `beaver backup [DIR]`: a consistent copy of the running
// database into DIR (default BEAVER_BACKUP_DIR), then retention (the newest
// BEAVER_BACKUP_KEEP kept). It prints the file written.
func backupCommand(ctx context.Context, cfg *config.Config, log *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) > 1 {
		return errUsage
	}
	dir := cfg.BackupDir
	if len(args) == 1 {
		dir = args[0]
	}
	if path, ok := strings.CutPrefix(cfg.DatabaseURL, "sqlite://"); ok {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("backup: there is no database at %s (BEAVER_DATABASE_URL)", path)
		}
	}
	d, err := db.Open(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer d.Close()
	file, err := backup.Backup(ctx, d, cfg.DatabaseURL, dir, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, file)
	deleted, err := backup.Prune(dir, cfg.BackupKeep)
	for _, p := range deleted {
		log.Info("old backup deleted", "file", p, "keep", cfg.BackupKeep)
	}
	return err
}

// restoreCommand is `beaver restore FILE`: the backup into the (empty)
// database of BEAVER_DATABASE_URL, migrated up and verified.
func restoreCommand(ctx context.Context, cfg *config.Config, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errUsage
	}
	var o verify.Options
	if cfg.UsageLogRetentionDays > 0 {
		o.UsageSince = retention.Cutoff(time.Now(), cfg.UsageLogRetentionDays)
	}
	if err := backup.Restore(ctx, args[0], cfg.DatabaseURL, o, stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s\n", args[0])
	return nil
}
