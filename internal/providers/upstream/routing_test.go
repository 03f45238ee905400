package upstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/providers/upstream"
	"github.com/beaver-gateway/beaver/internal/testenv"
)

// Retries, several endpoints, key cooldowns and circuit breakers, against
// local servers (and a dead local port). No test waits for more than a few
// hundred milliseconds of backoff.

// deadURL is a base URL on a local port nothing listens on: connecting
// fails at once with "connection refused".
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// counting answers ok after the first n requests, which get fail.
func counting(n int64, fail func(w http.ResponseWriter, r *http.Request)) (http.Handler, *atomic.Int64) {
	var calls atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= n {
			fail(w, r)
			return
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	}), &calls
}

func status(code int, header ...string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, `{"error":{"message":"failing on purpose"}}`)
	}
}

func newClient(t *testing.T, cfg upstream.Config) *upstream.Client {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c, err := upstream.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// call makes one request through c with a Route, returning the attempts.
func call(c *upstream.Client, ctx context.Context) ([]upstream.Attempt, error) {
	return callAs(c, ctx, "", false)
}

// callAs is call for account, with or without a fallback model.
func callAs(c *upstream.Client, ctx context.Context, account string, fallback bool) ([]upstream.Attempt, error) {
	var attempts []upstream.Attempt
	rt := &upstream.Route{OnAttempt: func(a upstream.Attempt) { attempts = append(attempts, a) }, Account: account, Fallback: fallback}
	_, err := c.Do(upstream.WithRoute(ctx, rt), upstream.Request{Path: "/x", Key: upstream.BearerKey,
		Header: http.Header{}, Body: []byte("{}")})
	return attempts, err
}

func outcomes(as []upstream.Attempt) string {
	var s []string
	for _, a := range as {
		s = append(s, a.Outcome())
	}
	return strings.Join(s, ",")
}

// An upstream that fails the first k attempts is retried, with growing
// pauses, up to MaxRetries; every attempt is reported.
func TestRetriesFailFirstK(t *testing.T) {
	for _, tt := range []struct {
		k, retries int
		ok         bool
		want       string
	}{
		{1, 2, true, "503,200"},
		{2, 2, true, "503,503,200"},
		{3, 2, false, "503,503,503"},
		{1, -1, false, "503"},
	} {
		h, calls := counting(int64(tt.k), status(503))
		srv := newServer(t, h)
		c := newClient(t, upstream.Config{BaseURL: srv, MaxRetries: tt.retries})
		start := time.Now()
		attempts, err := call(c, context.Background())
		if (err == nil) != tt.ok || outcomes(attempts) != tt.want {
			t.Errorf("k=%d retries=%d: err %v, attempts %s, want %s", tt.k, tt.retries, err, outcomes(attempts), tt.want)
		}
		if n := int(calls.Load()); n != len(attempts) {
			t.Errorf("k=%d: %d calls, %d attempts reported", tt.k, n, len(attempts))
		}
		// 100ms, then 200ms (each + up to half again of jitter).
		if pauses := len(attempts) - 1; pauses == 2 && time.Since(start) < 300*time.Millisecond {
			t.Errorf("k=%d: two retries after %v: no backoff", tt.k, time.Since(start))
		}
		if got := c.Health().Retries; got != int64(len(attempts)-1) {
			t.Errorf("k=%d: Health().Retries = %d", tt.k, got)
		}
	}
}

// A 429's Retry-After is waited out when no other key could take the
// attempt; one that would end after the retry budget is not: the 429 is
// returned at once, for the caller to fall back.
func TestRetryAfter(t *testing.T) {
	h, calls := counting(1, status(429, "retry-after-ms", "300", "Retry-After", "1"))
	srv := newServer(t, h)
	c := newClient(t, upstream.Config{BaseURL: srv})
	start := time.Now()
	attempts, err := call(c, context.Background())
	if err != nil || outcomes(attempts) != "429,200" {
		t.Fatalf("err %v, attempts %s", err, outcomes(attempts))
	}
	if d := time.Since(start); d < 300*time.Millisecond || calls.Load() != 2 {
		t.Errorf("retried after %v (%d calls), before the 300ms Retry-After", d, calls.Load())
	}

	h, calls = counting(1, status(429, "Retry-After", "5"))
	srv = newServer(t, h)
	c = newClient(t, upstream.Config{BaseURL: srv, RetryBudget: time.Second})
	_, err = call(c, context.Background())
	var ue *upstream.Error
	if !errors.As(err, &ue) || ue.Status != 429 || ue.RetryAfter != 5*time.Second {
		t.Fatalf("err = %v", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("Retry-After beyond the budget: %d calls, want 1", n)
	}
}

// One retry budget spans every call of a Route: the second call, made once
// the first spent the budget, is not retried.
func TestRouteSharesTheBudget(t *testing.T) {
	fail := status(503, "retry-after-ms", "300")
	h, _ := counting(1<<30, fail)
	srv := newServer(t, h)
	cfg := upstream.Config{BaseURL: srv, MaxRetries: 5, RetryBudget: 450 * time.Millisecond}
	a, b := newClient(t, cfg), newClient(t, cfg)
	var n []int
	rt := &upstream.Route{OnAttempt: func(upstream.Attempt) { n[len(n)-1]++ }}
	ctx := upstream.WithRoute(context.Background(), rt)
	for _, c := range []*upstream.Client{a, b} {
		n = append(n, 0)
		if _, err := c.Do(ctx, upstream.Request{Path: "/x", Body: []byte("{}")}); err == nil {
			t.Fatal("a failing upstream answered")
		}
	}
	if n[0] != 2 || n[1] != 1 {
		t.Errorf("attempts per call %v, want [2 1] (300ms pauses in a 450ms budget)", n)
	}
}

// A dead base URL (connection refused) is retried on the provider's other
// endpoint; once its failures, from enough accounts, open its breaker it
// is passed over, so every request answers.
func TestDeadEndpoint(t *testing.T) {
	dead := deadURL(t)
	h, _ := counting(0, nil)
	live := newServer(t, h)

	c := newClient(t, upstream.Config{BaseURL: dead, MaxRetries: 1})
	attempts, err := call(c, context.Background())
	var ue *upstream.Error
	if !errors.As(err, &ue) || ue.Status != 0 || ue.Timeout || outcomes(attempts) != "error,error" {
		t.Fatalf("dead port alone: err %v, attempts %s", err, outcomes(attempts))
	}
	if status, _, code, _, _ := ue.HTTP(); status != 502 || code != "upstream_error" {
		t.Errorf("dead port maps to %d %s", status, code)
	}

	c = newClient(t, upstream.Config{Endpoints: []upstream.Endpoint{{BaseURL: dead}, {BaseURL: live}},
		MaxRetries: 1, BreakerFailures: 2, BreakerMinRequests: 2, BreakerMinAccounts: 2, BreakerCooldown: time.Minute})
	deadTries := 0
	for i := range 20 {
		// Round robin: the dead endpoint gets requests 0 and 2 (each then
		// retried on the live one), which open its breaker.
		attempts, err := callAs(c, context.Background(), fmt.Sprint("account-", i), true)
		if err != nil {
			t.Fatalf("request %d: %v (%s)", i, err, outcomes(attempts))
		}
		for _, a := range attempts {
			if a.Endpoint == 0 {
				deadTries++
			}
		}
	}
	hl := c.Health()
	if deadTries != 2 || hl.Endpoints[0].State != upstream.StateOpen || hl.Endpoints[1].State != upstream.StateClosed ||
		hl.State != upstream.StateClosed {
		t.Errorf("dead endpoint tried %d times (want 2, then its breaker is open); health %+v", deadTries, hl)
	}
}

// A key answered with 429 or 401 cools down: the attempt is retried at
// once with the provider's other key (no Retry-After wait), and later
// requests go to the other key until the cooldown ends.
func TestKeyCooldown(t *testing.T) {
	for _, tt := range []struct {
		status int
		reason string
	}{{429, upstream.CooldownRateLimited}, {401, upstream.CooldownKeyRejected}} {
		var bad atomic.Int64
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "Bearer key-a" {
				bad.Add(1)
				status(tt.status, "Retry-After", "30")(w, r)
				return
			}
			_, _ = io.WriteString(w, `{"ok":true}`)
		}))
		c := newClient(t, upstream.Config{Endpoints: []upstream.Endpoint{{BaseURL: srv, APIKey: "key-a"}, {BaseURL: srv, APIKey: "key-b"}}})
		for i := range 10 {
			if attempts, err := call(c, context.Background()); err != nil {
				t.Fatalf("%d, request %d: %v (%s)", tt.status, i, err, outcomes(attempts))
			}
		}
		if n := bad.Load(); n > 1 {
			t.Errorf("%d: the cooling key got %d requests", tt.status, n)
		}
		if n := bad.Load(); n == 1 {
			e := c.Health().Endpoints[0]
			if e.CooldownReason != tt.reason || e.CooldownUntil.IsZero() || e.State != upstream.StateClosed {
				t.Errorf("%d: key-a health %+v", tt.status, e)
			}
		}
	}
}

