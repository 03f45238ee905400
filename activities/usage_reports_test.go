package activities_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/internal/dailyusage"
	"github.com/beaver-gateway/beaver/internal/mail"
	"github.com/beaver-gateway/beaver/internal/reports"
	"github.com/beaver-gateway/beaver/models"
)

// SendUsageReport emails a report once per account and period, to an
// account that wants the cadence (read at send time) and used Beaver in the
// period; the email goes through the mail recorder with the report's id as
// its idempotency key, a link to the dashboard and how to turn it off.
func TestSendUsageReport(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		week, err := reports.LastComplete(reports.Weekly, time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC))
		require.NoError(t, err)
		month, err := reports.LastComplete(reports.Monthly, time.Date(2027, 1, 1, 6, 0, 0, 0, time.UTC))
		require.NoError(t, err)
		acct := f.account(t, "rep@example.com")
		require.NoError(t, f.d.Model(&models.Account{}).Where("id = ?", acct.ID).Updates(map[string]any{
			"balance_micros": 10_000_000, "usage_reports": reports.Weekly}).Error)
		require.NoError(t, dailyusage.Add(f.d.DB, []dailyusage.Row{
			{AccountID: acct.ID, Day: "2026-12-01", Model: "gpt-4o", Sums: dailyusage.Sums{Requests: 4, ChargedMicros: 3_500_000}},
			{AccountID: acct.ID, Day: "2026-12-02", Model: "claude-haiku", Sums: dailyusage.Sums{Requests: 2, ChargedMicros: 0}},
		}))
		send := func(p reports.Period) activities.SendUsageReportResult {
			t.Helper()
			res, err := run[activities.SendUsageReportResult](t, f, f.acts.SendUsageReport,
				activities.SendUsageReportInput{AccountID: acct.ID, Period: p})
			require.NoError(t, err)
			return res
		}

		require.Equal(t, activities.SendUsageReportResult{Sent: true}, send(week))
		msgs := f.mail.To("rep@example.com")
		require.Len(t, msgs, 1)
		m := msgs[0]
		require.Equal(t, "usage-report:"+acct.ID+":weekly:2026-W49", m.IdempotencyKey)
		require.Equal(t, "Your Beaver weekly usage: $3.5, 6 requests (30 Nov – 6 Dec 2026)", m.Subject)
		for _, want := range []string{"gpt-4o", "claude-haiku", "Top models: gpt-4o, claude-haiku", "$3.5",
			"Balance: $10", "$0.5 a day", "about 20 more day(s)", reports.SessionKeyName,
			"https://beaver.test/dashboard", "usage report setting"} {
			require.Contains(t, m.Text, want)
		}
		require.Contains(t, m.HTML, `href="https://beaver.test/dashboard"`)
		require.Contains(t, m.HTML, "<code>gpt-4o</code>")
		require.Equal(t, []string{"https://beaver.test/dashboard", "https://beaver.test/dashboard#usage-reports"}, mail.Links(m.Text))
		require.Contains(t, m.HTML, `href="https://beaver.test/dashboard#usage-reports"`)

		// A second run for the same week (a retry, a manual start) sends
		// nothing more.
		require.Equal(t, activities.SendUsageReportResult{Skipped: activities.ReportSkippedAlreadySent}, send(week))
		// The account wants weekly reports only.
		require.Equal(t, activities.SendUsageReportResult{Skipped: activities.ReportSkippedOptedOut}, send(month))
		// Opting out after the fan-out listed the account still counts.
		other, _ := reports.LastComplete(reports.Weekly, time.Date(2026, 12, 14, 6, 0, 0, 0, time.UTC))
		require.NoError(t, reports.SetPreference(ctx, f.d, acct.ID, reports.Off, time.Now()))
		require.Equal(t, activities.SendUsageReportResult{Skipped: activities.ReportSkippedOptedOut}, send(other))
		// Both: the month is sent too.
		require.NoError(t, reports.SetPreference(ctx, f.d, acct.ID, reports.Both, time.Now()))
		require.Equal(t, activities.SendUsageReportResult{Sent: true}, send(month))
		// A week without usage: no email.
		require.Equal(t, activities.SendUsageReportResult{Skipped: activities.ReportSkippedNoUsage}, send(other))
		// A disabled account, an unknown one.
		require.NoError(t, f.d.Model(&models.Account{}).Where("id = ?", acct.ID).Update("active", false).Error)
		later, _ := reports.LastComplete(reports.Weekly, time.Date(2026, 12, 21, 6, 0, 0, 0, time.UTC))
		require.Equal(t, activities.SendUsageReportResult{Skipped: activities.ReportSkippedInactive}, send(later))
		res, err := run[activities.SendUsageReportResult](t, f, f.acts.SendUsageReport,
			activities.SendUsageReportInput{AccountID: "acct_nobody", Period: week})
		require.NoError(t, err)
		require.Equal(t, activities.ReportSkippedNoAccount, res.Skipped)

		msgs = f.mail.To("rep@example.com")
		require.Len(t, msgs, 2)
		require.True(t, strings.HasPrefix(msgs[1].Subject, "Your Beaver monthly usage: $3.5, 6 requests (December 2026)"))
		require.Equal(t, "usage-report:"+acct.ID+":monthly:2026-12", msgs[1].IdempotencyKey)

		// Listing: the account (active again, both) used Beaver in the week.
		require.NoError(t, f.d.Model(&models.Account{}).Where("id = ?", acct.ID).Update("active", true).Error)
		page, err := run[activities.ListUsageReportRecipientsResult](t, f, f.acts.ListUsageReportRecipients,
			activities.ListUsageReportRecipientsInput{Period: week, Limit: 10})
		require.NoError(t, err)
		require.Equal(t, []string{acct.ID}, page.AccountIDs)
	})
}
