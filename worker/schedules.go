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
	"go.temporal.io/sdk/temporal"

	"github.com/beaver-gateway/beaver/internal/reports"
	"github.com/beaver-gateway/beaver/workflows"
)

// Schedules returns Beaver's schedules (all times UTC, overlap SKIP: a run
// still going when the next is due makes the next one skip, never pile up).
//
// CatchupWindow decides what happens to runs missed while Temporal was down
// (or the schedule was paused), each on purpose:
//   - repricing daily at 03:00: 24h. After any outage the missed run happens
//     once when Temporal is back, so prices are never more than a day stale;
//     older misses are dropped (one computation covers them all).
//   - usage reset on the 1st at 00:00: 7 days. The reset must happen even if
//     Temporal was down over New Year's night; the workflow takes the month
//     from its own start time and is idempotent, so a late run is right and
//     a run beyond the window would be a harmless no-op (billing commits
//     start a new month by themselves; the reset is the explicit zeroing).
//   - lease sweep every minute: 1 minute. A missed sweep is worth nothing;
//     the next one comes within a minute anyway.
//   - model discovery daily at 04:00: 24h, like repricing: a missed run
//     happens once when Temporal is back; one run covers all missed days.
//   - usage-log retention daily at 02:00: 24h, the same way (one run deletes
//     every day past the retention). Without BEAVER_USAGE_LOG_RETENTION_DAYS
//     its runs delete nothing.
//   - usage reports weekly (Mondays 06:00) and monthly (the 1st, 06:00):
//     2 and 7 days. The run reports on the period before its scheduled
//     time (not its start), so a late run still reports the right period,
//     and each account's report has a workflow id from the period, so no
//     report goes out twice; beyond the window a late report is worth less
//     than the next one.
func Schedules(taskQueue string) []client.ScheduleOptions {
	action := func(id string, wf any, arg any, timeout time.Duration) *client.ScheduleWorkflowAction {
		return &client.ScheduleWorkflowAction{ID: id, Workflow: wf, Args: []any{arg}, TaskQueue: taskQueue,
			WorkflowExecutionTimeout: timeout}
	}
	return []client.ScheduleOptions{
		{
			ID: workflows.ScheduleRepricing,
			Spec: client.ScheduleSpec{
				Calendars:    []client.ScheduleCalendarSpec{{Hour: []client.ScheduleRange{{Start: 3}}, Comment: "daily at 03:00 UTC"}},
				TimeZoneName: "UTC",
			},
			Action:        action("repricing-daily", workflows.RepricingWorkflow, workflows.RepricingInput{Reason: "daily schedule"}, time.Hour),
			Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			CatchupWindow: 24 * time.Hour,
			Note:          "Beaver: daily price computation",
		},
		{
			ID: workflows.ScheduleUsageReset,
			Spec: client.ScheduleSpec{
				Calendars:    []client.ScheduleCalendarSpec{{DayOfMonth: []client.ScheduleRange{{Start: 1}}, Comment: "1st of each month, 00:00 UTC"}},
				TimeZoneName: "UTC",
			},
			Action:        action("usage-reset", workflows.MonthlyUsageResetWorkflow, workflows.MonthlyUsageResetInput{}, 12*time.Hour),
			Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			CatchupWindow: 7 * 24 * time.Hour,
			Note:          "Beaver: monthly request quota reset",
		},
		{
			ID:            workflows.ScheduleLeaseSweep,
			Spec:          client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Minute}}},
			Action:        action("lease-sweep", workflows.LeaseSweepWorkflow, workflows.LeaseSweepInput{}, 5*time.Minute),
			Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			CatchupWindow: time.Minute,
			Note:          "Beaver: return expired balance leases of dead instances",
		},
		{
			ID: workflows.ScheduleModelDiscovery,
			Spec: client.ScheduleSpec{
				Calendars:    []client.ScheduleCalendarSpec{{Hour: []client.ScheduleRange{{Start: 4}}, Comment: "daily at 04:00 UTC"}},
				TimeZoneName: "UTC",
			},
			Action:        action("model-discovery-daily", workflows.ModelDiscoveryWorkflow, workflows.ModelDiscoveryInput{Reason: "daily schedule"}, time.Hour),
			Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			CatchupWindow: 24 * time.Hour,
			Note:          "Beaver: compare each provider's model list with the catalog",
		},
		{
			ID: workflows.ScheduleUsageLogRetention,
			Spec: client.ScheduleSpec{
				Calendars:    []client.ScheduleCalendarSpec{{Hour: []client.ScheduleRange{{Start: 2}}, Comment: "daily at 02:00 UTC"}},
				TimeZoneName: "UTC",
			},
			Action: action("usage-log-retention-daily", workflows.UsageLogRetentionWorkflow, workflows.UsageLogRetentionInput{},
				22*time.Hour),
			Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			CatchupWindow: 24 * time.Hour,
			Note:          "Beaver: delete usage logs past BEAVER_USAGE_LOG_RETENTION_DAYS (the ledger is kept)",
		},
		{
			ID: workflows.ScheduleUsageReportWeekly,
			Spec: client.ScheduleSpec{
				Calendars: []client.ScheduleCalendarSpec{{DayOfWeek: []client.ScheduleRange{{Start: 1}},
					Hour: []client.ScheduleRange{{Start: 6}}, Comment: "Mondays at 06:00 UTC"}},
				TimeZoneName: "UTC",
			},
			Action: action("usage-report-weekly", workflows.UsageReportsWorkflow,
				workflows.UsageReportsInput{Cadence: reports.Weekly}, 24*time.Hour),
			Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			CatchupWindow: 2 * 24 * time.Hour,
			Note:          "Beaver: weekly usage report emails (last week, Monday to Sunday UTC)",
		},
		{
			ID: workflows.ScheduleUsageReportMonthly,
			Spec: client.ScheduleSpec{
				Calendars: []client.ScheduleCalendarSpec{{DayOfMonth: []client.ScheduleRange{{Start: 1}},
					Hour: []client.ScheduleRange{{Start: 6}}, Comment: "1st of each month, 06:00 UTC"}},
				TimeZoneName: "UTC",
			},
			Action: action("usage-report-monthly", workflows.UsageReportsWorkflow,
				workflows.UsageReportsInput{Cadence: reports.Monthly}, 24*time.Hour),
			Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			CatchupWindow: 7 * 24 * time.Hour,
			Note:          "Beaver: monthly usage report emails (last calendar month, UTC)",
		},
	}
}