// A 401 with the only key is not retried: the same key would be refused
// the same way.
func TestRejectedOnlyKeyNotRetried(t *testing.T) {
	h, calls := counting(1<<30, status(401))
	srv := newServer(t, h)
	c := newClient(t, upstream.Config{BaseURL: srv, APIKey: "k"})
	if _, err := call(c, context.Background()); err == nil || calls.Load() != 1 {
		t.Fatalf("err %v, %d calls", err, calls.Load())
	}
}

// The breaker opens on failures from several accounts and refuses calls
// that have a fallback model without sending them; after BreakerCooldown
// one probe goes through (others are still refused); a probe answered 503
// opens it again, one answered 500 (maybe the request's fault) leaves it
// half-open, a good one closes it.
func TestCircuitBreaker(t *testing.T) {
	var code atomic.Int64 // the status the server answers; 0 = ok
	code.Store(503)
	var calls atomic.Int64
	var block atomic.Bool
	arrived, release := make(chan struct{}), make(chan struct{})
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if block.Load() {
			arrived <- struct{}{}
			<-release
		}
		if s := code.Load(); s != 0 {
			status(int(s))(w, r)
			return
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	clk := testenv.NewClock()
	c := newClient(t, upstream.Config{BaseURL: srv, MaxRetries: -1, BreakerFailures: 3, BreakerMinRequests: 3,
		BreakerMinAccounts: 2, BreakerCooldown: 30 * time.Second, Clock: clk.Now})
	for _, account := range []string{"a", "a", "b"} {
		if _, err := callAs(c, context.Background(), account, true); err == nil {
			t.Fatal("failing upstream answered")
		}
	}
	attempts, err := callAs(c, context.Background(), "c", true)
	var ue *upstream.Error
	if !errors.As(err, &ue) || !ue.CircuitOpen || calls.Load() != 3 || outcomes(attempts) != "circuit_open" || ue.RetryAfter != 30*time.Second {
		t.Fatalf("open breaker: err %v, %d calls, attempts %s", err, calls.Load(), outcomes(attempts))
	}
	if s, _, code, _, ra := ue.HTTP(); s != 502 || code != "upstream_error" || ra != 30*time.Second {
		t.Errorf("open breaker maps to %d %s Retry-After %v", s, code, ra)
	}
	hl := c.Health()
	if e := hl.Endpoints[0]; hl.State != upstream.StateOpen || !e.OpenedAt.Equal(clk.Now()) || e.FailingAccounts != 2 ||
		!strings.Contains(e.Reason, "3 of the last 3 attempts") || !strings.Contains(e.Reason, "from 2 distinct accounts") {
		t.Errorf("open: %+v", hl)
	}

	clk.Advance(30 * time.Second)
	if st := c.Health().State; st != upstream.StateHalfOpen {
		t.Errorf("after the cooldown: state %s, want half_open", st)
	}
	// A probe answered 500 may have failed for its content: still half-open.
	code.Store(500)
	if _, err := callAs(c, context.Background(), "hostile", true); err == nil || calls.Load() != 4 {
		t.Fatalf("500 probe: err %v, %d calls", err, calls.Load())
	}
	if st := c.Health().State; st != upstream.StateHalfOpen {
		t.Errorf("after a 500 probe: state %s, want half_open", st)
	}
	// A probe answered 503 opens it again.
	code.Store(503)
	if _, err := callAs(c, context.Background(), "a", true); err == nil || calls.Load() != 5 {
		t.Fatalf("probe: err %v, %d calls", err, calls.Load())
	}
	if _, err := callAs(c, context.Background(), "a", true); !errors.As(err, &ue) || !ue.CircuitOpen || calls.Load() != 5 {
		t.Fatalf("after a failed probe: err %v, %d calls", err, calls.Load())
	}
	if r := c.Health().Endpoints[0].Reason; !strings.HasPrefix(r, "still failing (503 at ") {
		t.Errorf("reason after a failed probe: %q", r)
	}

	// One probe at a time: while it is in flight, others are refused.
	clk.Advance(30 * time.Second)
	code.Store(0)
	block.Store(true)
	var wg sync.WaitGroup
	wg.Add(1)
	var probeErr error
	go func() { defer wg.Done(); _, probeErr = callAs(c, context.Background(), "a", true) }()
	<-arrived
	if _, err := callAs(c, context.Background(), "b", true); !errors.As(err, &ue) || !ue.CircuitOpen {
		t.Errorf("during the probe: err %v", err)
	}
	block.Store(false)
	close(release)
	wg.Wait()
	if probeErr != nil {
		t.Fatalf("probe failed: %v", probeErr)
	}
	if _, err := callAs(c, context.Background(), "b", true); err != nil {
		t.Fatalf("after a good probe: %v", err)
	}
	if hl := c.Health(); hl.State != upstream.StateClosed || hl.Endpoints[0].ConsecutiveFailures != 0 || hl.Endpoints[0].Reason != "" {
		t.Errorf("health %+v", hl)
	}
}

// A provider's only endpoint, open, still gets the calls that have no
// fallback model (each once, not retried), and their answer closes it;
// calls with a fallback are refused meanwhile.
func TestOpenOnlyEndpointWithoutFallback(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	h, calls := counting(1<<62, func(w http.ResponseWriter, r *http.Request) {})
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			calls.Add(1)
			status(503)(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
	clk := testenv.NewClock()
	c := newClient(t, upstream.Config{BaseURL: srv, BreakerFailures: 2, BreakerMinRequests: 2, BreakerMinAccounts: 2, Clock: clk.Now})
	// Retried twice: then the 1st attempt from a 2nd account opens it,
	// and nothing is left to retry on.
	for i, want := range []string{"503,503,503", "503"} {
		attempts, err := callAs(c, context.Background(), fmt.Sprint("account-", i), false)
		if err == nil || outcomes(attempts) != want {
			t.Fatalf("call %d: err %v, attempts %s, want %s", i, err, outcomes(attempts), want)
		}
	}
	if st := c.Health().State; st != upstream.StateOpen {
		t.Fatalf("state %s", st)
	}
	n := calls.Load()
	if attempts, err := callAs(c, context.Background(), "x", true); err == nil || outcomes(attempts) != "circuit_open" || calls.Load() != n {
		t.Fatalf("with a fallback: err %v, attempts %s", err, outcomes(attempts))
	}
	attempts, err := callAs(c, context.Background(), "x", false)
	if err == nil || outcomes(attempts) != "503" || calls.Load() != n+1 {
		t.Fatalf("without a fallback: err %v, attempts %s (want one 503, not refused, not retried)", err, outcomes(attempts))
	}
	if st := c.Health().State; st != upstream.StateOpen {
		t.Fatalf("after a 503: state %s", st)
	}
	failing.Store(false)
	if attempts, err := callAs(c, context.Background(), "x", false); err != nil || outcomes(attempts) != "200" {
		t.Fatalf("recovered, without a fallback: err %v, attempts %s", err, outcomes(attempts))
	}
	if st := c.Health().State; st != upstream.StateClosed {
		t.Fatalf("after a success: state %s", st)
	}
	if _, err := callAs(c, context.Background(), "x", true); err != nil {
		t.Fatalf("closed, with a fallback: %v", err)
	}
}

// One account whose requests always make the upstream answer 500 (or
// 503) never opens the breaker, however many: another account's requests,
// interleaved, all get through.
func TestOneAccountCannotOpenTheBreaker(t *testing.T) {
	for _, code := range []int{500, 503} {
		var bad atomic.Int64
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Hostile") != "" {
				bad.Add(1)
				status(code)(w, r)
				return
			}
			_, _ = io.WriteString(w, `{"ok":true}`)
		}))
		clk := testenv.NewClock()
		retries := 0 // the default: a quick 500 is not retried anyway
		if code == 503 {
			retries = -1 // retried, they would only take longer
		}
		c := newClient(t, upstream.Config{BaseURL: srv, MaxRetries: retries, Clock: clk.Now}) // the default policy
		for i := range 20 {
			hdr := http.Header{"X-Hostile": {"1"}}
			rt := &upstream.Route{Account: "hostile", Fallback: true}
			if _, err := c.Do(upstream.WithRoute(context.Background(), rt), upstream.Request{Path: "/x", Header: hdr, Body: []byte("{}")}); err == nil {
				t.Fatalf("%d: hostile request %d answered", code, i)
			}
			if attempts, err := callAs(c, context.Background(), "good", true); err != nil {
				t.Fatalf("%d: good request %d: %v (%s)", code, i, err, outcomes(attempts))
			}
		}
		e := c.Health().Endpoints[0]
		if e.State != upstream.StateClosed || e.FailingAccounts != 1 || e.WindowRequests != 20+int(bad.Load()) {
			t.Errorf("%d: %+v", code, e)
		}
		if bad.Load() != 20 {
			t.Errorf("%d: %d hostile attempts, want 20", code, bad.Load())
		}
	}
}

