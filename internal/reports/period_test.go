package reports_test

import (
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/reports"
)

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

// The period is the last complete week (Monday to Sunday, UTC) or calendar
// month before the given time, whatever the hour, the time zone, and
// across year boundaries (ISO weeks included).
func TestLastComplete(t *testing.T) {
	east := time.FixedZone("east", 9*3600)
	cases := []struct {
		cadence string
		at      time.Time
		key     string
		start   string
		end     string
		days    int64
		label   string
	}{
		{reports.Weekly, time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC), "2026-W49", "2026-11-30", "2026-12-07", 7, "30 Nov – 6 Dec 2026"},
		// A late run (catch-up on Wednesday) reports the same week.
		{reports.Weekly, time.Date(2026, 12, 9, 23, 59, 0, 0, time.UTC), "2026-W49", "2026-11-30", "2026-12-07", 7, "30 Nov – 6 Dec 2026"},
		// Sunday is the last day of its week: the week before is reported.
		{reports.Weekly, time.Date(2026, 12, 13, 12, 0, 0, 0, time.UTC), "2026-W49", "2026-11-30", "2026-12-07", 7, "30 Nov – 6 Dec 2026"},
		// Monday 08:00 in UTC+9 is still Sunday in UTC.
		{reports.Weekly, time.Date(2026, 12, 14, 8, 0, 0, 0, east), "2026-W49", "2026-11-30", "2026-12-07", 7, "30 Nov – 6 Dec 2026"},
		// Year boundaries: 2026 has an ISO week 53; 2025-12-29 starts 2026-W01.
		{reports.Weekly, time.Date(2027, 1, 4, 6, 0, 0, 0, time.UTC), "2026-W53", "2026-12-28", "2027-01-04", 7, "28 Dec 2026 – 3 Jan 2027"},
		{reports.Weekly, time.Date(2026, 1, 5, 6, 0, 0, 0, time.UTC), "2026-W01", "2025-12-29", "2026-01-05", 7, "29 Dec 2025 – 4 Jan 2026"},
		{reports.Monthly, time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC), "2026-11", "2026-11-01", "2026-12-01", 30, "November 2026"},
		{reports.Monthly, time.Date(2027, 1, 1, 6, 0, 0, 0, time.UTC), "2026-12", "2026-12-01", "2027-01-01", 31, "December 2026"},
		{reports.Monthly, time.Date(2028, 3, 1, 6, 0, 0, 0, time.UTC), "2028-02", "2028-02-01", "2028-03-01", 29, "February 2028"},
		{reports.Monthly, time.Date(2026, 3, 31, 23, 0, 0, 0, time.UTC), "2026-02", "2026-02-01", "2026-03-01", 28, "February 2026"},
	}
	for _, c := range cases {
		p, err := reports.LastComplete(c.cadence, c.at)
		if err != nil {
			t.Fatal(err)
		}
		if p.Key != c.key || !p.Start.Equal(day(c.start)) || !p.End.Equal(day(c.end)) || p.Days() != c.days ||
			p.Label() != c.label || p.StartDay() != c.start || p.EndDay() != c.end {
			t.Errorf("%s at %s: got %+v (%d days, %q)", c.cadence, c.at, p, p.Days(), p.Label())
		}
		if p.ID() != c.cadence+":"+c.key {
			t.Errorf("id %q", p.ID())
		}
	}
	if _, err := reports.LastComplete("daily", time.Now()); err == nil {
		t.Error("an unknown cadence was accepted")
	}
	p, _ := reports.LastComplete(reports.Weekly, time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC))
	if got := reports.ReportID("acct_1", p); got != "usage-report:acct_1:weekly:2026-W49" {
		t.Errorf("report id %q", got)
	}
}

func TestPreferences(t *testing.T) {
	wants := map[string][2]bool{ // weekly, monthly
		"": {false, true}, reports.Monthly: {false, true}, reports.Weekly: {true, false},
		reports.Both: {true, true}, reports.Off: {false, false},
	}
	for pref, w := range wants {
		if reports.Wants(pref, reports.Weekly) != w[0] || reports.Wants(pref, reports.Monthly) != w[1] {
			t.Errorf("preference %q: got weekly %v monthly %v", pref, reports.Wants(pref, reports.Weekly),
				reports.Wants(pref, reports.Monthly))
		}
	}
	for _, p := range []string{"weekly", "monthly", "both", "off"} {
		if !reports.ValidPreference(p) {
			t.Errorf("%q refused", p)
		}
	}
	for _, p := range []string{"", "daily", "Weekly", "none"} {
		if reports.ValidPreference(p) {
			t.Errorf("%q accepted", p)
		}
	}
}

func TestDaysLeft(t *testing.T) {
	cases := []struct{ balance, spent, days, want int64 }{
		{7_000_000, 2_500_000, 7, 19}, // 19.6 days
		{1, 1, 1, 1},
		{0, 5, 7, 0},
		{-10, 5, 7, 0},
		{2_500_000, 2_500_000, 7, 7},
		{1_000_000_000_000_000, 3, 31, 10_333_333_333_333_333}, // a billion dollars at 3 micros a month
	}
	for _, c := range cases {
		if got := reports.DaysLeft(c.balance, c.spent, c.days); got != c.want {
			t.Errorf("DaysLeft(%d, %d, %d) = %d, want %d", c.balance, c.spent, c.days, got, c.want)
		}
	}
}
