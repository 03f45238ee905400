package opsstats_test

import (
	"context"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/opsstats"
	"github.com/beaver-gateway/beaver/internal/testenv"
)

func TestBuckets(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want int
	}{
		{0, 0}, {99 * time.Microsecond, 0}, {100 * time.Microsecond, 1}, {141 * time.Microsecond, 1},
		{142 * time.Microsecond, 2}, {200 * time.Microsecond, 3}, {time.Millisecond, 7}, {time.Second, 27},
		{time.Hour, opsstats.Buckets - 1},
	} {
		if got := opsstats.BucketOf(c.d); got != c.want {
			t.Errorf("BucketOf(%v) = %d, want %d", c.d, got, c.want)
		}
		if i := opsstats.BucketOf(c.d); i < opsstats.Buckets-1 && c.d >= opsstats.BucketUpper(i) {
			t.Errorf("%v is not under its bucket's upper bound %v", c.d, opsstats.BucketUpper(i))
		}
	}
}

// Percentiles come from the merged histograms of every process: two
// processes whose own p99s are 1ms and 1s have a p99 over both that is
// neither their mean nor their maximum but the merged rank's.
func TestPercentileOfMergedHistograms(t *testing.T) {
	var a, b opsstats.Histogram
	a[opsstats.BucketOf(time.Millisecond)] = 97
	b[opsstats.BucketOf(time.Millisecond)] = 1
	b[opsstats.BucketOf(time.Second)] = 2
	if got := a.Percentile(99); got != opsstats.BucketUpper(opsstats.BucketOf(time.Millisecond)) {
		t.Fatalf("a's p99 = %v", got)
	}
	if got := b.Percentile(50); got != opsstats.BucketUpper(opsstats.BucketOf(time.Second)) {
		t.Fatalf("b's p50 = %v", got)
	}
	m := a
	m.Add(&b) // 98 at 1ms, 2 at 1s: rank 50 and rank 99 of 100
	if got := m.Percentile(50); got != opsstats.BucketUpper(opsstats.BucketOf(time.Millisecond)) {
		t.Errorf("merged p50 = %v", got)
	}
	if got := m.Percentile(99); got != opsstats.BucketUpper(opsstats.BucketOf(time.Second)) {
		t.Errorf("merged p99 = %v", got)
	}
	if got := m.Percentile(98); got != opsstats.BucketUpper(opsstats.BucketOf(time.Millisecond)) {
		t.Errorf("merged p98 = %v", got)
	}
	var empty opsstats.Histogram
	if empty.Percentile(99) != 0 {
		t.Error("an empty histogram has no percentile")
	}
}

// Two processes (two Recorders, two connections) add to the same minute,
// hour and day rows; each flush adds only what it had not flushed, and the
// report merges their histograms.
func TestFlushIsAdditiveAcrossProcesses(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			ctx := context.Background()
			d1, url := testenv.OpenURL(t, dialect)
			d2, err := db.Open(url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d2.Close() })
			clock := testenv.NewClock()
			clock.Advance(10*time.Hour + 30*time.Minute + 15*time.Second)
			p1 := opsstats.New(d1, opsstats.Options{Now: clock.Now})
			p2 := opsstats.New(d2, opsstats.Options{Now: clock.Now})

			ok := opsstats.Observation{Provider: "openai", Model: "openai/gpt-4o-mini", Added: time.Millisecond,
				Upstream: 100 * time.Millisecond, ChargedMicros: 1200, ProviderCostMicros: 1000}
			for range 48 {
				p1.Observe(ok)
			}
			for range 49 {
				p2.Observe(ok)
			}
			slow := ok
			slow.Outcome, slow.Upstream, slow.ChargedMicros, slow.ProviderCostMicros = opsstats.UpstreamError, 30*time.Second, 0, 0
			p1.Observe(slow)
			p2.Observe(slow)
			bad := ok
			bad.Outcome, bad.ChargedMicros, bad.ProviderCostMicros = opsstats.ClientError, 0, 0
			p2.Observe(bad)
			other := ok
			other.Provider, other.Model = "anthropic", "anthropic/claude-3-5-haiku-20241022"
			p1.Observe(other)

			for _, p := range []*opsstats.Recorder{p1, p2, p1} { // the second flush of p1 adds nothing
				if err := p.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			}
			for _, grain := range []string{opsstats.Minute, opsstats.Hour, opsstats.Day} {
				start := opsstats.Truncate(grain, clock.Now())
				rows, err := opsstats.Read(ctx, d1, grain, start, start.Add(time.Minute))
				if err != nil {
					t.Fatal(err)
				}
				if len(rows) != 2 {
					t.Fatalf("%s rows: %d, want 2 (one per model)", grain, len(rows))
				}
				r := rows[1] // sorted by provider: anthropic, openai
				if r.Provider != "openai" || r.Requests != 100 || r.UpstreamErrors != 2 || r.ClientErrors != 1 ||
					r.ChargedMicros != 97*1200 || r.ProviderCostMicros != 97*1000 {
					t.Fatalf("%s openai row: %+v", grain, r.Sums)
				}
				if r.Upstream.Count() != 100 || r.Upstream[opsstats.BucketOf(30*time.Second)] != 2 {
					t.Fatalf("%s upstream histogram: %v", grain, r.Upstream)
				}
				if rows[0].Requests != 1 {
					t.Fatalf("%s anthropic row: %+v", grain, rows[0].Sums)
				}
			}

			// Later traffic in the next minute: its own minute row, the same
			// hour and day rows.
			clock.Advance(time.Minute)
			p2.Observe(ok)
			if err := p2.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			rep, err := opsstats.Build(ctx, d1, opsstats.Ranges["1h"], clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			tot := rep.Totals
			if tot.Requests != 102 || tot.UpstreamErrors != 2 || tot.ClientErrors != 1 || tot.ChargedMicros != 99*1200 ||
				tot.MarginMicros != 99*200 {
				t.Fatalf("totals: %+v", tot)
			}
			if want := 3.0 / 102; tot.ErrorRate != want {
				t.Errorf("error rate %v, want %v", tot.ErrorRate, want)
			}
			// 2 of 102 upstream latencies are 30s: p99 (rank 101) is in their bucket, p50 in 100ms's.
			if want := float64(opsstats.BucketUpper(opsstats.BucketOf(30*time.Second)).Microseconds()) / 1000; tot.UpstreamP99MS != want {
				t.Errorf("upstream p99 %v ms, want %v", tot.UpstreamP99MS, want)
			}
			if want := float64(opsstats.BucketUpper(opsstats.BucketOf(100*time.Millisecond)).Microseconds()) / 1000; tot.UpstreamP50MS != want {
				t.Errorf("upstream p50 %v ms, want %v", tot.UpstreamP50MS, want)
			}
			if len(rep.Series) != 61 || rep.StepSeconds != 60 {
				t.Fatalf("1h series: %d points of %ds", len(rep.Series), rep.StepSeconds)
			}
			last, prev := rep.Series[60], rep.Series[59]
			if last.Requests != 1 || prev.Requests != 101 {
				t.Errorf("last minutes: %d, %d requests", prev.Requests, last.Requests)
			}
			if len(rep.Models) != 2 || rep.Models[0].Model != "openai/gpt-4o-mini" || rep.Models[0].Requests != 101 {
				t.Errorf("models: %+v", rep.Models)
			}
			if rep.Money.Step != "hour" || len(rep.Money.Series) != 2 || rep.Money.Series[1].ChargedMicros != 99*1200 {
				t.Errorf("money: %+v", rep.Money)
			}
			for name, rg := range opsstats.Ranges {
				rep, err := opsstats.Build(ctx, d1, rg, clock.Now())
				if err != nil {
					t.Fatal(err)
				}
				if rep.Totals.Requests != 102 || rep.Totals.ChargedMicros != 99*1200 {
					t.Errorf("%s totals: %+v", name, rep.Totals)
				}
				var money int64
				for _, p := range rep.Money.Series {
					money += p.ChargedMicros
				}
				if money != 99*1200 {
					t.Errorf("%s money series sums to %d", name, money)
				}
			}
		})
	}
}

