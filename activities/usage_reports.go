package activities

import (
	"context"
	"errors"
	"time"

	"github.com/beaver-gateway/beaver/internal/mail"
	"github.com/beaver-gateway/beaver/internal/reports"
)

// ListUsageReportRecipientsInput asks for one page of the accounts that get
// Period's report, in id order after After.
type ListUsageReportRecipientsInput struct {
	Period reports.Period
	After  string
	Limit  int
}

// ListUsageReportRecipientsResult is the page; fewer than Limit ids means
// it is the last.
type ListUsageReportRecipientsResult struct {
	AccountIDs []string
}

// ListUsageReportRecipients lists a page of active accounts that want the
// period's cadence and used Beaver in the period.
func (a *Activities) ListUsageReportRecipients(ctx context.Context, in ListUsageReportRecipientsInput) (ListUsageReportRecipientsResult, error) {
	if in.Limit <= 0 {
		return ListUsageReportRecipientsResult{}, badInput("Limit must be positive")
	}
	ids, err := reports.Recipients(ctx, a.DB, in.Period, in.After, in.Limit)
	return ListUsageReportRecipientsResult{AccountIDs: ids}, err
}

// SendUsageReportInput names the account and period.
type SendUsageReportInput struct {
	AccountID string
	Period    reports.Period
}

// Why SendUsageReport sent nothing.
const (
	ReportSkippedNoAccount   = "no_account"
	ReportSkippedInactive    = "inactive"
	ReportSkippedOptedOut    = "opted_out"
	ReportSkippedAlreadySent = "already_sent"
	ReportSkippedNoUsage     = "no_usage"
)

// SendUsageReportResult says whether the email went out, or why not.
type SendUsageReportResult struct {
	Sent    bool
	Skipped string
}

// SendUsageReport emails an account's usage report for a period, unless
// the account is gone or disabled, opted out of the cadence (read now, at
// send time), already got this report (usage_reports_sent), or made no
// request in the period. The email's idempotency key is the report's id,
// so a retried send is dropped by the provider; the sent row is written
// after the send, so a retry after a lost write sends under the same key.
func (a *Activities) SendUsageReport(ctx context.Context, in SendUsageReportInput) (SendUsageReportResult, error) {
	if in.AccountID == "" || in.Period.Key == "" {
		return SendUsageReportResult{}, badInput("SendUsageReport needs an account and a period")
	}
	acct, err := reports.Load(ctx, a.DB, in.AccountID)
	if errors.Is(err, reports.ErrNoAccount) {
		return SendUsageReportResult{Skipped: ReportSkippedNoAccount}, nil
	}
	if err != nil {
		return SendUsageReportResult{}, err
	}
	switch {
	case !acct.Active:
		return SendUsageReportResult{Skipped: ReportSkippedInactive}, nil
	case !reports.Wants(acct.UsageReports, in.Period.Cadence):
		return SendUsageReportResult{Skipped: ReportSkippedOptedOut}, nil
	}
	sent, err := reports.Sent(ctx, a.DB, acct.ID, in.Period)
	if err != nil {
		return SendUsageReportResult{}, err
	}
	if sent {
		return SendUsageReportResult{Skipped: ReportSkippedAlreadySent}, nil
	}
	r, err := reports.Compute(ctx, a.DB, acct, in.Period)
	if err != nil {
		return SendUsageReportResult{}, err
	}
	if r.Empty() {
		return SendUsageReportResult{Skipped: ReportSkippedNoUsage}, nil
	}
	m := mail.UsageReportEmail(acct.Email, usageReportMail(&r, a.PublicURL+"/dashboard", a.PublicURL+"/dashboard#usage-reports"))
	m.IdempotencyKey = reports.ReportID(acct.ID, in.Period)
	if err := a.send(ctx, m); err != nil {
		return SendUsageReportResult{}, err
	}
	if err := reports.MarkSent(ctx, a.DB, acct.ID, in.Period, time.Now()); err != nil {
		return SendUsageReportResult{}, err
	}
	return SendUsageReportResult{Sent: true}, nil
}

func usageReportMail(r *reports.Report, link, settings string) mail.UsageReport {
	out := mail.UsageReport{Cadence: r.Period.Cadence, Period: r.Period.Label(), Requests: r.Requests,
		ChargedMicros: r.ChargedMicros, BalanceMicros: r.BalanceMicros, DailyMicros: r.DailyMicros,
		DaysLeft: r.DaysLeft, Link: link, SettingsLink: settings}
	for _, m := range r.Models {
		out.Models = append(out.Models, mail.UsageLine{Name: m.Model, Requests: m.Requests, ChargedMicros: m.ChargedMicros})
	}
	for _, k := range r.Keys {
		l := mail.UsageLine{Name: k.Name, Requests: k.Requests, ChargedMicros: k.ChargedMicros}
		if k.Deleted {
			l.Note = "deleted"
		}
		out.Keys = append(out.Keys, l)
	}
	return out
}
