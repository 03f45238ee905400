package ratelimit_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/beaver-gateway/beaver/internal/ratelimit"
)

const redisServerBin = "/usr/bin/redis-server"

// deadRedisURL points where nothing listens: connections are refused at once.
const deadRedisURL = "redis://127.0.0.1:1/0"

func TestRedisAllowThenDenied(t *testing.T) {
	l := newRedis(t, testRedisURL(t), nil)
	ctx := context.Background()
	key := ns(t) + "key:1"
	if l.Degraded() {
		t.Fatal("degraded with Redis up")
	}
	for i := int64(1); i <= 3; i++ {
		if r := l.Allow(ctx, key, 3, time.Minute); !r.Allowed || r.Remaining != 3-i || r.Limit != 3 {
			t.Fatalf("hit %d: %+v", i, r)
		}
	}
	r := l.Allow(ctx, key, 3, time.Minute)
	if r.Allowed || r.Remaining != 0 || r.RetryAfter < time.Second || r.RetryAfter > time.Minute || r.ResetIn != r.RetryAfter {
		t.Fatalf("4th hit: %+v", r)
	}
	if p := l.Peek(ctx, key, 3, time.Minute); p.Allowed || p.Remaining != 0 || !p.Reset.Equal(r.Reset) {
		t.Fatalf("peek %+v vs allow %+v", p, r)
	}
	if l.Degraded() {
		t.Fatal("degraded after serving from Redis")
	}
}

// TestRetryAfterWithinTheWindow on the Redis store.
func TestRedisRetryAfterWithinTheWindow(t *testing.T) {
	l := newRedis(t, testRedisURL(t), nil)
	checkRetryAfterWithinTheWindow(t, l)
	if l.Degraded() {
		t.Fatal("served from memory, not Redis")
	}
}

func TestRedisWindowExpires(t *testing.T) {
	l := newRedis(t, testRedisURL(t), nil)
	key := ns(t) + "k"
	if got := countAllowed(l, key, 3, 2, 300*time.Millisecond); got != 2 {
		t.Fatalf("allowed %d of 3, want 2", got)
	}
	time.Sleep(400 * time.Millisecond)
	if r := l.Allow(context.Background(), key, 2, 300*time.Millisecond); !r.Allowed || r.Remaining != 1 {
		t.Fatalf("after the window: %+v", r)
	}
}

func TestRedisInstancesShareCounts(t *testing.T) {
	url := testRedisURL(t)
	a, b := newRedis(t, url, nil), newRedis(t, url, nil)
	ctx := context.Background()
	key := ns(t) + "key:shared"

	allowed := 0
	for i := range 10 {
		l := a
		if i%2 == 1 {
			l = b
		}
		if l.Allow(ctx, key, 6, time.Minute).Allowed {
			allowed++
		}
	}
	if allowed != 6 {
		t.Fatalf("two instances admitted %d hits together, want the shared limit of 6", allowed)
	}
	if p := b.Peek(ctx, key, 6, time.Minute); p.Allowed || p.Remaining != 0 {
		t.Fatalf("peek on the other instance: %+v", p)
	}
	// A fresh key counted on a is visible from b.
	key2 := ns(t) + "key:peek"
	countAllowed(a, key2, 2, 5, time.Minute)
	if p := b.Peek(ctx, key2, 5, time.Minute); p.Remaining != 3 {
		t.Fatalf("b sees %+v after 2 hits on a", p)
	}
}

func TestDeadRedisServesFromMemory(t *testing.T) {
	reg := prometheus.NewRegistry()
	l := newRedis(t, deadRedisURL, reg) // New must not fail
	if !l.Degraded() {
		t.Fatal("Degraded() = false with nothing listening")
	}
	key := ns(t) + "k"
	ctx := context.Background()
	// Limits still hold, per instance.
	for i := int64(1); i <= 3; i++ {
		if r := l.Allow(ctx, key, 3, time.Minute); !r.Allowed || r.Remaining != 3-i {
			t.Fatalf("hit %d: %+v", i, r)
		}
	}
	if r := l.Allow(ctx, key, 3, time.Minute); r.Allowed || r.RetryAfter < time.Second {
		t.Fatalf("4th hit: %+v", r)
	}
	if p := l.Peek(ctx, key, 3, time.Minute); p.Remaining != 0 {
		t.Fatalf("peek: %+v", p)
	}
	// Probes after the backoff fail again and keep it degraded.
	time.Sleep(150 * time.Millisecond)
	l.Allow(ctx, key, 3, time.Minute)
	if !l.Degraded() {
		t.Fatal("recovered with nothing listening")
	}
	if v, _ := metricValue(t, reg, "beaver_ratelimit_store_fallback_total"); v < 6 {
		t.Fatalf("fallback counter = %v, want >= 6 (one per call)", v)
	}
	if v, _ := metricValue(t, reg, "beaver_ratelimit_degraded"); v != 1 {
		t.Fatalf("degraded gauge = %v, want 1", v)
	}
}

