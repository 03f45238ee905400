package ratelimit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/beaver-gateway/beaver/internal/ratelimit"
)

func TestAllowUpToLimitThenDenied(t *testing.T) {
	l := newMemory(t)
	ctx := context.Background()
	key := ns(t) + "key:1"
	before := time.Now()

	var reset time.Time
	for i := int64(1); i <= 3; i++ {
		r := l.Allow(ctx, key, 3, time.Minute)
		if !r.Allowed || r.Limit != 3 || r.Remaining != 3-i || r.RetryAfter != 0 {
			t.Fatalf("hit %d: %+v", i, r)
		}
		if i == 1 {
			reset = r.Reset
		} else if !r.Reset.Equal(reset) {
			t.Fatalf("hit %d: reset moved within a window: %v then %v", i, reset, r.Reset)
		}
	}
	// X-RateLimit-Reset is whole seconds, after now and at most a period (+ rounding) away.
	if reset.Nanosecond() != 0 || !reset.After(before) || reset.After(before.Add(time.Minute+time.Second)) {
		t.Fatalf("reset %v not within (now, now+1m+1s]", reset)
	}

	r := l.Allow(ctx, key, 3, time.Minute)
	if r.Allowed || r.Remaining != 0 || r.Limit != 3 {
		t.Fatalf("4th hit: %+v", r)
	}
	if r.RetryAfter < time.Second || r.RetryAfter%time.Second != 0 || r.RetryAfter > time.Minute || r.ResetIn != r.RetryAfter {
		t.Fatalf("RetryAfter %v, ResetIn %v: want the same whole seconds in [1s, 60s]", r.RetryAfter, r.ResetIn)
	}
	// Retry-After points at the window end that X-RateLimit-Reset announces
	// (which is rounded up to a whole second), never before the window ends.
	if end := time.Now().Add(r.RetryAfter); end.Before(r.Reset.Add(-time.Second)) || end.After(r.Reset.Add(time.Second)) ||
		end.Before(before.Add(time.Minute)) {
		t.Fatalf("now+RetryAfter=%v vs Reset=%v, window opened after %v", end, r.Reset, before)
	}
}

// A window that has just opened reopens in at most a minute: Retry-After
// and ResetIn never exceed the period, yet never point before the window's
// real end. (Rounding the store's whole-second window end up made them 61 s
// whenever the window opened at a fractional second, so SDKs that honour
// Retry-After waited past the window.)
func TestRetryAfterWithinTheWindow(t *testing.T) { checkRetryAfterWithinTheWindow(t, newMemory(t)) }

func checkRetryAfterWithinTheWindow(t *testing.T, l *ratelimit.Limiter) {
	t.Helper()
	ctx := context.Background()
	for i := range 5 {
		key := ns(t) + "fresh:" + string(rune('a'+i))
		opened := time.Now() // the window opens at the first hit, after this
		first := l.Allow(ctx, key, 1, time.Minute)
		if !first.Allowed || first.ResetIn < 59*time.Second || first.ResetIn > time.Minute {
			t.Fatalf("first hit: %+v, want ResetIn in [59s, 60s]", first)
		}
		r := l.Allow(ctx, key, 1, time.Minute)
		if r.Allowed {
			t.Fatalf("second hit allowed: %+v", r)
		}
		if r.RetryAfter > time.Minute || r.RetryAfter%time.Second != 0 || r.ResetIn != r.RetryAfter {
			t.Fatalf("RetryAfter %v, ResetIn %v: want the same whole seconds, at most 60s", r.RetryAfter, r.ResetIn)
		}
		if end := time.Now().Add(r.RetryAfter); end.Before(opened.Add(time.Minute)) {
			t.Fatalf("Retry-After %v points at %v, before the window ends (after %v)", r.RetryAfter, end, opened.Add(time.Minute))
		}
		if p := l.Peek(ctx, key, 1, time.Minute); p.ResetIn > time.Minute || p.ResetIn < time.Second {
			t.Fatalf("peek ResetIn %v", p.ResetIn)
		}
		time.Sleep(time.Duration(i) * 137 * time.Millisecond) // vary the sub-second phase
	}
}

