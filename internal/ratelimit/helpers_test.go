package ratelimit_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/beaver-gateway/beaver/internal/ratelimit"
)

const defaultTestRedisURL = "redis://127.0.0.1:6379/15"

// ns returns a key namespace no other test or run shares (db 15 is shared).
func ns(t testing.TB) string {
	return fmt.Sprintf("test:%s:%016x:", t.Name(), rand.Uint64())
}

func newMemory(t testing.TB) *ratelimit.Limiter {
	t.Helper()
	l, err := ratelimit.New(ratelimit.Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// testRedisURL returns BEAVER_TEST_REDIS_URL (default db 15 on localhost), or
// skips the test loudly when nothing answers there. Set
// BEAVER_TEST_REQUIRE_REDIS=1 to make that a failure instead.
func testRedisURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("BEAVER_TEST_REDIS_URL")
	if url == "" {
		url = defaultTestRedisURL
	}
	if err := pingRedis(url, 2*time.Second); err != nil {
		msg := fmt.Sprintf("!!! REDIS NOT AVAILABLE at %s (%v): Redis-backed rate limit tests NOT RUN; "+
			"start redis-server or set BEAVER_TEST_REDIS_URL !!!", url, err)
		if os.Getenv("BEAVER_TEST_REQUIRE_REDIS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return url
}

func pingRedis(url string, timeout time.Duration) error {
	o, err := redis.ParseURL(url)
	if err != nil {
		return err
	}
	o.DialTimeout, o.ReadTimeout, o.MaxRetries, o.DialerRetries = timeout, timeout, -1, 1
	c := redis.NewClient(o)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.Ping(ctx).Err()
}

func newRedis(t testing.TB, url string, reg prometheus.Registerer) *ratelimit.Limiter {
	t.Helper()
	l, err := ratelimit.New(ratelimit.Options{
		RedisURL:   url,
		Registerer: reg,
		Prefix:     "beaver:rltest",
		Backoff:    100 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("New(%s): %v", url, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// metricValue reads a counter or gauge without a name; 0 with ok=false when
// the metric is not in reg.
func metricValue(t testing.TB, reg *prometheus.Registry, name string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue(), true
		}
		if g := m.GetGauge(); g != nil {
			return g.GetValue(), true
		}
	}
	return 0, false
}

// countAllowed sends n hits and returns how many were allowed.
func countAllowed(l *ratelimit.Limiter, key string, n int, limit int64, period time.Duration) int {
	allowed := 0
	for range n {
		if l.Allow(context.Background(), key, limit, period).Allowed {
			allowed++
		}
	}
	return allowed
}

// waitFor polls cond until it holds or the generous deadline passes; it
// asserts an eventual state, not a speed.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