// A real outage, 503s or connection errors from many accounts, opens the
// breaker with the default policy; once the endpoint answers again, a
// success closes it.
func TestOutageOpensAndASuccessCloses(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ln.Close()
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			status(503)(w, r)
			return
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	for _, tt := range []struct {
		name, url, kind string
	}{{"503", srv, "503"}, {"connection errors", base, "connection"}} {
		clk := testenv.NewClock()
		c := newClient(t, upstream.Config{BaseURL: tt.url, MaxRetries: -1, Clock: clk.Now})
		for i := range 10 { // the default minimum of attempts
			clk.Advance(time.Second)
			if attempts, err := callAs(c, context.Background(), fmt.Sprint("account-", i%4), true); err == nil || outcomes(attempts) == "circuit_open" {
				t.Fatalf("%s: call %d: err %v, attempts %s", tt.name, i, err, outcomes(attempts))
			}
		}
		hl := c.Health()
		e := hl.Endpoints[0]
		if hl.State != upstream.StateOpen || e.FailureRate != 1 || e.WindowRequests != 10 || e.FailingAccounts != 4 ||
			len(e.LastFailures) != 5 || !strings.Contains(e.Reason, "10 of the last 10 attempts within 1m0s failed (100%") ||
			!strings.Contains(e.Reason, "from 4 distinct accounts") || !strings.Contains(e.Reason, tt.kind) {
			t.Fatalf("%s: health %+v", tt.name, hl)
		}
		if attempts, _ := callAs(c, context.Background(), "account-9", true); outcomes(attempts) != "circuit_open" {
			t.Fatalf("%s: open breaker sent %s", tt.name, outcomes(attempts))
		}
		if tt.url == base {
			continue // nothing will listen there again
		}
		down.Store(false)
		if attempts, err := callAs(c, context.Background(), "account-9", false); err != nil {
			t.Fatalf("%s: recovered: %v (%s)", tt.name, err, outcomes(attempts))
		}
		if hl := c.Health(); hl.State != upstream.StateClosed || hl.Endpoints[0].WindowFailures != 0 {
			t.Fatalf("%s: after a success: %+v", tt.name, hl)
		}
		down.Store(true)
	}
}

