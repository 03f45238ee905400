package mail

import (
	"fmt"

	"github.com/beaver-gateway/beaver/internal/money"
)

var usageReportTpl = mustTemplate("usage_report")

// UsageLine is one model's or one key's part of a usage report.
type UsageLine struct {
	Name          string
	Note          string // e.g. "deleted"
	Requests      int64
	ChargedMicros int64
}

// UsageReport is a weekly or monthly usage summary. Lines come in the
// order they are shown (most spend first).
type UsageReport struct {
	Cadence       string // "weekly" or "monthly"
	Period        string // "30 Nov – 6 Dec 2026", "November 2026"
	Requests      int64
	ChargedMicros int64
	Models        []UsageLine
	Keys          []UsageLine
	BalanceMicros int64
	DailyMicros   int64  // average spend per day in the period
	DaysLeft      int64  // at DailyMicros; < 0 = nothing spent
	Link          string // the dashboard
	SettingsLink  string // where the setting is changed ("" = Link)
}

// maxUsageLines keeps the tables short; the rest is summed in one line.
const maxUsageLines = 15

// UsageReportEmail is the usage summary for one account and period, with
// the way to change or turn off these emails (the dashboard setting).
func UsageReportEmail(to string, r UsageReport) Message {
	type line struct {
		Name, Note, Charged string
		Requests            int64
	}
	lines := func(in []UsageLine) []line {
		out := make([]line, 0, min(len(in), maxUsageLines+1))
		var rest UsageLine
		for i, l := range in {
			if i >= maxUsageLines {
				rest.Requests += l.Requests
				rest.ChargedMicros += l.ChargedMicros
				continue
			}
			out = append(out, line{Name: l.Name, Note: l.Note, Requests: l.Requests, Charged: money.Format(l.ChargedMicros)})
		}
		if len(in) > maxUsageLines {
			out = append(out, line{Name: fmt.Sprintf("%d more", len(in)-maxUsageLines), Requests: rest.Requests,
				Charged: money.Format(rest.ChargedMicros)})
		}
		return out
	}
	settings := r.SettingsLink
	if settings == "" {
		settings = r.Link
	}
	var top []string
	for _, m := range r.Models[:min(3, len(r.Models))] {
		top = append(top, m.Name)
	}
	m := Message{To: to, Subject: fmt.Sprintf("Your Beaver %s usage: $%s, %d requests (%s)", r.Cadence,
		money.Format(r.ChargedMicros), r.Requests, r.Period)}
	return usageReportTpl.render(m, map[string]any{
		"Cadence": r.Cadence, "Period": r.Period, "Requests": r.Requests, "Spent": money.Format(r.ChargedMicros),
		"Models": lines(r.Models), "Keys": lines(r.Keys), "Top": top,
		"Balance": money.Format(r.BalanceMicros), "Daily": money.Format(r.DailyMicros),
		"HasRate": r.DaysLeft >= 0, "DaysLeft": r.DaysLeft, "Link": r.Link, "Settings": settings,
	})
}