func TestRetryAfterAtLeastOneSecond(t *testing.T) {
	l := newMemory(t)
	key := ns(t) + "k"
	// A 10ms window: whatever little is left of it, Retry-After says at least
	// 1s (2s when rounding the window end up to a whole second crosses one).
	countAllowed(l, key, 1, 1, 10*time.Millisecond)
	r := l.Allow(context.Background(), key, 1, 10*time.Millisecond)
	if r.Allowed {
		t.Skip("window ended between the two calls; nothing to check")
	}
	if r.RetryAfter != time.Second && r.RetryAfter != 2*time.Second {
		t.Fatalf("RetryAfter = %v, want 1s (or 2s)", r.RetryAfter)
	}
}

func TestWindowEndsAndCountRestarts(t *testing.T) {
	l := newMemory(t)
	key := ns(t) + "k"
	if got := countAllowed(l, key, 3, 2, 200*time.Millisecond); got != 2 {
		t.Fatalf("allowed %d of 3, want 2", got)
	}
	time.Sleep(250 * time.Millisecond)
	if r := l.Allow(context.Background(), key, 2, 200*time.Millisecond); !r.Allowed || r.Remaining != 1 {
		t.Fatalf("after the window: %+v", r)
	}
}

func TestUnlimited(t *testing.T) {
	l := newMemory(t)
	ctx := context.Background()
	key := ns(t) + "k"
	for _, limit := range []int64{0, -1} {
		for range 100 {
			r := l.Allow(ctx, key, limit, time.Minute)
			if r != (ratelimit.Result{Allowed: true}) {
				t.Fatalf("limit %d: %+v", limit, r)
			}
		}
		if r := l.Peek(ctx, key, limit, time.Minute); r != (ratelimit.Result{Allowed: true}) {
			t.Fatalf("peek limit %d: %+v", limit, r)
		}
	}
	// A window too short to count in is no limit either (rather than a counter that never expires).
	for _, period := range []time.Duration{0, -time.Second, time.Microsecond} {
		if r := l.Allow(ctx, key, 1, period); r != (ratelimit.Result{Allowed: true}) {
			t.Fatalf("period %v: %+v", period, r)
		}
	}
	// Unlimited hits were not counted: a limit applied now starts from zero.
	if r := l.Allow(ctx, key, 1, time.Minute); !r.Allowed || r.Remaining != 0 {
		t.Fatalf("first limited hit after unlimited ones: %+v", r)
	}
}

func TestSeparateKeys(t *testing.T) {
	l := newMemory(t)
	p := ns(t)
	if got := countAllowed(l, p+"key:a", 5, 2, time.Minute); got != 2 {
		t.Fatalf("key a: allowed %d, want 2", got)
	}
	if r := l.Allow(context.Background(), p+"key:b", 2, time.Minute); !r.Allowed || r.Remaining != 1 {
		t.Fatalf("key b affected by key a: %+v", r)
	}
	if r := l.Allow(context.Background(), p+"acct:a", 2, time.Minute); !r.Allowed || r.Remaining != 1 {
		t.Fatalf("acct:a affected by key:a: %+v", r)
	}
}