// A 500 that came quickly is not sent again to the endpoint that answered
// it: the same content would most likely fail the same way. A slow one, a
// 503, or one from another endpoint is retried; so is any 500 with
// Quick500 negative. Durations come from the injected clock.
func TestNoRetryAfterAQuick500(t *testing.T) {
	clk := testenv.NewClock()
	var calls atomic.Int64
	var took atomic.Int64 // how long the server "takes", on clk
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		clk.Advance(time.Duration(took.Load()))
		status(500)(w, r)
	}))
	for _, tt := range []struct {
		took     time.Duration
		quick500 time.Duration
		want     string
	}{
		{0, 0, "500"},
		{1999 * time.Millisecond, 0, "500"},
		{2 * time.Second, 0, "500,500,500"},
		{0, -1, "500,500,500"},
		{time.Second, 500 * time.Millisecond, "500,500,500"},
	} {
		calls.Store(0)
		took.Store(int64(tt.took))
		c := newClient(t, upstream.Config{BaseURL: srv, Quick500: tt.quick500, Clock: clk.Now})
		attempts, err := callAs(c, context.Background(), "a", false)
		if err == nil || outcomes(attempts) != tt.want || calls.Load() != int64(len(attempts)) {
			t.Errorf("500 in %v, Quick500 %v: err %v, attempts %s, want %s", tt.took, tt.quick500, err, outcomes(attempts), tt.want)
		}
		if tt.want == "500" && c.Health().Retries != 0 {
			t.Errorf("500 in %v: %d retries counted", tt.took, c.Health().Retries)
		}
	}

	// Two endpoints: the quick 500 of one is retried on the other, once.
	took.Store(0)
	calls.Store(0)
	var good atomic.Int64
	other := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		good.Add(1)
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	c := newClient(t, upstream.Config{Endpoints: []upstream.Endpoint{{BaseURL: srv}, {BaseURL: other}}, Clock: clk.Now})
	attempts, err := callAs(c, context.Background(), "a", false)
	if err != nil || outcomes(attempts) != "500,200" || attempts[0].Endpoint != 0 || attempts[1].Endpoint != 1 {
		t.Fatalf("two endpoints: err %v, attempts %s", err, outcomes(attempts))
	}
	// Both answer 500 quickly: each is tried once.
	c = newClient(t, upstream.Config{Endpoints: []upstream.Endpoint{{BaseURL: srv}, {BaseURL: srv, APIKey: "k2"}}, Clock: clk.Now})
	calls.Store(0)
	if attempts, err := callAs(c, context.Background(), "a", false); err == nil || outcomes(attempts) != "500,500" || calls.Load() != 2 {
		t.Fatalf("two failing endpoints: err %v, attempts %s", err, outcomes(attempts))
	}
}

