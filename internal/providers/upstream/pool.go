package upstream

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Endpoint is one base URL and API key of a provider. A provider with
// several gives each request's attempts to them in turn, by weight
// (smooth weighted round robin), skipping keys that cool down and
// endpoints whose circuit breaker is open.
type Endpoint struct {
	BaseURL string
	APIKey  string // may be empty (fake upstreams)
	Weight  int    // relative share of requests; 0 = 1
}

// Circuit breaker states, as /status/providers shows them.
const (
	StateClosed   = "closed"    // requests flow
	StateOpen     = "open"      // failing: requests that have a fallback model are refused without a call
	StateHalfOpen = "half_open" // open, and the next request is sent as a probe
)

// Cooldown reasons.
const (
	CooldownRateLimited = "rate_limited" // a 429: for its Retry-After (1s when none), at most KeyCooldown
	CooldownKeyRejected = "key_rejected" // a 401 or 403: for KeyCooldown
)

// outcome is what an attempt says about the endpoint it went to.
type outcome int

const (
	outcomeOK        outcome = iota // answered (a 2xx, or an answer that faults the request itself)
	outcomeFailed                   // network error, timeout, 408 or 5xx: counts towards the breaker
	outcomeLimited                  // 429: the key cools down
	outcomeRejected                 // 401/403: the key cools down
	outcomeCancelled                // the caller went away: says nothing
)

// outcomeOf classifies an attempt's error (nil = a 2xx).
func outcomeOf(e *Error) outcome {
	switch {
	case e == nil:
		return outcomeOK
	case e.Cancelled():
		return outcomeCancelled
	case e.Status == http.StatusTooManyRequests:
		return outcomeLimited
	case e.KeyRejected():
		return outcomeRejected
	case e.Status == 0, e.Status == http.StatusRequestTimeout, e.Status >= 500:
		return outcomeFailed
	}
	return outcomeOK
}

// result is an attempt as its endpoint records it.
type result struct {
	o            outcome
	fail         Failure // when o is outcomeFailed
	mayBeRequest bool    // the failure may be the request's doing (failureOf)
	account      string  // the caller's (Route.Account)
	probe        bool    // the attempt was the half-open probe
	retryAfter   time.Duration
}

// resultOf is err's result; cut: err broke a 2xx body off.
func resultOf(err *Error, cut bool, account string, probe bool) result {
	r := result{o: outcomeOf(err), account: account, probe: probe}
	if err != nil {
		r.retryAfter = err.RetryAfter
	}
	if cut && r.o != outcomeCancelled {
		r.o = outcomeFailed
	}
	if r.o == outcomeFailed {
		r.fail, r.mayBeRequest = failureOf(err, cut)
	}
	return r
}

// lastFailures is how many of an endpoint's latest failures it keeps.
const lastFailures = 5

// endpoint is an Endpoint with its transport details and health.
type endpoint struct {
	Endpoint
	index   int
	fp      string // the key's fingerprint
	scheme  string
	host    string
	origin  string // scheme://host
	prefix  string // the base URL's path ("/v1"), before a request's Path
	proxied bool   // the environment names a proxy for it: net/http's transport

	current int // smooth weighted round robin credit; guarded by the Client's mu

	mu            sync.Mutex
	failures      int    // consecutive failures
	win           window // recent attempts
	last          []Failure
	open          bool      // the breaker is open (or half-open once openUntil passed)
	openedAt      time.Time // when it last opened
	openUntil     time.Time // when open: no request before this; then one probe at a time
	reason        string    // why it opened
	kept          Failure   // the latest failure while open that kept it open
	probing       bool      // the half-open probe is in flight
	cooldownUntil time.Time
	cooldownWhy   string

	requests atomic.Int64 // attempts sent
	failed   atomic.Int64 // attempts that failed (any outcome but OK and cancelled)
}

// KeyFingerprint is how a key is shown (status, metrics, logs): the first 8
// hex digits of its SHA-256, or "none". It names a key without revealing it.
func KeyFingerprint(key string) string {
	if key == "" {
		return "none"
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:4])
}

