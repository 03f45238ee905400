package workflows

import (
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/internal/reports"
)

// Usage report schedules (CONTRACT.md "Operations").
const (
	ScheduleUsageReportWeekly  = "beaver-usage-report-weekly"
	ScheduleUsageReportMonthly = "beaver-usage-report-monthly"
)

// UsageReportWorkflowID names one account's report for one period, e.g.
// "usage-report:acct_1:weekly:2026-W49": with WorkflowIDReusePolicy
// REJECT_DUPLICATE, a period's report is started once per account, however
// often the fan-out runs for that period. The email's idempotency key is
// the same string.
func UsageReportWorkflowID(accountID string, p reports.Period) string {
	return reports.ReportID(accountID, p)
}

// scheduledStartTime is the search attribute a schedule sets on the runs it
// starts: the time the run was due (not when it started, which may be later
// after an outage).
var scheduledStartTime = temporal.NewSearchAttributeKeyTime("TemporalScheduledStartTime")

// usageReportPage is how many accounts one listing activity returns (and
// so how many child workflows are started before the next listing).
const usageReportPage = 200

// usageReportPagesPerRun bounds one run's history; then the workflow
// continues as new from where it is.
const usageReportPagesPerRun = 20

// UsageReportsInput starts the fan-out for one cadence (Weekly or Monthly).
type UsageReportsInput struct {
	Cadence string
	// At picks the period: the last complete one before it. Zero = the
	// schedule's scheduled time, or without one (a manual start) the
	// workflow's start time.
	At time.Time
	// PageSize overrides usageReportPage (tests).
	PageSize int
	// Carried over by continue-as-new.
	Period  reports.Period
	After   string
	Started int
	Skipped int
}

// UsageReportsResult counts the reports started, and those skipped because
// the account's report for the period had been started before.
type UsageReportsResult struct {
	Period  reports.Period
	Started int
	Skipped int
}

// UsageReportsWorkflow starts one UsageReportWorkflow per account that
// wants the cadence's report and used Beaver in the period, listing the
// accounts page by page. Each child has the id UsageReportWorkflowID, so a
// second run for the same period (a catch-up, a manual start) starts no
// report twice; children are abandoned to run on their own.
func UsageReportsWorkflow(ctx workflow.Context, in UsageReportsInput) (UsageReportsResult, error) {
	if in.Period.Key == "" {
		at := in.At
		if at.IsZero() {
			if t, ok := workflow.GetTypedSearchAttributes(ctx).GetTime(scheduledStartTime); ok {
				at = t
			} else {
				at = workflow.Now(ctx)
			}
		}
		p, err := reports.LastComplete(in.Cadence, at)
		if err != nil {
			return UsageReportsResult{}, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeBadInput, nil)
		}
		in.Period = p
	}
	size := in.PageSize
	if size <= 0 {
		size = usageReportPage
	}
	res := UsageReportsResult{Period: in.Period, Started: in.Started, Skipped: in.Skipped}
	actx := withActivity(ctx, time.Minute, time.Hour, 0)
	for pages := 0; ; pages++ {
		var page activities.ListUsageReportRecipientsResult
		err := workflow.ExecuteActivity(actx, a.ListUsageReportRecipients, activities.ListUsageReportRecipientsInput{
			Period: in.Period, After: in.After, Limit: size}).Get(ctx, &page)
		if err != nil {
			return res, err
		}
		started := make([]workflow.ChildWorkflowFuture, len(page.AccountIDs))
		for i, id := range page.AccountIDs {
			cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
				WorkflowID:               UsageReportWorkflowID(id, in.Period),
				WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
				ParentClosePolicy:        enumspb.PARENT_CLOSE_POLICY_ABANDON,
				WorkflowExecutionTimeout: 24 * time.Hour,
			})
			started[i] = workflow.ExecuteChildWorkflow(cctx, UsageReportWorkflow,
				UsageReportInput{AccountID: id, Period: in.Period})
		}
		for _, f := range started {
			err := f.GetChildWorkflowExecution().Get(ctx, nil)
			switch {
			case err == nil:
				res.Started++
			case temporal.IsWorkflowExecutionAlreadyStartedError(err):
				res.Skipped++
			default:
				return res, err
			}
		}
		if len(page.AccountIDs) < size {
			return res, nil
		}
		in.After = page.AccountIDs[len(page.AccountIDs)-1]
		if pages+1 >= usageReportPagesPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			next := in
			next.Started, next.Skipped = res.Started, res.Skipped
			return res, workflow.NewContinueAsNewError(ctx, UsageReportsWorkflow, next)
		}
	}
}

// UsageReportInput names the account and the period.
type UsageReportInput struct {
	AccountID string
	Period    reports.Period
}

// UsageReportResult says whether the email went out, or why not.
type UsageReportResult struct {
	Sent    bool
	Skipped string
}

// UsageReportWorkflow sends one account's report for one period (the
// activity checks the account's choice at send time, and skips an empty
// report). Mail failures are retried for a day.
func UsageReportWorkflow(ctx workflow.Context, in UsageReportInput) (UsageReportResult, error) {
	var res activities.SendUsageReportResult
	err := workflow.ExecuteActivity(withActivity(ctx, time.Minute, 20*time.Hour, 0), a.SendUsageReport,
		activities.SendUsageReportInput{AccountID: in.AccountID, Period: in.Period}).Get(ctx, &res)
	return UsageReportResult{Sent: res.Sent, Skipped: res.Skipped}, err
}