// Once a body was returned nothing is repeated: a body cut midway is the
// caller's error (a stream's failure after its first byte), and it counts
// towards the endpoint's breaker.
func TestNoRetryAfterTheBody(t *testing.T) {
	var calls atomic.Int64
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Length", "100")
		_, _ = io.WriteString(w, "data: partial")
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	}))
	c := newClient(t, upstream.Config{BaseURL: srv})
	b, err := c.Open(context.Background(), upstream.Request{Path: "/x", Body: []byte("{}")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(b)
	b.Close()
	if err == nil || calls.Load() != 1 {
		t.Fatalf("cut body: err %v, %d calls", err, calls.Load())
	}
	if f := c.Health().Endpoints[0].ConsecutiveFailures; f != 1 {
		t.Errorf("consecutive failures %d after a cut body", f)
	}
}

// Health names keys by fingerprint only, and base URLs without
// credentials or query.
func TestHealthHidesKeys(t *testing.T) {
	c := newClient(t, upstream.Config{Name: "openai", Endpoints: []upstream.Endpoint{
		{BaseURL: "https://user:pass@api.example.com/v1?token=t", APIKey: "sk-secret-key-123", Weight: 3},
		{BaseURL: "https://api.example.com/v1"}}})
	b, err := json.Marshal(c.Health())
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	fp := upstream.KeyFingerprint("sk-secret-key-123")
	for _, leak := range []string{"sk-secret", "pass", "token"} {
		if strings.Contains(s, leak) {
			t.Errorf("health shows %q: %s", leak, s)
		}
	}
	if len(fp) != 8 || !strings.Contains(s, `"key":"`+fp+`"`) || !strings.Contains(s, `"key":"none"`) ||
		!strings.Contains(s, `"base_url":"https://api.example.com/v1"`) || !strings.Contains(s, `"weight":3`) {
		t.Errorf("health %s", s)
	}
}

// Requests take the endpoints in turn by weight: over N rounds of the
// total weight, each gets exactly N times its weight.
func TestEndpointWeights(t *testing.T) {
	var a, b atomic.Int64
	srvA := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.Add(1) }))
	srvB := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { b.Add(1) }))
	c := newClient(t, upstream.Config{Endpoints: []upstream.Endpoint{{BaseURL: srvA, Weight: 3}, {BaseURL: srvB, Weight: 1}}})
	var order []int
	for range 400 {
		attempts, err := call(c, context.Background())
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, attempts[0].Endpoint)
	}
	if a.Load() != 300 || b.Load() != 100 {
		t.Errorf("weights 3:1 gave %d:%d", a.Load(), b.Load())
	}
	if fmt.Sprint(order[:8]) != "[0 0 1 0 0 0 1 0]" {
		t.Errorf("weights 3:1 in the order %v", order[:8])
	}
}

