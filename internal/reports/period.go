// Package reports builds the weekly and monthly usage report emails: which
// accounts want which cadence (accounts.usage_reports), the period a run
// reports on, and the report itself, computed from the daily usage sums
// (internal/dailyusage; never from the usage logs).
package reports

import (
	"fmt"
	"time"
)

// Cadences, and the account preferences (PATCH /users/me usage_reports).
const (
	Weekly  = "weekly"
	Monthly = "monthly"
	Both    = "both"
	Off     = "off"
	// Default is every account's preference until it chooses.
	Default = Monthly
)

// Preferences are the values usage_reports accepts, in the order the
// dashboard offers them.
var Preferences = []string{Weekly, Monthly, Both, Off}

// ValidPreference reports whether p is one of Preferences.
func ValidPreference(p string) bool {
	for _, v := range Preferences {
		if p == v {
			return true
		}
	}
	return false
}

// Wants reports whether an account with preference pref gets the cadence's
// report ("" is the default, monthly).
func Wants(pref, cadence string) bool {
	if pref == "" {
		pref = Default
	}
	return pref == cadence || (pref == Both && (cadence == Weekly || cadence == Monthly))
}

// Period is the stretch of whole UTC days a report covers: [Start, End).
type Period struct {
	Cadence string
	// Key names the period: "2026-W49" (the ISO week of Start) or
	// "2026-11".
	Key   string
	Start time.Time
	End   time.Time
}

// ID is the cadence and key, e.g. "weekly:2026-W49": part of the report's
// workflow id and mail idempotency key, and its row in usage_reports_sent.
func (p Period) ID() string { return p.Cadence + ":" + p.Key }

// StartDay and EndDay are Start and End as daily_usage's days.
func (p Period) StartDay() string { return p.Start.Format(time.DateOnly) }

// EndDay is the first day after the period.
func (p Period) EndDay() string { return p.End.Format(time.DateOnly) }

// Days is the number of days in the period (7, or 28 to 31).
func (p Period) Days() int64 { return int64(p.End.Sub(p.Start) / (24 * time.Hour)) }

// Label is the period for people: "30 Nov – 6 Dec 2026" or "November 2026".
func (p Period) Label() string {
	if p.Cadence == Monthly {
		return p.Start.Format("January 2006")
	}
	last := p.End.AddDate(0, 0, -1)
	if p.Start.Year() != last.Year() {
		return p.Start.Format("2 Jan 2006") + " – " + last.Format("2 Jan 2006")
	}
	return p.Start.Format("2 Jan") + " – " + last.Format("2 Jan 2006")
}

// LastComplete is the last complete period of the cadence before at: the
// week Monday to Sunday (UTC) before at's week, or the calendar month
// before at's month. A schedule's run at Monday 06:00 (or the 1st) reports
// on the week (month) that just ended, and so does a run that starts late
// (a catch-up after an outage) as long as it starts within the next period.
func LastComplete(cadence string, at time.Time) (Period, error) {
	at = at.UTC()
	day := time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)
	switch cadence {
	case Weekly:
		sinceMonday := (int(day.Weekday()) + 6) % 7
		end := day.AddDate(0, 0, -sinceMonday)
		start := end.AddDate(0, 0, -7)
		year, week := start.ISOWeek()
		return Period{Cadence: Weekly, Key: fmt.Sprintf("%04d-W%02d", year, week), Start: start, End: end}, nil
	case Monthly:
		end := time.Date(at.Year(), at.Month(), 1, 0, 0, 0, 0, time.UTC)
		start := end.AddDate(0, -1, 0)
		return Period{Cadence: Monthly, Key: start.Format("2006-01"), Start: start, End: end}, nil
	}
	return Period{}, fmt.Errorf("unknown report cadence %q (want %s or %s)", cadence, Weekly, Monthly)
}

// ReportID names one account's report for one period, e.g.
// "usage-report:acct_1:weekly:2026-W49": the report's workflow id and its
// email's idempotency key.
func ReportID(accountID string, p Period) string { return "usage-report:" + accountID + ":" + p.ID() }
