package upstream

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// The breaker's window, rate and distinct-account rules, and the round
// robin, on explicit times: no clock, no network.

// base is a time on a slice boundary of a 60s window (6s slices).
var base = time.Unix(600_000, 0)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func testPolicy() breakerPolicy {
	return breakerPolicy{failures: 5, minRequests: 10, rate: 0.5, minAccounts: 3, window: time.Minute,
		openFor: 30 * time.Second, keyCooldown: time.Minute}
}

func TestWindowSlides(t *testing.T) {
	w := newWindow(time.Minute)
	w.add(base, true, "a")
	w.add(base.Add(time.Second), false, "")
	w.add(base.Add(30*time.Second), true, "b")
	w.add(base.Add(31*time.Second), true, "a") // a again, in another slice: one account
	for _, tt := range []struct {
		at   time.Duration
		want windowStats
	}{
		{31 * time.Second, windowStats{requests: 4, failures: 3, accounts: 2}},
		{59 * time.Second, windowStats{requests: 4, failures: 3, accounts: 2}},
		{60 * time.Second, windowStats{requests: 2, failures: 2, accounts: 2}}, // the first slice left
		{89 * time.Second, windowStats{requests: 2, failures: 2, accounts: 2}},
		{90 * time.Second, windowStats{}},
		{10 * time.Minute, windowStats{}},
	} {
		if got := w.stats(base.Add(tt.at)); got != tt.want {
			t.Errorf("at +%v: %+v, want %+v", tt.at, got, tt.want)
		}
	}
	// A slice reused a window later starts empty.
	w.add(base.Add(60*time.Second), false, "")
	if got := w.stats(base.Add(60 * time.Second)); got != (windowStats{requests: 3, failures: 2, accounts: 2}) {
		t.Errorf("after reuse: %+v", got)
	}
	w.reset()
	if got := w.stats(base.Add(60 * time.Second)); got != (windowStats{}) {
		t.Errorf("after reset: %+v", got)
	}
}

func TestTrips(t *testing.T) {
	p := testPolicy()
	for _, tt := range []struct {
		s    windowStats
		want bool
	}{
		{windowStats{requests: 10, failures: 5, accounts: 3}, true},   // every threshold met exactly
		{windowStats{requests: 9, failures: 9, accounts: 9}, false},   // too few attempts
		{windowStats{requests: 10, failures: 4, accounts: 3}, false},  // too few failures
		{windowStats{requests: 12, failures: 5, accounts: 3}, false},  // 42% < 50%
		{windowStats{requests: 40, failures: 40, accounts: 2}, false}, // too few accounts
		{windowStats{requests: 40, failures: 40, accounts: 1}, false},
	} {
		if got := p.trips(tt.s); got != tt.want {
			t.Errorf("%+v: trips %v", tt.s, got)
		}
	}
	p.failures = 0 // no breaker
	if p.trips(windowStats{requests: 100, failures: 100, accounts: 100}) {
		t.Error("a disabled breaker tripped")
	}
}

func TestFailureKinds(t *testing.T) {
	for _, tt := range []struct {
		err          *Error
		cut          bool
		want         Failure
		mayBeRequest bool
	}{
		{&Error{Message: "connection refused"}, false, Failure{Kind: FailConnection}, false},
		{&Error{Timeout: true}, false, Failure{Kind: FailTimeout}, false},
		{&Error{Status: 408}, false, Failure{Kind: FailTimeout, Status: 408}, false},
		{&Error{Status: 502}, false, Failure{Kind: FailStatus, Status: 502}, false},
		{&Error{Status: 503}, false, Failure{Kind: FailStatus, Status: 503}, false},
		{&Error{Status: 504}, false, Failure{Kind: FailStatus, Status: 504}, false},
		{&Error{Status: 529}, false, Failure{Kind: FailStatus, Status: 529}, false},
		{&Error{Status: 500}, false, Failure{Kind: FailStatus, Status: 500}, true},
		{&Error{Status: 501}, false, Failure{Kind: FailStatus, Status: 501}, true},
		{&Error{Message: "connection lost"}, true, Failure{Kind: FailStreamCut}, true},
		{&Error{Timeout: true}, true, Failure{Kind: FailTimeout}, false},
	} {
		f, m := failureOf(tt.err, tt.cut)
		if f != tt.want || m != tt.mayBeRequest {
			t.Errorf("%+v cut=%v: %+v %v", tt.err, tt.cut, f, m)
		}
	}
	if r := resultOf(&Error{Err: context.Canceled}, true, "a", false); r.o != outcomeCancelled {
		t.Errorf("a caller leaving mid-body counts: %+v", r)
	}
}