// Minute rows older than the retention are pruned by a flush (hour and day
// rows stay).
func TestMinuteRowsArePruned(t *testing.T) {
	ctx := context.Background()
	d := testenv.Open(t, db.SQLite)
	clock := testenv.NewClock()
	r := opsstats.New(d, opsstats.Options{Now: clock.Now, MinuteRetention: time.Hour})
	r.Observe(opsstats.Observation{Provider: "openai", Model: "openai/gpt-4o"})
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Advance(3 * time.Hour)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	far := clock.Now().Add(-10 * 24 * time.Hour)
	for grain, want := range map[string]int{opsstats.Minute: 0, opsstats.Hour: 1, opsstats.Day: 1} {
		rows, err := opsstats.Read(ctx, d, grain, far, clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != want {
			t.Errorf("%s rows: %d, want %d", grain, len(rows), want)
		}
	}
}

// Observations made while flushes run are each written exactly once: a
// flush takes the sums whole, and adds that raced with it land in the
// next one.
func TestObserveDuringFlushes(t *testing.T) {
	ctx := context.Background()
	d := testenv.Open(t, db.SQLite)
	clock := testenv.NewClock()
	r := opsstats.New(d, opsstats.Options{Now: clock.Now})
	const workers, each = 8, 500
	done := make(chan struct{})
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			model := []string{"openai/a", "openai/b"}[w%2]
			for range each {
				r.Observe(opsstats.Observation{Provider: "openai", Model: model, ChargedMicros: 3, Upstream: time.Millisecond})
			}
		}()
	}
	finished := 0
	for finished < workers {
		select {
		case <-done:
			finished++
		default:
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := opsstats.Read(ctx, d, opsstats.Hour, clock.Now().Add(-time.Hour), clock.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var sum opsstats.Sums
	for i := range rows {
		sum.Add(&rows[i].Sums)
	}
	if sum.Requests != workers*each || sum.ChargedMicros != 3*workers*each || sum.Upstream.Count() != workers*each {
		t.Fatalf("written %d requests, %d micros, %d latencies; want %d", sum.Requests, sum.ChargedMicros, sum.Upstream.Count(), workers*each)
	}
}

// A flush that fails keeps its sums: the next one writes them, once.
func TestFailedFlushKeepsSums(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			ctx := context.Background()
			d := testenv.Open(t, dialect)
			clock := testenv.NewClock()
			r := opsstats.New(d, opsstats.Options{Now: clock.Now})
			ob := opsstats.Observation{Provider: "openai", Model: "openai/gpt-4o", ChargedMicros: 7}
			r.Observe(ob)
			if err := d.Exec("ALTER TABLE ops_stats RENAME TO ops_stats_away").Error; err != nil {
				t.Fatal(err)
			}
			if err := r.Flush(ctx); err == nil {
				t.Fatal("a flush without its table succeeded")
			}
			r.Observe(ob) // after the failed flush took the first
			if err := d.Exec("ALTER TABLE ops_stats_away RENAME TO ops_stats").Error; err != nil {
				t.Fatal(err)
			}
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			rows, err := opsstats.Read(ctx, d, opsstats.Minute, clock.Now(), clock.Now().Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1 || rows[0].Requests != 2 || rows[0].ChargedMicros != 14 {
				t.Fatalf("rows after a failed flush: %+v", rows)
			}
		})
	}
}
