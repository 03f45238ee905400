package mail_test

import (
	"fmt"
	"strings"
	"testing"

	beavermail "github.com/beaver-gateway/beaver/internal/mail"
)

// A report with many models lists the first 15 and sums the rest in one
// line; without spend it says there is no rate instead of a number of days.
func TestUsageReportEmail(t *testing.T) {
	r := beavermail.UsageReport{Cadence: "weekly", Period: "30 Nov – 6 Dec 2026", Requests: 20, ChargedMicros: 0,
		BalanceMicros: 5_000_000, DaysLeft: -1, Link: "https://beaver.test/dashboard"}
	for i := range 20 {
		r.Models = append(r.Models, beavermail.UsageLine{Name: fmt.Sprintf("model-%02d", i), Requests: 1, ChargedMicros: 0})
	}
	m := beavermail.UsageReportEmail("a@example.com", r)
	for _, want := range []string{"model-14", "5 more", "no rate", "Balance: $5", "off"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, m.Text)
		}
	}
	if strings.Contains(m.Text, "model-15") || strings.Contains(m.HTML, "model-15") {
		t.Error("more than 15 models listed")
	}
	if !strings.Contains(m.HTML, "5 more") || !strings.Contains(m.HTML, "no rate") {
		t.Errorf("HTML lacks the summary lines:\n%s", m.HTML)
	}

	r.ChargedMicros, r.DailyMicros, r.DaysLeft, r.BalanceMicros = 70_000_000, 10_000_000, 0, 1
	m = beavermail.UsageReportEmail("a@example.com", r)
	if !strings.Contains(m.Text, "does not last another day") {
		t.Errorf("text:\n%s", m.Text)
	}
}