// TestHungRedisTimesOut covers a Redis that accepts connections but never
// answers: calls time out and are served from memory instead of hanging.
func TestHungRedisTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // read nothing, answer nothing
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })

	reg := prometheus.NewRegistry()
	l := newRedis(t, "redis://"+ln.Addr().String()+"/0", reg)
	if !l.Degraded() {
		t.Fatal("Degraded() = false with a Redis that never answers")
	}
	key := ns(t) + "k"
	if got := countAllowed(l, key, 3, 2, time.Minute); got != 2 {
		t.Fatalf("allowed %d of 3, want 2", got)
	}
	time.Sleep(150 * time.Millisecond) // past the backoff: the next call probes and times out
	if r := l.Allow(context.Background(), key, 2, time.Minute); r.Allowed || !l.Degraded() {
		t.Fatalf("after a timed-out probe: %+v, degraded %v", r, l.Degraded())
	}
	if v, _ := metricValue(t, reg, "beaver_ratelimit_store_fallback_total"); v < 4 {
		t.Fatalf("fallback counter = %v, want >= 4", v)
	}
}

// TestRedisCountsEvenWhenCallerCancelled: a request whose client went away
// still counts, and its cancelled context is not mistaken for a Redis failure.
func TestRedisCountsEvenWhenCallerCancelled(t *testing.T) {
	reg := prometheus.NewRegistry()
	l := newRedis(t, testRedisURL(t), reg)
	key := ns(t) + "k"
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := l.Allow(ctx, key, 3, time.Minute); !r.Allowed || r.Remaining != 2 {
		t.Fatalf("cancelled call: %+v", r)
	}
	if l.Degraded() {
		t.Fatal("a cancelled caller context degraded the limiter")
	}
	if v, _ := metricValue(t, reg, "beaver_ratelimit_store_fallback_total"); v != 0 {
		t.Fatalf("fallback counter = %v, want 0", v)
	}
	if r := l.Peek(context.Background(), key, 3, time.Minute); r.Remaining != 2 {
		t.Fatalf("the cancelled call was not counted in Redis: %+v", r)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	settle := func() int {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	before := settle()
	for i := range 5 {
		for _, url := range []string{"", deadRedisURL} {
			// Not newRedis/newMemory: their t.Cleanup would keep l reachable.
			l, err := ratelimit.New(ratelimit.Options{RedisURL: url, Backoff: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			key := fmt.Sprintf("%sk%d", ns(t), i)
			countAllowed(l, key, 3, 2, time.Minute)
			time.Sleep(120 * time.Millisecond) // past the backoff: one probe
			countAllowed(l, key, 3, 2, time.Minute)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// ulule's memory-store cleaner stops once its store is garbage collected;
	// go-redis's goroutines stop on Close. Wait for both, not for a speed.
	var now int
	waitFor(t, "goroutines to wind down", func() bool {
		now = settle()
		return now <= before
	})
	if now > before {
		t.Fatalf("goroutines: %d before, %d after", before, now)
	}
}

// TestRedisKilledAndRestarted runs a throwaway redis-server, kills it while
// serving, then restarts it on the same port.
func TestRedisKilledAndRestarted(t *testing.T) {
	if _, err := os.Stat(redisServerBin); err != nil {
		t.Skipf("!!! %s not found: kill/restart test NOT RUN !!!", redisServerBin)
	}
	port := freePort(t)
	dir := t.TempDir()
	srv := startRedisServer(t, port, dir)
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)

	reg := prometheus.NewRegistry()
	l := newRedis(t, url, reg)
	ctx := context.Background()
	p := ns(t)
	if l.Degraded() {
		t.Fatal("degraded with the server up")
	}
	if got := countAllowed(l, p+"a", 3, 100, time.Minute); got != 3 {
		t.Fatalf("allowed %d of 3", got)
	}

	stopRedisServer(t, srv)

	// Requests keep being answered, from memory, with the limit still applied.
	if got := countAllowed(l, p+"b", 5, 3, time.Minute); got != 3 {
		t.Fatalf("while Redis is down: allowed %d of 5, want 3", got)
	}
	if !l.Degraded() {
		t.Fatal("Degraded() = false after the server died")
	}
	if v, _ := metricValue(t, reg, "beaver_ratelimit_store_fallback_total"); v < 5 {
		t.Fatalf("fallback counter = %v, want >= 5", v)
	}
	if v, _ := metricValue(t, reg, "beaver_ratelimit_degraded"); v != 1 {
		t.Fatalf("degraded gauge = %v, want 1", v)
	}

	startRedisServer(t, port, dir)
	waitFor(t, "recovery after Redis came back", func() bool {
		l.Allow(ctx, p+"c", 1000, time.Minute)
		return !l.Degraded()
	})
	if v, _ := metricValue(t, reg, "beaver_ratelimit_degraded"); v != 0 {
		t.Fatalf("degraded gauge = %v after recovery, want 0", v)
	}
	// Counting is back in Redis: the new, empty server admits p+"b" again
	// (memory had exhausted it) and another instance sees the hit.
	if r := l.Allow(ctx, p+"b", 3, time.Minute); !r.Allowed || r.Remaining != 2 {
		t.Fatalf("after recovery: %+v, want Redis's fresh count", r)
	}
	other := newRedis(t, url, nil)
	if r := other.Peek(ctx, p+"b", 3, time.Minute); r.Remaining != 2 {
		t.Fatalf("other instance sees %+v", r)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startRedisServer starts a redis-server without persistence on port and
// waits until it answers. It is killed at the end of the test at the latest.
func startRedisServer(t *testing.T, port int, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(redisServerBin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() { stopRedisServer(t, cmd) })
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	waitFor(t, "redis-server to answer", func() bool { return pingRedis(url, 200*time.Millisecond) == nil })
	return cmd
}

func stopRedisServer(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if cmd.ProcessState != nil {
		return // already stopped
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}
