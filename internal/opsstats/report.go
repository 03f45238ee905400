package opsstats

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/beaver-gateway/beaver/internal/db"
)

// Range is a time range the operations view shows: its span, the grain of
// the rows its series read (at most a few thousand rows: 61 minutes, 25 or
// 169 hours, or 31 days, times the models in use) and that of its money
// series (per hour for 1h and 24h, per day for 7d and 30d).
type Range struct {
	Name       string
	Span       time.Duration
	Grain      string
	Step       time.Duration
	MoneyGrain string
	MoneyStep  time.Duration
}

// Ranges are the ranges GET /admin/stats takes, by name.
var Ranges = map[string]Range{
	"1h":  {Name: "1h", Span: time.Hour, Grain: Minute, Step: time.Minute, MoneyGrain: Hour, MoneyStep: time.Hour},
	"24h": {Name: "24h", Span: 24 * time.Hour, Grain: Hour, Step: time.Hour, MoneyGrain: Hour, MoneyStep: time.Hour},
	"7d":  {Name: "7d", Span: 7 * 24 * time.Hour, Grain: Hour, Step: time.Hour, MoneyGrain: Day, MoneyStep: 24 * time.Hour},
	"30d": {Name: "30d", Span: 30 * 24 * time.Hour, Grain: Day, Step: 24 * time.Hour, MoneyGrain: Day, MoneyStep: 24 * time.Hour},
}

