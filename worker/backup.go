package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/beaver-gateway/beaver/workflows"
)

// BackupSchedule is the daily backup at 02:00 UTC. CatchupWindow 24h, like
// the other daily runs: a run missed while Temporal was down happens once
// when it is back (its backup is named for the missed day's 02:00).
func BackupSchedule(taskQueue string) client.ScheduleOptions {
	return client.ScheduleOptions{
		ID: workflows.ScheduleBackup,
		Spec: client.ScheduleSpec{
			Calendars:    []client.ScheduleCalendarSpec{{Hour: []client.ScheduleRange{{Start: 2}}, Comment: "daily at 02:00 UTC"}},
			TimeZoneName: "UTC",
		},
		Action: &client.ScheduleWorkflowAction{ID: "backup-daily", Workflow: workflows.BackupWorkflow,
			Args: []any{workflows.BackupInput{}}, TaskQueue: taskQueue, WorkflowExecutionTimeout: 22 * time.Hour},
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: 24 * time.Hour,
		Note:          "Beaver: daily backup of the SQLite database into BEAVER_BACKUP_DIR, the newest BEAVER_BACKUP_KEEP kept",
	}
}

// EnsureBackupSchedule keeps the daily backup schedule when the database is
// SQLite (the file is on this machine; a PostgreSQL server is backed up by
// its operator's own means, or `beaver backup`), and deletes it otherwise
// (a deployment moved to PostgreSQL).
func EnsureBackupSchedule(ctx context.Context, c client.Client, taskQueue string, sqlite bool, log *slog.Logger) error {
	sc := c.ScheduleClient()
	if sqlite {
		return ensureSchedule(ctx, sc, BackupSchedule(taskQueue), log)
	}
	err := sc.GetHandle(ctx, workflows.ScheduleBackup).Delete(ctx)
	var notFound *serviceerror.NotFound
	switch {
	case err == nil:
		log.Info("temporal schedule deleted: the database is not SQLite", "schedule", workflows.ScheduleBackup)
	case !errors.As(err, &notFound):
		return fmt.Errorf("delete schedule %s: %w", workflows.ScheduleBackup, err)
	}
	return nil
}
