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

// LeaseSweepResult counts the leases returned.
type LeaseSweepResult struct {
	Returned int
}

// LeaseSweepWorkflow returns the balance leases of dead instances (every
// minute by schedule; a missed run is simply made up by the next).
func LeaseSweepWorkflow(ctx workflow.Context, _ LeaseSweepInput) (LeaseSweepResult, error) {
	ctx = withActivity(ctx, time.Minute, 2*time.Minute, 3)
	var res activities.SweepLeasesResult
	if err := workflow.ExecuteActivity(ctx, a.SweepLeases, activities.SweepLeasesInput{}).Get(ctx, &res); err != nil {
		return LeaseSweepResult{}, err
	}
	return LeaseSweepResult{Returned: res.Returned}, nil
}