// A request with an absolute URL under the first endpoint's base URL and no
// KeyScheme still goes to each attempt's endpoint, with that endpoint's key
// sent the way of the client's format.
func TestAbsoluteURLFollowsTheEndpoint(t *testing.T) {
	var seen sync.Map // "host key" → true
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Host+" "+r.Header.Get("x-api-key")+" "+r.URL.Path, true)
		_, _ = io.WriteString(w, `{}`)
	})
	a, b := newServer(t, h), newServer(t, h)
	c := newClient(t, upstream.Config{Format: "anthropic", Endpoints: []upstream.Endpoint{{BaseURL: a + "/base", APIKey: "ka"}, {BaseURL: b, APIKey: "kb"}}})
	for range 40 {
		hdr := http.Header{}
		hdr.Set("x-api-key", "stale")
		if _, err := c.Do(context.Background(), upstream.Request{URL: c.Config().BaseURL + "/v1/messages", Header: hdr, Body: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{strings.TrimPrefix(a, "http://") + " ka /base/v1/messages", strings.TrimPrefix(b, "http://") + " kb /v1/messages"} {
		if _, ok := seen.Load(want); !ok {
			var got []any
			seen.Range(func(k, _ any) bool { got = append(got, k); return true })
			t.Errorf("never saw %q; saw %v", want, got)
		}
	}
}

// A call whose caller went away while it goes on (Route.Abandoned: a
// non-streamed answer still billed) sees its attempt through and starts no
// retry for nobody, whether it left while the attempt ran or as it ended.
func TestAbandonedRouteIsNotRetried(t *testing.T) {
	for _, when := range []string{"before the failure", "as it is reported"} {
		abandoned := make(chan struct{})
		h, calls := counting(5, func(w http.ResponseWriter, r *http.Request) {
			if when == "before the failure" {
				close(abandoned)
			}
			status(503)(w, r)
		})
		c := newClient(t, upstream.Config{BaseURL: newServer(t, h), MaxRetries: 3})
		var attempts []upstream.Attempt
		rt := &upstream.Route{Abandoned: abandoned, OnAttempt: func(a upstream.Attempt) {
			attempts = append(attempts, a)
			if when == "as it is reported" {
				close(abandoned)
			}
		}}
		_, err := c.Do(upstream.WithRoute(context.Background(), rt), upstream.Request{Path: "/x", Key: upstream.BearerKey,
			Header: http.Header{}, Body: []byte("{}")})
		var ue *upstream.Error
		if !errors.As(err, &ue) || ue.Status != 503 || calls.Load() != 1 || outcomes(attempts) != "503" {
			t.Errorf("%s: err %v, %d calls, attempts %s", when, err, calls.Load(), outcomes(attempts))
		}
	}
}
