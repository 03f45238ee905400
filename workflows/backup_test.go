package workflows_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/workflows"
)

var backupActs *activities.BackupActivities

// The backup is named for the workflow's start (to the second), on every
// attempt, so a retry after a failure finds the first attempt's file; a
// failed attempt is retried.
func TestBackupWorkflow(t *testing.T) {
	env := newWorkflowEnv(t)
	env.RegisterActivity(&activities.BackupActivities{})
	start := time.Date(2026, 12, 7, 2, 0, 0, 250_000_000, time.UTC)
	env.SetStartTime(start)
	in := activities.BackupDatabaseInput{At: start.Truncate(time.Second)}
	env.OnActivity(backupActs.BackupDatabase, mock.Anything, in).
		Return(activities.BackupDatabaseResult{}, errors.New("disk busy")).Once()
	env.OnActivity(backupActs.BackupDatabase, mock.Anything, in).
		Return(activities.BackupDatabaseResult{File: "/b/beaver-20261207T020000Z.sqlite", Deleted: 1}, nil).Once()
	env.ExecuteWorkflow(workflows.BackupWorkflow, workflows.BackupInput{})
	var res workflows.BackupResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.BackupResult{File: "/b/beaver-20261207T020000Z.sqlite", Deleted: 1}, res)
	require.Equal(t, "backup:2026-12-07", workflows.BackupWorkflowID(start))
}