// EnsureSchedules creates Beaver's schedules, or brings existing ones up to
// date (spec, action and policies; a pause an operator set stays). Safe to
// run from every worker at every start, concurrently.
func EnsureSchedules(ctx context.Context, c client.Client, taskQueue string, log *slog.Logger) error {
	for _, opts := range Schedules(taskQueue) {
		if err := ensureSchedule(ctx, c.ScheduleClient(), opts, log); err != nil {
			return err
		}
	}
	return nil
}

// ensureSchedule creates one schedule, or brings it up to date.
func ensureSchedule(ctx context.Context, sc client.ScheduleClient, opts client.ScheduleOptions, log *slog.Logger) error {
	_, err := sc.Create(ctx, opts)
	switch {
	case err == nil:
		log.Info("temporal schedule created", "schedule", opts.ID)
		return nil
	case !alreadyExists(err):
		return fmt.Errorf("create schedule %s: %w", opts.ID, err)
	}
	err = sc.GetHandle(ctx, opts.ID).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := in.Description.Schedule
			s.Spec = &opts.Spec
			s.Action = opts.Action
			s.Policy = &client.SchedulePolicies{Overlap: opts.Overlap, CatchupWindow: opts.CatchupWindow,
				PauseOnFailure: opts.PauseOnFailure}
			return &client.ScheduleUpdate{Schedule: &s}, nil
		},
	})
	if err != nil {
		return fmt.Errorf("update schedule %s: %w", opts.ID, err)
	}
	log.Debug("temporal schedule up to date", "schedule", opts.ID)
	return nil
}

// alreadyExists recognizes "schedule with this ID is already registered" in
// the forms servers and SDK versions report it.
func alreadyExists(err error) bool {
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	var exists *serviceerror.AlreadyExists
	return errors.Is(err, temporal.ErrScheduleAlreadyRunning) || errors.As(err, &started) || errors.As(err, &exists)
}
