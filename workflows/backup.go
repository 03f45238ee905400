package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/beaver-gateway/beaver/activities"
)

// ScheduleBackup is the daily SQLite backup's schedule (CONTRACT.md
// "Operations").
const ScheduleBackup = "beaver-backup-daily"

// BackupWorkflowID is the ID of a backup run started by hand for a day
// (the schedule's runs are named by Temporal from the action's id and the
// scheduled time).
func BackupWorkflowID(day time.Time) string { return "backup:" + day.UTC().Format("2006-01-02") }

var backupActs *activities.BackupActivities

// BackupInput has no fields yet: the directory and retention are the
// worker's BEAVER_BACKUP_DIR and BEAVER_BACKUP_KEEP.
type BackupInput struct{}

// BackupResult names the day's backup file.
type BackupResult struct {
	File    string
	Existed bool // already there: nothing was written
	Deleted int  // old backups removed by retention
}

// BackupWorkflow backs the database up once for the UTC day of its start
// (daily by schedule, on SQLite) and applies retention. The backup's time
// is the workflow's start, on every attempt: a retry finds the file of the
// first attempt that got through.
func BackupWorkflow(ctx workflow.Context, _ BackupInput) (BackupResult, error) {
	p := *retrying
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    2 * time.Hour,
		ScheduleToCloseTimeout: 20 * time.Hour,
		HeartbeatTimeout:       time.Minute,
		RetryPolicy:            &p,
	})
	at := workflow.Now(ctx).UTC().Truncate(time.Second)
	var res activities.BackupDatabaseResult
	err := workflow.ExecuteActivity(ctx, backupActs.BackupDatabase, activities.BackupDatabaseInput{At: at}).Get(ctx, &res)
	return BackupResult{File: res.File, Existed: res.Existed, Deleted: res.Deleted}, err
}
