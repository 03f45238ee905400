package workflows_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/internal/dailyusage"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/mail"
	"github.com/beaver-gateway/beaver/internal/reports"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
	"github.com/beaver-gateway/beaver/worker"
	"github.com/beaver-gateway/beaver/workflows"
)

// The period comes from the schedule's scheduled time when the run has
// one (a catch-up run starts later but reports the same period), else from
// the workflow's start; weekly and monthly, across a year boundary.
func TestUsageReportsPeriod(t *testing.T) {
	cases := []struct {
		name      string
		cadence   string
		start     time.Time
		scheduled time.Time
		want      string
	}{
		{"weekly at the new year", reports.Weekly, time.Date(2027, 1, 4, 6, 0, 2, 0, time.UTC), time.Time{}, "weekly:2026-W53"},
		{"weekly, first ISO week", reports.Weekly, time.Date(2026, 1, 5, 6, 0, 0, 0, time.UTC), time.Time{}, "weekly:2026-W01"},
		{"monthly at the new year", reports.Monthly, time.Date(2027, 1, 1, 6, 0, 1, 0, time.UTC), time.Time{}, "monthly:2026-12"},
		// Temporal was down from Sunday to the next Monday 07:00: the
		// catch-up reports the week it was due for, not the one after.
		{"weekly catch-up", reports.Weekly, time.Date(2026, 12, 14, 7, 0, 0, 0, time.UTC),
			time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC), "weekly:2026-W49"},
		{"monthly catch-up", reports.Monthly, time.Date(2027, 2, 1, 9, 0, 0, 0, time.UTC),
			time.Date(2027, 1, 1, 6, 0, 0, 0, time.UTC), "monthly:2026-12"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := newWorkflowEnv(t)
			env.SetStartTime(c.start)
			if !c.scheduled.IsZero() {
				require.NoError(t, env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(
					temporal.NewSearchAttributeKeyTime("TemporalScheduledStartTime").ValueSet(c.scheduled))))
			}
			env.OnActivity(a.ListUsageReportRecipients, mock.Anything, mock.MatchedBy(func(in activities.ListUsageReportRecipientsInput) bool {
				return in.Period.ID() == c.want && in.After == "" && in.Limit == 200
			})).Return(activities.ListUsageReportRecipientsResult{AccountIDs: []string{"acct_1"}}, nil).Once()
			env.OnActivity(a.SendUsageReport, mock.Anything, mock.MatchedBy(func(in activities.SendUsageReportInput) bool {
				return in.AccountID == "acct_1" && in.Period.ID() == c.want
			})).Return(activities.SendUsageReportResult{Sent: true}, nil).Once()
			env.ExecuteWorkflow(workflows.UsageReportsWorkflow, workflows.UsageReportsInput{Cadence: c.cadence})
			require.True(t, env.IsWorkflowCompleted())
			require.NoError(t, env.GetWorkflowError())
			var res workflows.UsageReportsResult
			require.NoError(t, env.GetWorkflowResult(&res))
			require.Equal(t, c.want, res.Period.ID())
			require.Equal(t, 1, res.Started)
		})
	}

	env := newWorkflowEnv(t)
	env.ExecuteWorkflow(workflows.UsageReportsWorkflow, workflows.UsageReportsInput{Cadence: "daily"})
	require.Error(t, env.GetWorkflowError())
}

// Accounts are listed page by page; a long list continues as new with the
// cursor and the counts.
func TestUsageReportsPages(t *testing.T) {
	env := newWorkflowEnv(t)
	env.SetStartTime(time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC))
	pages := map[string][]string{"": {"a1", "a2"}, "a2": {"a3", "a4"}, "a4": {"a5"}}
	env.OnActivity(a.ListUsageReportRecipients, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ListUsageReportRecipientsInput) (activities.ListUsageReportRecipientsResult, error) {
			return activities.ListUsageReportRecipientsResult{AccountIDs: pages[in.After]}, nil
		}).Times(3)
	var sentTo []string
	env.OnActivity(a.SendUsageReport, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SendUsageReportInput) (activities.SendUsageReportResult, error) {
			sentTo = append(sentTo, in.AccountID)
			return activities.SendUsageReportResult{Sent: true}, nil
		}).Times(5)
	env.ExecuteWorkflow(workflows.UsageReportsWorkflow, workflows.UsageReportsInput{Cadence: reports.Weekly, PageSize: 2})
	require.NoError(t, env.GetWorkflowError())
	var res workflows.UsageReportsResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, 5, res.Started)
	require.ElementsMatch(t, []string{"a1", "a2", "a3", "a4", "a5"}, sentTo)

	// Twenty full pages: the run continues as new after the last id.
	env = newWorkflowEnv(t)
	env.SetStartTime(time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC))
	env.OnActivity(a.ListUsageReportRecipients, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ListUsageReportRecipientsInput) (activities.ListUsageReportRecipientsResult, error) {
			n := 0
			if in.After != "" {
				n = int(in.After[1]-'A') + 1
			}
			return activities.ListUsageReportRecipientsResult{AccountIDs: []string{"a" + string(rune('A'+n))}}, nil
		}).Times(20)
	env.OnActivity(a.SendUsageReport, mock.Anything, mock.Anything).Return(activities.SendUsageReportResult{Sent: true}, nil).Times(20)
	env.ExecuteWorkflow(workflows.UsageReportsWorkflow, workflows.UsageReportsInput{Cadence: reports.Weekly, PageSize: 1})
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, env.GetWorkflowError(), &can)
}

