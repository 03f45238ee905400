package worker_test

import (
	"context"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/beaver-gateway/beaver/internal/dailyusage"
	"github.com/beaver-gateway/beaver/internal/reports"
	"github.com/beaver-gateway/beaver/models"
	"github.com/beaver-gateway/beaver/workflows"
)

// The weekly usage report on the real worker: the fan-out starts one report
// for the account that used Beaver, the email goes out once, and a second
// run for the same week starts nothing (the child's id is refused); the
// schedules are due Mondays and on the 1st at 06:00 UTC.
// BEAVER_RECORD_HISTORIES=1 records the fan-out and the report.
func TestUsageReportsEndToEnd(t *testing.T) {
	e := startE2E(t)
	ctx := context.Background()
	acct := e.account(t, "rory@example.com", "rory password 123")
	idle := e.account(t, "ida@example.com", "ida password 1234")
	if err := e.db.Model(&models.Account{}).Where("id IN ?", []string{acct.ID, idle.ID}).
		Updates(map[string]any{"usage_reports": reports.Both, "balance_micros": 4_000_000}).Error; err != nil {
		t.Fatal(err)
	}
	if err := dailyusage.Add(e.db.DB, []dailyusage.Row{{AccountID: acct.ID, Day: "2026-12-03", Model: "openai/gpt-4o-mini",
		Sums: dailyusage.Sums{Requests: 7, Charges: 7, ChargedMicros: 1_400_000}}}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	week, _ := reports.LastComplete(reports.Weekly, at)
	run := func(id, history string) workflows.UsageReportsResult {
		t.Helper()
		if _, err := e.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "beaver"},
			workflows.UsageReportsWorkflow, workflows.UsageReportsInput{Cadence: reports.Weekly, At: at}); err != nil {
			t.Fatal(err)
		}
		var res workflows.UsageReportsResult
		e.result(t, id, history, &res)
		return res
	}

	res := run("usage-report-weekly-e2e", "usage_reports_weekly")
	if res.Started != 1 || res.Skipped != 0 || res.Period.ID() != "weekly:2026-W49" {
		t.Fatalf("first run: %+v", res)
	}
	var sent workflows.UsageReportResult
	e.result(t, workflows.UsageReportWorkflowID(acct.ID, week), "usage_report_sent", &sent)
	if !sent.Sent {
		t.Fatalf("report: %+v", sent)
	}
	msgs := e.mail.To("rory@example.com")
	if len(msgs) != 1 || msgs[0].IdempotencyKey != "usage-report:"+acct.ID+":weekly:2026-W49" {
		t.Fatalf("emails %+v", msgs)
	}
	if res := run("usage-report-weekly-e2e-again", "usage_reports_weekly_again"); res.Started != 0 || res.Skipped != 1 {
		t.Fatalf("second run: %+v", res)
	}
	if n, m := len(e.mail.To("rory@example.com")), len(e.mail.To("ida@example.com")); n != 1 || m != 0 {
		t.Fatalf("%d reports to rory, %d to ida; want 1 and 0", n, m)
	}

	// Both schedules exist with their calendars and policies.
	for _, c := range []struct {
		id      string
		catchup time.Duration
		due     func(time.Time) bool
	}{
		{workflows.ScheduleUsageReportWeekly, 2 * 24 * time.Hour, func(t time.Time) bool { return t.Weekday() == time.Monday }},
		{workflows.ScheduleUsageReportMonthly, 7 * 24 * time.Hour, func(t time.Time) bool { return t.Day() == 1 }},
	} {
		d, err := e.c.ScheduleClient().GetHandle(ctx, c.id).Describe(ctx)
		if err != nil {
			t.Fatalf("%s: %v", c.id, err)
		}
		if p := d.Schedule.Policy; p.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP || p.CatchupWindow != c.catchup {
			t.Errorf("%s: policy %+v", c.id, p)
		}
		if act, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction); !ok || act.TaskQueue != "beaver" {
			t.Errorf("%s: action %+v", c.id, d.Schedule.Action)
		}
		if len(d.Info.NextActionTimes) == 0 {
			t.Errorf("%s: nothing due", c.id)
		}
		for _, next := range d.Info.NextActionTimes {
			if next = next.UTC(); !c.due(next) || next.Hour() != 6 || next.Minute() != 0 || next.Second() != 0 {
				t.Errorf("%s due at %s", c.id, next)
			}
		}
	}

	// A run of the schedule carries its scheduled time as a search
	// attribute, and reports on the last complete week before it.
	h := e.c.ScheduleClient().GetHandle(ctx, workflows.ScheduleUsageReportWeekly)
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		t.Fatal(err)
	}
	var action client.ScheduleActionResult
	waitFor(t, "the triggered run", func() bool {
		d, err := h.Describe(ctx)
		if err != nil || len(d.Info.RecentActions) == 0 {
			return false
		}
		action = d.Info.RecentActions[len(d.Info.RecentActions)-1]
		return action.StartWorkflowResult != nil
	})
	id := action.StartWorkflowResult.WorkflowID
	var scheduled workflows.UsageReportsResult
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := e.c.GetWorkflow(wctx, id, "").Get(wctx, &scheduled); err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	want, _ := reports.LastComplete(reports.Weekly, action.ScheduleTime)
	if scheduled.Period.ID() != want.ID() {
		t.Errorf("scheduled run at %s reported %s, want %s", action.ScheduleTime, scheduled.Period.ID(), want.ID())
	}
	desc, err := e.c.DescribeWorkflow(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	attrs := desc.RawResponse.GetWorkflowExecutionInfo().GetSearchAttributes()
	if attrs.GetIndexedFields()["TemporalScheduledStartTime"] == nil {
		t.Errorf("the scheduled run has no TemporalScheduledStartTime: %v", attrs)
	}
}
