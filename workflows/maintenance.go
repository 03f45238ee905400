package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/beaver-gateway/beaver/activities"
)

// RepricingInput says why prices are computed.
type RepricingInput struct {
	Reason string
}

// RepricingResult is the price version written.
type RepricingResult struct {
	Version int64
}

// RepricingWorkflow computes a new price version (daily by schedule, and
// after an admin changes a model).
func RepricingWorkflow(ctx workflow.Context, in RepricingInput) (RepricingResult, error) {
	ctx = withActivity(ctx, 2*time.Minute, 30*time.Minute, 0)
	var res activities.RepriceResult
	if err := workflow.ExecuteActivity(ctx, a.Reprice, activities.RepriceInput{Reason: in.Reason}).Get(ctx, &res); err != nil {
		return RepricingResult{}, err
	}
	return RepricingResult{Version: res.Version}, nil
}

// MonthlyUsageResetInput names the month that starts; "" = the month of the
// workflow's start time (UTC), which is what the schedule relies on.
type MonthlyUsageResetInput struct {
	Month string
}

// MonthlyUsageResetResult reports the reset.
type MonthlyUsageResetResult struct {
	Month    string
	Accounts int64
}

// MonthlyUsageResetWorkflow starts a new month of request quotas. It is
// idempotent: running it twice (or a manual run with the ID from
// UsageResetWorkflowID) resets nothing more.
func MonthlyUsageResetWorkflow(ctx workflow.Context, in MonthlyUsageResetInput) (MonthlyUsageResetResult, error) {
	month := in.Month
	if month == "" {
		month = workflow.Now(ctx).UTC().Format("2006-01")
	}
	ctx = withActivity(ctx, 5*time.Minute, 6*time.Hour, 0)
	var res activities.ResetMonthlyUsageResult
	if err := workflow.ExecuteActivity(ctx, a.ResetMonthlyUsage, activities.ResetMonthlyUsageInput{Month: month}).Get(ctx, &res); err != nil {
		return MonthlyUsageResetResult{}, err
	}
	return MonthlyUsageResetResult{Month: month, Accounts: res.Accounts}, nil
}

// LeaseSweepInput has no fields yet.
type LeaseSweepInput struct{}

// LeaseSweepResult counts the leases returned and the stored responses
// purged.
type LeaseSweepResult struct {
	Returned         int
	PurgedResponses  int64
	PurgedFiles      int
	PurgedChallenges int64
}

// purgeResponsesVersion marks runs that also purge expired stored
// responses; runs recorded before it replay without that step.
const purgeResponsesVersion = "purge-stored-responses"

// purgeFilesVersion marks runs that also delete expired files.
const purgeFilesVersion = "purge-expired-files"

// purgeChallengesVersion marks runs that also delete expired sign-in
// challenges and passkey ceremonies.
const purgeChallengesVersion = "purge-auth-challenges"

// LeaseSweepWorkflow sweeps expired state every minute (by schedule; a
// missed run is simply made up by the next): the balance leases of dead
// instances, then the stored responses past their retention, the files
// past their expires_at and the expired sign-in challenges.
func LeaseSweepWorkflow(ctx workflow.Context, _ LeaseSweepInput) (LeaseSweepResult, error) {
	ctx = withActivity(ctx, time.Minute, 2*time.Minute, 3)
	var res activities.SweepLeasesResult
	if err := workflow.ExecuteActivity(ctx, a.SweepLeases, activities.SweepLeasesInput{}).Get(ctx, &res); err != nil {
		return LeaseSweepResult{}, err
	}
	out := LeaseSweepResult{Returned: res.Returned}
	if workflow.GetVersion(ctx, purgeResponsesVersion, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return out, nil
	}
	var purged activities.PurgeStoredResponsesResult
	if err := workflow.ExecuteActivity(ctx, a.PurgeStoredResponses, activities.PurgeStoredResponsesInput{}).Get(ctx, &purged); err != nil {
		return out, err
	}
	out.PurgedResponses = purged.Deleted
	if workflow.GetVersion(ctx, purgeFilesVersion, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return out, nil
	}
	var files activities.PurgeExpiredFilesResult
	if err := workflow.ExecuteActivity(ctx, a.PurgeExpiredFiles, activities.PurgeExpiredFilesInput{}).Get(ctx, &files); err != nil {
		return out, err
	}
	out.PurgedFiles = files.Deleted
	if workflow.GetVersion(ctx, purgeChallengesVersion, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return out, nil
	}
	var ch activities.PurgeAuthChallengesResult
	if err := workflow.ExecuteActivity(ctx, a.PurgeAuthChallenges, activities.PurgeAuthChallengesInput{}).Get(ctx, &ch); err != nil {
		return out, err
	}
	out.PurgedChallenges = ch.Deleted
	return out, nil
}

// UsageLogRetentionInput has no fields yet: the days kept are the worker's
// BEAVER_USAGE_LOG_RETENTION_DAYS.
type UsageLogRetentionInput struct{}

// UsageLogRetentionResult says what the run deleted.
type UsageLogRetentionResult struct {
	Cutoff  time.Time
	Before  time.Time
	HeldBy  string
	Deleted int64
}

// UsageLogRetentionWorkflow deletes the usage logs older than the retention
// (daily by schedule). One activity deletes them in batches and heartbeats
// after each, so a large backlog is worked off in one run; a worker lost
// midway is noticed within the heartbeat timeout and the retry goes on from
// what is left. The cutoff counts from the workflow's start, in whole UTC
// days.
func UsageLogRetentionWorkflow(ctx workflow.Context, _ UsageLogRetentionInput) (UsageLogRetentionResult, error) {
	p := *retrying
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    6 * time.Hour,
		ScheduleToCloseTimeout: 20 * time.Hour,
		HeartbeatTimeout:       2 * time.Minute,
		RetryPolicy:            &p,
	})
	var res activities.PruneUsageLogsResult
	err := workflow.ExecuteActivity(ctx, a.PruneUsageLogs, activities.PruneUsageLogsInput{Now: workflow.Now(ctx)}).Get(ctx, &res)
	return UsageLogRetentionResult{Cutoff: res.Cutoff, Before: res.Before, HeldBy: res.HeldBy, Deleted: res.Deleted}, err
}