// reportFixture runs the report workflows with the real activities on a
// database, sending through a mail recorder.
type reportFixture struct {
	d    *db.DB
	mail *mail.Recorder
}

func newReportFixture(t *testing.T, dialect string) *reportFixture {
	t.Helper()
	f := &reportFixture{d: testenv.Open(t, dialect), mail: &mail.Recorder{}}
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, acct := range []struct{ id, pref string }{
		{"weekly", reports.Weekly}, {"monthly", reports.Monthly}, {"both", reports.Both}, {"off", reports.Off},
	} {
		require.NoError(t, f.d.Create(&models.Account{ID: acct.id, Email: acct.id + "@example.com",
			EmailLower: acct.id + "@example.com", PasswordHash: "x", Role: models.RoleUser, Plan: "free", Active: true,
			BalanceMicros: 5_000_000, UsageReports: acct.pref, CreatedAt: now, UpdatedAt: now}).Error)
		require.NoError(t, dailyusage.Add(f.d.DB, []dailyusage.Row{{AccountID: acct.id, Day: "2026-12-02", Model: "gpt-4o",
			Sums: dailyusage.Sums{Requests: 2, Charges: 2, ChargedMicros: 1_000_000}}}))
	}
	return f
}

func (f *reportFixture) env(t *testing.T, start time.Time) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := testenv.WorkflowEnv(&s)
	worker.Register(env, &activities.Activities{DB: f.d, Mailer: f.mail, PublicURL: "https://beaver.test"})
	env.SetStartTime(start)
	return env
}

func (f *reportFixture) recipients() []string {
	var to []string
	for _, m := range f.mail.Messages() {
		to = append(to, m.To)
	}
	return to
}

// twiceUsageReports runs the fan-out for the same period twice, as a second
// schedule run or a manual start would.
func twiceUsageReports(ctx workflow.Context, in workflows.UsageReportsInput) ([2]workflows.UsageReportsResult, error) {
	var out [2]workflows.UsageReportsResult
	for i := range out {
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: "usage-reports-run-" + string(rune('1'+i))})
		if err := workflow.ExecuteChildWorkflow(cctx, workflows.UsageReportsWorkflow, in).Get(ctx, &out[i]); err != nil {
			return out, err
		}
	}
	return out, nil
}

// Weekly reports go to the weekly and both accounts, monthly ones to the
// monthly and both accounts, none to off; a second run for the same period
// starts no report again (the workflow id), and a later run for a period
// already sent sends nothing (the sent row).
func TestUsageReportsSendOncePerPeriod(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newReportFixture(t, dialect)

			env := f.env(t, time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC))
			env.RegisterWorkflow(twiceUsageReports)
			env.ExecuteWorkflow(twiceUsageReports, workflows.UsageReportsInput{Cadence: reports.Weekly})
			require.NoError(t, env.GetWorkflowError())
			var runs [2]workflows.UsageReportsResult
			require.NoError(t, env.GetWorkflowResult(&runs))
			require.Equal(t, "weekly:2026-W49", runs[0].Period.ID())
			require.Equal(t, workflows.UsageReportsResult{Period: runs[0].Period, Started: 2}, runs[0])
			require.Equal(t, workflows.UsageReportsResult{Period: runs[0].Period, Skipped: 2}, runs[1])
			require.ElementsMatch(t, []string{"weekly@example.com", "both@example.com"}, f.recipients())

			// Workflow ids gone (retention), the sent rows still hold.
			env = f.env(t, time.Date(2026, 12, 8, 9, 0, 0, 0, time.UTC))
			env.ExecuteWorkflow(workflows.UsageReportsWorkflow, workflows.UsageReportsInput{Cadence: reports.Weekly})
			require.NoError(t, env.GetWorkflowError())
			require.Len(t, f.mail.Messages(), 2)

			env = f.env(t, time.Date(2027, 1, 1, 6, 0, 0, 0, time.UTC))
			env.ExecuteWorkflow(workflows.UsageReportsWorkflow, workflows.UsageReportsInput{Cadence: reports.Monthly})
			require.NoError(t, env.GetWorkflowError())
			var res workflows.UsageReportsResult
			require.NoError(t, env.GetWorkflowResult(&res))
			require.Equal(t, "monthly:2026-12", res.Period.ID())
			msgs := f.mail.Messages()
			require.Len(t, msgs, 4)
			require.ElementsMatch(t, []string{"monthly@example.com", "both@example.com"}, []string{msgs[2].To, msgs[3].To})
			for _, m := range msgs[2:] {
				require.Contains(t, m.Subject, "monthly usage")
				require.Contains(t, m.Text, "December 2026")
			}
		})
	}
}

// The child checks the choice at send time: an account that turned reports
// off after the listing gets nothing.
func TestUsageReportRespectsOptOutAtSendTime(t *testing.T) {
	f := newReportFixture(t, db.SQLite)
	require.NoError(t, reports.SetPreference(t.Context(), f.d, "weekly", reports.Off, time.Now()))
	p, err := reports.LastComplete(reports.Weekly, time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	env := f.env(t, time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC))
	env.ExecuteWorkflow(workflows.UsageReportWorkflow, workflows.UsageReportInput{AccountID: "weekly", Period: p})
	require.NoError(t, env.GetWorkflowError())
	var res workflows.UsageReportResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.UsageReportResult{Skipped: activities.ReportSkippedOptedOut}, res)
	require.Empty(t, f.mail.Messages())
}
