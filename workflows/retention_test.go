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

// The retention run prunes from the workflow's own start time (so a retry
// prunes to the same day) and retries a failed prune.
func TestUsageLogRetentionWorkflow(t *testing.T) {
	env := newWorkflowEnv(t)
	start := time.Date(2030, 6, 10, 2, 0, 0, 0, time.UTC)
	env.SetStartTime(start)
	cutoff := time.Date(2030, 5, 11, 0, 0, 0, 0, time.UTC)
	in := activities.PruneUsageLogsInput{Now: start} // the workflow's start, on every attempt
	env.OnActivity(a.PruneUsageLogs, mock.Anything, in).Return(activities.PruneUsageLogsResult{}, errors.New("database restarting")).Once()
	env.OnActivity(a.PruneUsageLogs, mock.Anything, in).
		Return(activities.PruneUsageLogsResult{Cutoff: cutoff, Before: cutoff, Deleted: 12000}, nil).Once()
	env.ExecuteWorkflow(workflows.UsageLogRetentionWorkflow, workflows.UsageLogRetentionInput{})
	var res workflows.UsageLogRetentionResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, int64(12000), res.Deleted)
	require.True(t, res.Cutoff.Equal(cutoff))
	env.AssertExpectations(t)
}