// displayURL is a base URL without credentials, query or fragment.
func displayURL(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.Fragment, c.ForceQuery = nil, "", "", false
	return c.String()
}

func newEndpoint(name string, i int, ep Endpoint, window time.Duration) (*endpoint, error) {
	ep.BaseURL = strings.TrimRight(ep.BaseURL, "/")
	u, err := url.Parse(ep.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("provider %q: base URL %q must be an absolute http(s) URL", name, ep.BaseURL)
	}
	if ep.Weight <= 0 {
		ep.Weight = 1
	}
	e := &endpoint{Endpoint: ep, index: i, fp: KeyFingerprint(ep.APIKey), scheme: u.Scheme, host: u.Host,
		origin: u.Scheme + "://" + u.Host, win: newWindow(window)}
	e.prefix = strings.TrimPrefix(ep.BaseURL, e.origin)
	proxy, perr := http.ProxyFromEnvironment(&http.Request{URL: u})
	e.proxied = perr != nil || proxy != nil
	return e, nil
}

// cooling reports whether the key is cooling down at now.
func (e *endpoint) cooling(now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return now.Before(e.cooldownUntil)
}

// refuses reports whether the breaker refuses a request at now: open and
// before its probe time, or half-open with the probe in flight.
func (e *endpoint) refuses(now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.open && (now.Before(e.openUntil) || e.probing)
}

// acquire takes the endpoint for one attempt; a half-open breaker lets one
// probe through at a time (probe: this attempt is it). False: the breaker
// refuses, or another request took the probe first.
func (e *endpoint) acquire(now time.Time) (ok, probe bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.open {
		return true, false
	}
	if now.Before(e.openUntil) || e.probing {
		return false, false
	}
	e.probing = true
	return true, true
}

// report records an attempt's result. It returns true when the breaker
// opened (or, after a failure that says the endpoint is down, stayed open
// for another cooldown).
func (e *endpoint) report(r result, now time.Time, p breakerPolicy, log *slog.Logger, provider string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r.probe {
		e.probing = false
	}
	switch r.o {
	case outcomeCancelled:
		return false
	case outcomeFailed:
		e.failed.Add(1)
		e.failures++
		r.fail.At = now
		e.win.add(now, true, r.account)
		if len(e.last) == lastFailures {
			e.last = append(e.last[:0], e.last[1:]...)
		}
		e.last = append(e.last, r.fail)
		if e.open {
			if r.mayBeRequest {
				return false // a 500 may be the request's: it neither closes nor extends
			}
			e.openUntil, e.kept = now.Add(p.openFor), r.fail
			return true
		}
		if s := e.win.stats(now); p.trips(s) {
			e.open, e.openedAt, e.openUntil, e.kept = true, now, now.Add(p.openFor), Failure{}
			e.reason = p.tripReason(s, e.last)
			log.Warn("upstream circuit breaker open", "provider", provider, "endpoint", e.index, "key", e.fp,
				"until", e.openUntil, "reason", e.reason)
			return true
		}
		return false
	case outcomeLimited:
		e.failed.Add(1)
		d := r.retryAfter
		if d <= 0 {
			d = time.Second
		}
		e.cooldownUntil, e.cooldownWhy = now.Add(min(d, p.keyCooldown)), CooldownRateLimited
	case outcomeRejected:
		e.failed.Add(1)
		e.cooldownUntil, e.cooldownWhy = now.Add(p.keyCooldown), CooldownKeyRejected
	case outcomeOK:
		e.cooldownUntil, e.cooldownWhy = time.Time{}, ""
	}
	// The upstream answered: the endpoint is up. Closing forgets the
	// window, whose failures were the outage's.
	e.failures = 0
	if e.open {
		e.open, e.reason = false, ""
		e.win.reset()
		log.Info("upstream circuit breaker closed", "provider", provider, "endpoint", e.index, "key", e.fp,
			"open_for", now.Sub(e.openedAt))
	}
	e.win.add(now, false, "")
	return false
}

