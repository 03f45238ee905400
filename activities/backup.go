package activities

import (
	"context"
	"log/slog"
	"time"

	"github.com/beaver-gateway/beaver/internal/backup"
	"github.com/beaver-gateway/beaver/internal/db"
)

// BackupActivities take the daily backup (BackupWorkflow). They run where
// the database file is: the worker of `beaver dev`, or a `beaver worker` on
// the same machine as the SQLite file.
type BackupActivities struct {
	DB          *db.DB
	DatabaseURL string // pg_dump connects by it
	Dir         string // BEAVER_BACKUP_DIR
	Keep        int    // BEAVER_BACKUP_KEEP; 0 = all
	Log         *slog.Logger
}

// BackupDatabaseInput is the backup's time (the workflow's start): it names
// the file, and its UTC date is the day the backup is for.
type BackupDatabaseInput struct {
	At time.Time
}

// BackupDatabaseResult names the day's backup; Existed: it was already
// there (a retry, or a second run that day) and none was written.
// Deleted counts the old backups retention removed.
type BackupDatabaseResult struct {
	File    string
	Existed bool
	Deleted int
}

// backupHeartbeat is how often a running backup heartbeats.
const backupHeartbeat = 10 * time.Second

// BackupDatabase writes the day's backup into Dir unless a backup of that
// UTC date is already there, then keeps the newest Keep. Idempotent: a
// retry after a lost answer finds the file (renamed into place only once
// whole and checked) and writes no second one.
func (a *BackupActivities) BackupDatabase(ctx context.Context, in BackupDatabaseInput) (BackupDatabaseResult, error) {
	if a.Dir == "" || in.At.IsZero() {
		return BackupDatabaseResult{}, badInput("the backup needs a directory (BEAVER_BACKUP_DIR) and a time")
	}
	var res BackupDatabaseResult
	file, ok, err := backup.OfDay(a.Dir, in.At)
	if err != nil {
		return res, err
	}
	if ok {
		res.File, res.Existed = file, true
	} else {
		stop := heartbeat(ctx, backupHeartbeat)
		file, err = backup.Backup(ctx, a.DB, a.DatabaseURL, a.Dir, in.At)
		stop()
		if err != nil {
			return res, err
		}
		res.File = file
		a.log().InfoContext(ctx, "database backed up", "file", file)
	}
	deleted, err := backup.Prune(a.Dir, a.Keep)
	res.Deleted = len(deleted)
	for _, p := range deleted {
		a.log().InfoContext(ctx, "old backup deleted", "file", p, "keep", a.Keep)
	}
	return res, err
}

func (a *BackupActivities) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.Default()
}