func newTestEndpoint(t *testing.T) *endpoint {
	t.Helper()
	e, err := newEndpoint("test", 0, Endpoint{BaseURL: "http://127.0.0.1:1"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func fail(status int, account string) result {
	err := &Error{Status: status}
	if status == 0 {
		err.Message = "connection refused"
	}
	return resultOf(err, false, account, false)
}

// One account's failures, of any kind and however many, never open the
// breaker; two accounts do not either (the minimum is three).
func TestOneAccountNeverOpens(t *testing.T) {
	p := testPolicy()
	for _, accounts := range [][]string{{"hostile"}, {"hostile", "sidekick"}} {
		for _, status := range []int{500, 503, 0} {
			e := newTestEndpoint(t)
			for i := range 100 {
				if e.report(fail(status, accounts[i%len(accounts)]), base.Add(time.Duration(i)*100*time.Millisecond), p, quiet, "test") {
					t.Fatalf("%v, status %d: opened at failure %d", accounts, status, i+1)
				}
			}
			if h := e.health(base.Add(10 * time.Second)); h.State != StateClosed || h.FailingAccounts != len(accounts) ||
				h.FailureRate != 1 || h.WindowFailures != 100 || len(h.LastFailures) != lastFailures {
				t.Errorf("%v, status %d: %+v", accounts, status, h)
			}
		}
	}
}

// Failures from three accounts open the breaker once the window holds the
// minimum of attempts at the failure rate; it says why. While open, a 500
// (maybe the request's) does not keep it open, a 503 does, and an answer
// closes it and forgets the window.
func TestOpensOnRateAndAccounts(t *testing.T) {
	p := testPolicy()
	e := newTestEndpoint(t)
	now := base
	ok := resultOf(nil, false, "good", false)
	// 6 successes and 4 failures: 10 attempts, 40%.
	for i := range 10 {
		r := ok
		if i%5 >= 3 {
			r = fail(503, []string{"a", "b", "c"}[i%3])
		}
		if e.report(r, now, p, quiet, "test") {
			t.Fatalf("opened at attempt %d", i+1)
		}
	}
	// 5 of 11, 45%; then 6 of 12: 50% from 3 accounts.
	if e.report(fail(0, "a"), now, p, quiet, "test") {
		t.Fatal("opened at 45%")
	}
	if !e.report(fail(504, "b"), now, p, quiet, "test") {
		t.Fatalf("closed at 6 of 12 failures: %+v", e.health(now))
	}
	h := e.health(now)
	for _, want := range []string{"6 of the last 12 attempts within 1m0s failed (50%", "from 3 distinct accounts", "504"} {
		if !strings.Contains(h.Reason, want) {
			t.Errorf("reason %q lacks %q", h.Reason, want)
		}
	}
	if h.State != StateOpen || !h.OpenedAt.Equal(now) || !h.OpenUntil.Equal(now.Add(30*time.Second)) {
		t.Errorf("health %+v", h)
	}
	if ok, _ := e.acquire(now.Add(29 * time.Second)); ok {
		t.Error("open breaker let a request through before its cooldown")
	}
	// Half-open: one probe at a time.
	now = now.Add(30 * time.Second)
	if ok, probe := e.acquire(now); !ok || !probe {
		t.Fatal("no probe after the cooldown")
	}
	if ok, _ := e.acquire(now); ok {
		t.Fatal("a second probe went while the first was in flight")
	}
	// A probe answered with a 500 leaves it half-open: the next request probes.
	if e.report(resultOf(&Error{Status: 500}, false, "hostile", true), now, p, quiet, "test") {
		t.Fatal("a 500 probe kept the breaker open")
	}
	if h := e.health(now); h.State != StateHalfOpen {
		t.Fatalf("after a 500 probe: %s", h.State)
	}
	// A probe answered with a 503 opens it for another cooldown.
	if ok, probe := e.acquire(now); !ok || !probe {
		t.Fatal("no probe after a 500 probe")
	}
	if !e.report(resultOf(&Error{Status: 503}, false, "a", true), now, p, quiet, "test") {
		t.Fatal("a 503 probe did not keep it open")
	}
	if h := e.health(now); h.State != StateOpen || !h.OpenUntil.Equal(now.Add(30*time.Second)) ||
		!strings.HasPrefix(h.Reason, "still failing (503 at ") {
		t.Fatalf("after a 503 probe: %+v", h)
	}
	// An answer closes it, and the window starts again.
	if e.report(resultOf(nil, false, "good", false), now, p, quiet, "test") {
		t.Fatal("a success opened it")
	}
	if h := e.health(now); h.State != StateClosed || h.Reason != "" || h.WindowRequests != 1 || h.WindowFailures != 0 || h.ConsecutiveFailures != 0 {
		t.Fatalf("after a success: %+v", h)
	}
}