// EndpointHealth is one endpoint's state (GET /status/providers and the
// beaver_upstream_* metrics). The key appears only as its fingerprint;
// accounts only as a count.
type EndpointHealth struct {
	Index               int       `json:"index"`
	Key                 string    `json:"key"` // KeyFingerprint
	BaseURL             string    `json:"base_url"`
	Weight              int       `json:"weight"`
	State               string    `json:"state"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	OpenedAt            time.Time `json:"-"` // zero when closed
	OpenUntil           time.Time `json:"-"` // zero when closed
	CooldownUntil       time.Time `json:"-"` // zero when not cooling down
	CooldownReason      string    `json:"cooldown_reason,omitempty"`
	Requests            int64     `json:"requests"`
	Failures            int64     `json:"failures"`
	// The breaker's window (BreakerWindow up to now): attempts, counted
	// failures, their share and the distinct accounts they came from.
	WindowRequests  int     `json:"window_requests"`
	WindowFailures  int     `json:"window_failures"`
	FailureRate     float64 `json:"failure_rate"`
	FailingAccounts int     `json:"failing_accounts"`
	// LastFailures are the latest counted failures, oldest first.
	LastFailures []Failure `json:"last_failures"`
	// Reason says why an open (or half-open) breaker opened.
	Reason string `json:"reason,omitempty"`
}

// Health is a provider's endpoints and its retries.
type Health struct {
	Provider string `json:"provider"`
	// State is the provider's: closed when an endpoint is closed, else
	// half_open when one is half-open, else open.
	State     string           `json:"state"`
	Retries   int64            `json:"retries"`
	Breaker   BreakerPolicy    `json:"breaker"`
	Endpoints []EndpointHealth `json:"endpoints"`
}

func (e *endpoint) health(now time.Time) EndpointHealth {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.win.stats(now)
	h := EndpointHealth{Index: e.index, Key: e.fp, Weight: e.Weight, State: StateClosed,
		ConsecutiveFailures: e.failures, Requests: e.requests.Load(), Failures: e.failed.Load(),
		WindowRequests: s.requests, WindowFailures: s.failures, FailureRate: s.rate(), FailingAccounts: s.accounts,
		LastFailures: append([]Failure{}, e.last...)}
	if u, err := url.Parse(e.BaseURL); err == nil {
		h.BaseURL = displayURL(u)
	}
	if e.open {
		h.OpenedAt, h.OpenUntil, h.Reason = e.openedAt, e.openUntil, "opened: "+e.reason
		if e.kept.Kind != "" {
			h.Reason = fmt.Sprintf("still failing (%s at %s); %s", e.kept, e.kept.At.UTC().Format(time.RFC3339), h.Reason)
		}
		h.State = StateOpen
		if e.probing || !now.Before(e.openUntil) {
			h.State = StateHalfOpen
		}
	}
	if now.Before(e.cooldownUntil) {
		h.CooldownUntil, h.CooldownReason = e.cooldownUntil, e.cooldownWhy
	}
	return h
}

// pick chooses the endpoint of the next attempt among those whose breaker
// lets a request through and that did not answer this call with a quick
// 500 (spent), preferring keys that are not cooling down, then endpoints
// this call has not tried yet; within that, by smooth weighted round robin
// (rotate). probe: the attempt is a half-open breaker's probe. When every
// breaker refuses and force is set (the caller has no fallback model), it
// chooses among the open ones all the same: refusing could only turn a
// possible answer into a certain error. It returns nil when nothing may
// take the attempt.
func (c *Client) pick(now time.Time, tried, spent []bool, force bool) (e *endpoint, probe bool) {
	if len(c.eps) == 1 { // the common case: no choice to make
		e := c.eps[0]
		if spent[0] {
			return nil, false
		}
		if ok, probe := e.acquire(now); ok {
			return e, probe
		}
		if force {
			return e, false
		}
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	skip := make([]bool, len(c.eps)) // refused, or lost a half-open probe race
	cands := make([]*endpoint, 0, len(c.eps))
	for pass := range 2 {
		if pass == 1 && !force {
			break
		}
		for tier := range 4 {
			wantCool, wantTried := tier >= 2, tier%2 == 1
			for {
				cands = cands[:0]
				for i, e := range c.eps {
					if spent[i] || tried[i] != wantTried || e.cooling(now) != wantCool {
						continue
					}
					if pass == 0 && (skip[i] || e.refuses(now)) {
						skip[i] = true
						continue
					}
					cands = append(cands, e)
				}
				if len(cands) == 0 {
					break
				}
				e := rotate(cands)
				if pass == 1 {
					return e, false
				}
				if ok, probe := e.acquire(now); ok {
					return e, probe
				}
				skip[e.index] = true
			}
		}
	}
	return nil, false
}

// rotate is nginx's smooth weighted round robin: each candidate gains its
// weight in credit, the one with the most (the first on a tie) is chosen
// and pays the candidates' total. From the start, while the candidates
// stay the same, any run of total-weight picks gives every one exactly its
// weight of them, spread out (weights 3:1 give a a b a, a a b a, ...);
// after the candidates changed (a key cooled down), it settles again
// within a round. The caller holds c.mu.
func rotate(cands []*endpoint) *endpoint {
	var best *endpoint
	total := 0
	for _, e := range cands {
		e.current += e.Weight
		total += e.Weight
		if best == nil || e.current > best.current {
			best = e
		}
	}
	best.current -= total
	return best
}

// circuitOpen is the error of a call refused because every breaker is
// open; RetryAfter is the time until the first probe may go.
func (c *Client) circuitOpen(now time.Time) *Error {
	var next time.Time
	reason := ""
	for _, e := range c.eps {
		e.mu.Lock()
		if e.open && (next.IsZero() || e.openUntil.Before(next)) {
			next, reason = e.openUntil, e.reason
		}
		e.mu.Unlock()
	}
	return &Error{CircuitOpen: true, RetryAfter: max(next.Sub(now), time.Second),
		Message: fmt.Sprintf("%s: circuit breaker open (%s); requests with a fallback model go to it until a probe succeeds", c.cfg.Name, reason)}
}

// allOpen reports whether no endpoint but the spent ones could take an
// attempt at t: every breaker will still refuse.
func (c *Client) allOpen(t time.Time, spent []bool) bool {
	for i, e := range c.eps {
		if !spent[i] && !e.refuses(t) {
			return false
		}
	}
	return true
}

// ready reports whether an endpoint other than those tried could take an
// attempt at once: then a 429's Retry-After, which is the key's, need not
// be waited out.
func (c *Client) ready(now time.Time, tried []bool) bool {
	for i, e := range c.eps {
		if !tried[i] && !e.cooling(now) && !e.refuses(now) {
			return true
		}
	}
	return false
}

// otherKey reports whether an untried endpoint has a key other than those
// of the tried ones (a 401/403 is worth retrying only with another key).
func (c *Client) otherKey(tried []bool) bool {
	for i, e := range c.eps {
		if tried[i] {
			continue
		}
		fresh := true
		for j, t := range c.eps {
			if tried[j] && t.APIKey == e.APIKey {
				fresh = false
				break
			}
		}
		if fresh {
			return true
		}
	}
	return false
}

// Health reports the client's endpoints.
func (c *Client) Health() Health {
	now := c.now()
	h := Health{Provider: c.cfg.Name, State: StateOpen, Retries: c.retries.Load(), Breaker: c.policy.public(),
		Endpoints: make([]EndpointHealth, len(c.eps))}
	for i, e := range c.eps {
		eh := e.health(now)
		h.Endpoints[i] = eh
		switch {
		case eh.State == StateClosed:
			h.State = StateClosed
		case eh.State == StateHalfOpen && h.State == StateOpen:
			h.State = StateHalfOpen
		}
	}
	return h
}
