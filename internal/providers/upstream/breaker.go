package upstream

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The circuit breaker of an endpoint opens on a failure rate over a
// sliding window, not on a run of failures: a run can be one customer's
// requests whose content makes the upstream fail, and opening on it would
// let that customer turn the provider off for everyone. It opens when, in
// the last BreakerWindow, the endpoint had at least BreakerMinRequests
// attempts, at least BreakerFailures of them failed, the failures are at
// least BreakerFailureRate of the attempts, and they came from at least
// BreakerMinAccounts distinct accounts.

// Failure kinds, as /status/providers shows an endpoint's last failures.
const (
	FailConnection = "connection" // no answer: refused, reset, unreachable
	FailTimeout    = "timeout"    // no headers, or no stream event, in time; or a 408
	FailStatus     = "status"     // a 5xx answer (Status says which)
	FailStreamCut  = "stream_cut" // a 2xx body that broke off
)

// Failure is one failure the breaker counted.
type Failure struct {
	Kind   string    `json:"kind"`
	Status int       `json:"status,omitempty"`
	At     time.Time `json:"at"`
}

func (f Failure) String() string {
	if f.Status != 0 {
		return strconv.Itoa(f.Status)
	}
	return strings.ReplaceAll(f.Kind, "_", " ")
}

// failureOf is how the breaker counts a failed attempt. mayBeRequest: the
// failure may be the request's doing (a 500, or a stream that broke off:
// some content makes some upstreams crash), so it says little about the
// endpoint on its own.
func failureOf(e *Error, cut bool) (f Failure, mayBeRequest bool) {
	switch {
	case cut && e.Timeout:
		return Failure{Kind: FailTimeout}, false
	case cut:
		return Failure{Kind: FailStreamCut}, true
	case e.Timeout:
		return Failure{Kind: FailTimeout}, false
	case e.Status == 0:
		return Failure{Kind: FailConnection}, false
	case e.Status == 408:
		return Failure{Kind: FailTimeout, Status: 408}, false
	}
	return Failure{Kind: FailStatus, Status: e.Status}, !e.Unavailable()
}

// windowBuckets slices the window: the counts of a slice leave the window
// all at once, a tenth of the window after its last attempt at worst.
const windowBuckets = 10

// maxBucketAccounts bounds the failing accounts one slice remembers: the
// breaker needs to know whether there are a few, not how many exactly.
const maxBucketAccounts = 64

// bucket is one slice of an endpoint's window.
type bucket struct {
	slot     int64 // time / width: which slice the counts are of
	requests int   // attempts that got an answer or failed (not cancelled)
	failures int   // of which counted failures
	accounts map[string]struct{}
}

// window is an endpoint's recent attempts, in time slices.
type window struct {
	width time.Duration // of a slice
	b     [windowBuckets]bucket
}

func newWindow(d time.Duration) window {
	return window{width: max(d/windowBuckets, time.Millisecond)}
}

func (w *window) slot(t time.Time) int64 { return t.UnixNano() / int64(w.width) }

// at is the slice t falls in, emptied when it held an older slice's counts.
func (w *window) at(t time.Time) *bucket {
	s := w.slot(t)
	b := &w.b[(s%windowBuckets+windowBuckets)%windowBuckets]
	if b.slot != s {
		*b = bucket{slot: s}
	}
	return b
}

// add records an attempt at t; account is the caller's when it failed.
func (w *window) add(t time.Time, failed bool, account string) {
	b := w.at(t)
	b.requests++
	if !failed {
		return
	}
	b.failures++
	if _, ok := b.accounts[account]; ok || len(b.accounts) >= maxBucketAccounts {
		return
	}
	if b.accounts == nil {
		b.accounts = map[string]struct{}{}
	}
	b.accounts[account] = struct{}{}
}

func (w *window) reset() { w.b = [windowBuckets]bucket{} }

// windowStats are the counts of the window ending at some time.
type windowStats struct {
	requests, failures int
	accounts           int // distinct accounts among the failures
}

func (s windowStats) rate() float64 {
	if s.requests == 0 {
		return 0
	}
	return float64(s.failures) / float64(s.requests)
}

func (w *window) stats(t time.Time) windowStats {
	now := w.slot(t)
	var s windowStats
	var seen map[string]struct{}
	for i := range w.b {
		b := &w.b[i]
		if b.requests == 0 || b.slot <= now-windowBuckets || b.slot > now {
			continue
		}
		s.requests += b.requests
		s.failures += b.failures
		for a := range b.accounts {
			if seen == nil {
				seen = map[string]struct{}{}
			}
			seen[a] = struct{}{}
		}
	}
	s.accounts = len(seen)
	return s
}

// breakerPolicy is the part of Config the endpoints apply.
type breakerPolicy struct {
	failures    int           // the fewest failures in the window that open the breaker; 0 = never
	minRequests int           // the fewest attempts in the window
	rate        float64       // the least share of failed attempts
	minAccounts int           // the fewest distinct accounts among the failures
	window      time.Duration // how far back attempts count
	openFor     time.Duration // before a half-open probe
	keyCooldown time.Duration // after a 401/403, and the most a 429 cools a key
}

func (p breakerPolicy) trips(s windowStats) bool {
	return p.failures > 0 && s.requests >= p.minRequests && s.failures >= p.failures &&
		s.rate() >= p.rate && s.accounts >= p.minAccounts
}

// tripReason says why the breaker opened, for /status/providers and logs.
func (p breakerPolicy) tripReason(s windowStats, last []Failure) string {
	kinds := make([]string, len(last))
	for i, f := range last {
		kinds[i] = f.String()
	}
	return fmt.Sprintf("%d of the last %d attempts within %s failed (%.0f%%, opens at %.0f%%), from %d distinct accounts (opens at %d); latest failures: %s",
		s.failures, s.requests, p.window, 100*s.rate(), 100*p.rate, s.accounts, p.minAccounts, strings.Join(kinds, ", "))
}

// BreakerPolicy is when a provider's breakers open, as /status/providers
// shows it.
type BreakerPolicy struct {
	Enabled         bool    `json:"enabled"`
	WindowSeconds   float64 `json:"window_seconds"`
	MinRequests     int     `json:"min_requests"`
	MinFailures     int     `json:"min_failures"`
	FailureRate     float64 `json:"failure_rate"`
	MinAccounts     int     `json:"min_accounts"`
	CooldownSeconds float64 `json:"cooldown_seconds"`
}

func (p breakerPolicy) public() BreakerPolicy {
	return BreakerPolicy{Enabled: p.failures > 0, WindowSeconds: p.window.Seconds(), MinRequests: p.minRequests,
		MinFailures: p.failures, FailureRate: p.rate, MinAccounts: p.minAccounts, CooldownSeconds: p.openFor.Seconds()}
}