func TestRatesDoNotCollide(t *testing.T) {
	l := newMemory(t)
	ctx := context.Background()
	p := ns(t)

	// Different rates on different keys each report their own limit.
	a := l.Allow(ctx, p+"key:a", 60, time.Minute)
	b := l.Allow(ctx, p+"key:b", 600, time.Minute)
	c := l.Allow(ctx, p+"auth:ip:1.2.3.4", 10, 15*time.Minute)
	if a.Limit != 60 || a.Remaining != 59 || b.Limit != 600 || b.Remaining != 599 || c.Limit != 10 || c.Remaining != 9 {
		t.Fatalf("limits mixed up: %+v %+v %+v", a, b, c)
	}
	if c.Reset.Before(time.Now().Add(14 * time.Minute)) {
		t.Fatalf("15-minute window resets at %v", c.Reset)
	}

	// Same key, different periods: separate counters.
	key := p + "k"
	if got := countAllowed(l, key, 3, 2, time.Minute); got != 2 {
		t.Fatalf("per-minute: allowed %d, want 2", got)
	}
	if r := l.Allow(ctx, key, 2, time.Hour); !r.Allowed || r.Remaining != 1 {
		t.Fatalf("per-hour counter shares the per-minute one: %+v", r)
	}

	// Same key and period, another limit: one counter, so a limit lowered
	// mid-window counts the hits already made.
	key2 := p + "k2"
	countAllowed(l, key2, 3, 10, time.Minute)
	if r := l.Allow(ctx, key2, 3, time.Minute); r.Allowed || r.Limit != 3 {
		t.Fatalf("4th hit under a lowered limit of 3: %+v", r)
	}
	if r := l.Allow(ctx, key2, 10, time.Minute); !r.Allowed || r.Remaining != 5 {
		t.Fatalf("5th hit under limit 10: %+v", r)
	}
}

func TestPeekDoesNotCount(t *testing.T) {
	l := newMemory(t)
	ctx := context.Background()
	key := ns(t) + "k"

	if r := l.Peek(ctx, key, 3, time.Minute); !r.Allowed || r.Limit != 3 || r.Remaining != 3 {
		t.Fatalf("peek of a fresh key: %+v", r)
	}
	countAllowed(l, key, 2, 3, time.Minute)
	for range 5 {
		if r := l.Peek(ctx, key, 3, time.Minute); !r.Allowed || r.Remaining != 1 {
			t.Fatalf("peek after 2 hits: %+v", r)
		}
	}
	countAllowed(l, key, 1, 3, time.Minute)
	r := l.Peek(ctx, key, 3, time.Minute)
	if r.Allowed || r.Remaining != 0 || r.RetryAfter < time.Second {
		t.Fatalf("peek at the limit: %+v (the next Allow would be denied)", r)
	}
	if a := l.Allow(ctx, key, 3, time.Minute); a.Allowed || !a.Reset.Equal(r.Reset) {
		t.Fatalf("allow after peek: %+v, peek reset %v", a, r.Reset)
	}
}

func TestConcurrentHitsAdmitExactlyTheLimit(t *testing.T) {
	l := newMemory(t)
	key := ns(t) + "k"
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			allowed.Add(int64(countAllowed(l, key, 4, 100, time.Minute)))
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != 100 {
		t.Fatalf("allowed %d of 200 concurrent hits, want 100", got)
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	for _, url := range []string{
		"http://127.0.0.1:6379",
		"not a url",
		"redis://127.0.0.1:6379/notadb",
		"redis://127.0.0.1:6379/0/1",
		"://",
	} {
		if l, err := ratelimit.New(ratelimit.Options{RedisURL: url}); err == nil {
			_ = l.Close()
			t.Errorf("New(%q) succeeded, want an error", url)
		}
	}
}

func TestMetricsRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	l1, err := ratelimit.New(ratelimit.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	// A second Limiter on the same registry reuses the collectors.
	l2, err := ratelimit.New(ratelimit.Options{Registerer: reg})
	if err != nil {
		t.Fatalf("second New on one registry: %v", err)
	}
	defer l2.Close()
	countAllowed(l1, ns(t)+"k", 3, 1, time.Minute)

	for _, name := range []string{"beaver_ratelimit_store_fallback_total", "beaver_ratelimit_degraded"} {
		v, ok := metricValue(t, reg, name)
		if !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0", name, v, ok)
		}
	}
	if l1.Degraded() {
		t.Error("memory-only limiter reports degraded")
	}
}

func TestCloseIsIdempotentAndCallsStillAnswer(t *testing.T) {
	l, err := ratelimit.New(ratelimit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key := ns(t) + "k"
	countAllowed(l, key, 1, 2, time.Minute)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if r := l.Allow(context.Background(), key, 2, time.Minute); !r.Allowed || r.Remaining != 0 {
		t.Fatalf("after Close: %+v", r)
	}
}