// Figures are the derived numbers of some Sums over a time span.
type Figures struct {
	Requests          int64   `json:"requests"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	UpstreamErrors    int64   `json:"upstream_errors"`
	ClientErrors      int64   `json:"client_errors"`
	Cancelled         int64   `json:"cancelled"`
	// ErrorRate is (upstream + client errors) / requests; 0 without
	// requests.
	ErrorRate float64 `json:"error_rate"`
	// Percentiles in milliseconds, each the upper bound of its histogram
	// bucket (within a factor of √2).
	AddedP50MS    float64 `json:"added_p50_ms"`
	AddedP99MS    float64 `json:"added_p99_ms"`
	UpstreamP50MS float64 `json:"upstream_p50_ms"`
	UpstreamP99MS float64 `json:"upstream_p99_ms"`
	// Means in milliseconds (from the exact sums).
	AddedMeanMS        float64 `json:"added_mean_ms"`
	UpstreamMeanMS     float64 `json:"upstream_mean_ms"`
	ChargedMicros      int64   `json:"charged_micros"`
	ProviderCostMicros int64   `json:"provider_cost_micros"`
	MarginMicros       int64   `json:"margin_micros"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// FiguresOf derives s's figures over seconds (for the rate; at least 1).
func FiguresOf(s *Sums, seconds float64) Figures {
	f := Figures{Requests: s.Requests, UpstreamErrors: s.UpstreamErrors, ClientErrors: s.ClientErrors, Cancelled: s.Cancelled,
		ChargedMicros: s.ChargedMicros, ProviderCostMicros: s.ProviderCostMicros, MarginMicros: s.ChargedMicros - s.ProviderCostMicros}
	f.RequestsPerSecond = float64(s.Requests) / max(seconds, 1)
	if s.Requests > 0 {
		f.ErrorRate = float64(s.UpstreamErrors+s.ClientErrors) / float64(s.Requests)
		f.AddedMeanMS = float64(s.AddedUS) / 1000 / float64(s.Requests)
		f.UpstreamMeanMS = float64(s.UpstreamUS) / 1000 / float64(s.Requests)
	}
	f.AddedP50MS, f.AddedP99MS = ms(s.Added.Percentile(50)), ms(s.Added.Percentile(99))
	f.UpstreamP50MS, f.UpstreamP99MS = ms(s.Upstream.Percentile(50)), ms(s.Upstream.Percentile(99))
	return f
}

// Point is one time bucket of a series.
type Point struct {
	At time.Time `json:"t"`
	Figures
}

// ModelFigures are one provider's model over the range.
type ModelFigures struct {
	Provider string `json:"provider"`
	Model    string `json:"model"`
	Figures
}

// MoneyPoint is the spend of one hour or day.
type MoneyPoint struct {
	At                 time.Time `json:"t"`
	ChargedMicros      int64     `json:"charged_micros"`
	ProviderCostMicros int64     `json:"provider_cost_micros"`
	MarginMicros       int64     `json:"margin_micros"`
}

// Report is the traffic part of the operations view over a range.
type Report struct {
	Range       string         `json:"range"`
	From        time.Time      `json:"from"`
	To          time.Time      `json:"to"`
	StepSeconds int64          `json:"step_seconds"`
	Totals      Figures        `json:"totals"`
	Series      []Point        `json:"series"`
	Models      []ModelFigures `json:"models"`
	Money       struct {
		Step   string       `json:"step"` // "hour" or "day"
		Series []MoneyPoint `json:"series"`
	} `json:"money"`
}

// Build reads the range's rows ending at now and derives the report.
func Build(ctx context.Context, d *db.DB, rg Range, now time.Time) (*Report, error) {
	now = now.UTC()
	from, to := Truncate(rg.Grain, now.Add(-rg.Span)), Truncate(rg.Grain, now).Add(rg.Step)
	rows, err := Read(ctx, d, rg.Grain, from, to)
	if err != nil {
		return nil, err
	}
	money := rows
	mFrom, mTo := Truncate(rg.MoneyGrain, now.Add(-rg.Span)), Truncate(rg.MoneyGrain, now).Add(rg.MoneyStep)
	if rg.MoneyGrain != rg.Grain {
		if money, err = Read(ctx, d, rg.MoneyGrain, mFrom, mTo); err != nil {
			return nil, err
		}
	}
	return assemble(rg, now, from, to, rows, mFrom, mTo, money), nil
}

// assemble derives a report from rows (pure: the tests' and Build's).
func assemble(rg Range, now, from, to time.Time, rows []Row, mFrom, mTo time.Time, money []Row) *Report {
	rep := &Report{Range: rg.Name, From: from, To: to, StepSeconds: int64(rg.Step / time.Second)}
	// elapsed is how much of the bucket starting at t has passed.
	elapsed := func(t time.Time, step time.Duration) float64 {
		return min(now.Sub(t), step).Seconds()
	}
	byBucket := map[int64]*Sums{}
	byModel := map[[2]string]*Sums{}
	var total Sums
	for i := range rows {
		r := &rows[i]
		b := byBucket[r.Bucket.Unix()]
		if b == nil {
			b = &Sums{}
			byBucket[r.Bucket.Unix()] = b
		}
		b.Add(&r.Sums)
		k := [2]string{r.Provider, r.Model}
		m := byModel[k]
		if m == nil {
			m = &Sums{}
			byModel[k] = m
		}
		m.Add(&r.Sums)
		total.Add(&r.Sums)
	}
	for t := from; t.Before(to); t = t.Add(rg.Step) {
		s := byBucket[t.Unix()]
		if s == nil {
			s = &Sums{}
		}
		rep.Series = append(rep.Series, Point{At: t, Figures: FiguresOf(s, elapsed(t, rg.Step))})
	}
	span := now.Sub(from).Seconds()
	rep.Totals = FiguresOf(&total, span)
	rep.Models = make([]ModelFigures, 0, len(byModel))
	for k, s := range byModel {
		rep.Models = append(rep.Models, ModelFigures{Provider: k[0], Model: k[1], Figures: FiguresOf(s, span)})
	}
	sort.Slice(rep.Models, func(i, j int) bool {
		a, b := rep.Models[i], rep.Models[j]
		if a.Requests != b.Requests {
			return a.Requests > b.Requests
		}
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		return a.Model < b.Model
	})
	rep.Money.Step = "hour"
	if rg.MoneyGrain == Day {
		rep.Money.Step = "day"
	}
	byMoney := map[int64]*MoneyPoint{}
	for i := range money {
		r := &money[i]
		p := byMoney[r.Bucket.Unix()]
		if p == nil {
			p = &MoneyPoint{At: r.Bucket}
			byMoney[r.Bucket.Unix()] = p
		}
		p.ChargedMicros += r.ChargedMicros
		p.ProviderCostMicros += r.ProviderCostMicros
		p.MarginMicros = p.ChargedMicros - p.ProviderCostMicros
	}
	for t := mFrom; t.Before(mTo); t = t.Add(rg.MoneyStep) {
		if p := byMoney[t.Unix()]; p != nil {
			rep.Money.Series = append(rep.Money.Series, *p)
		} else {
			rep.Money.Series = append(rep.Money.Series, MoneyPoint{At: t})
		}
	}
	return rep
}

// Account is one account's spend over a range of days.
type Account struct {
	AccountID     string `json:"account_id"`
	Email         string `json:"email"`
	Requests      int64  `json:"requests"`
	ChargedMicros int64  `json:"charged_micros"`
}

// TopAccounts are the limit accounts that were charged the most on the UTC
// days from fromDay on, most first, from daily_usage (per-day
// granularity: a range that starts mid-day counts that whole day).
func TopAccounts(ctx context.Context, d *db.DB, fromDay time.Time, limit int) ([]Account, error) {
	out := []Account{}
	err := d.WithContext(ctx).Raw(`SELECT u.account_id, COALESCE(a.email, '') AS email,
			CAST(SUM(u.requests) AS BIGINT) AS requests, CAST(SUM(u.charged_micros) AS BIGINT) AS charged_micros
		FROM daily_usage u LEFT JOIN accounts a ON a.id = u.account_id
		WHERE u.day >= ?
		GROUP BY u.account_id, a.email
		HAVING SUM(u.charged_micros) > 0
		ORDER BY 4 DESC, 1
		LIMIT ?`, fromDay.UTC().Format(time.DateOnly), limit).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("top accounts: %w", err)
	}
	return out, nil
}
