package ratelimit_test

import (
	"context"
	"fmt"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/ratelimit"
)

// burstAcrossBoundary opens a window on key with one hit, sends limit-1 hits
// halfway through it and limit hits just after it has ended. It returns how
// many hits were allowed and the most allowed hits that fell inside any span
// of one period. Bounded: 2*limit hits and about 1.1 periods of sleeping.
func burstAcrossBoundary(l *ratelimit.Limiter, key string, limit int64, period time.Duration) (allowed, maxInPeriod int) {
	ctx := context.Background()
	var at []time.Time
	hit := func() {
		if l.Allow(ctx, key, limit, period).Allowed {
			at = append(at, time.Now())
		}
	}
	start := time.Now()
	hit() // the window opens here and ends one period later
	opened := time.Now()
	time.Sleep(time.Until(start.Add(period / 2)))
	for range limit - 1 {
		hit()
	}
	time.Sleep(time.Until(opened.Add(period + period/20)))
	for range limit {
		hit()
	}
	return len(at), maxWithin(at, period)
}

// maxWithin returns the largest number of times inside any half-open span of
// length d.
func maxWithin(times []time.Time, d time.Duration) int {
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	best, lo := 0, 0
	for hi := range times {
		for times[hi].Sub(times[lo]) >= d {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// TestFixedWindowEdge documents the library's fixed-window behaviour: with a
// limit of 5 per second, all 10 hits of a burst straddling a window boundary
// pass, 9 of them within less than one second.
func TestFixedWindowEdge(t *testing.T) {
	const limit, period = 5, time.Second
	run := func(t *testing.T, l *ratelimit.Limiter) {
		allowed, maxIn := burstAcrossBoundary(l, ns(t)+"edge", limit, period)
		if allowed != 2*limit {
			t.Fatalf("allowed %d of %d hits across the boundary, want all", allowed, 2*limit)
		}
		if maxIn < 2*limit-1 {
			t.Fatalf("at most %d allowed hits within one period, want %d (a stalled machine can cause this)", maxIn, 2*limit-1)
		}
		t.Logf("limit %d per %v: %d hits allowed within one period across a window boundary", limit, period, maxIn)
	}
	t.Run("memory", func(t *testing.T) { run(t, newMemory(t)) })
	t.Run("redis", func(t *testing.T) { run(t, newRedis(t, testRedisURL(t), nil)) })
}

func TestMaxWithin(t *testing.T) {
	t0 := time.Unix(0, 0)
	at := func(ms ...int) []time.Time {
		var ts []time.Time
		for _, m := range ms {
			ts = append(ts, t0.Add(time.Duration(m)*time.Millisecond))
		}
		return ts
	}
	for _, c := range []struct {
		times []time.Time
		want  int
	}{
		{nil, 0},
		{at(0), 1},
		{at(0, 999, 1000), 2},
		{at(0, 500, 600, 1000, 1100, 1200), 5},
		{at(1200, 0, 600, 1100, 500, 1000), 5},
	} {
		if got := maxWithin(c.times, time.Second); got != c.want {
			t.Errorf("maxWithin(%v) = %d, want %d", c.times, got, c.want)
		}
	}
}

// BenchmarkFixedWindowEdge measures the worst burst per period across a
// window boundary, as a multiple of the limit (approaches 2).
func BenchmarkFixedWindowEdge(b *testing.B) {
	l, err := ratelimit.New(ratelimit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	const limit, period = 20, 200 * time.Millisecond
	worst, i := 0, 0
	for b.Loop() {
		_, maxIn := burstAcrossBoundary(l, fmt.Sprintf("%sedge%d", ns(b), i), limit, period)
		worst = max(worst, maxIn)
		i++
	}
	b.ReportMetric(float64(worst)/limit, "x_limit_per_period")
}

func BenchmarkAllowMemory(b *testing.B) {
	benchAllow(b, newMemory(b))
}

func BenchmarkAllowRedis(b *testing.B) {
	benchAllow(b, newRedis(b, testRedisURL(b), nil))
}

func benchAllow(b *testing.B, l *ratelimit.Limiter) {
	p := ns(b)
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		key := fmt.Sprintf("%sk%d", p, n.Add(1))
		for pb.Next() {
			l.Allow(context.Background(), key, 1<<40, time.Minute)
		}
	})
}
