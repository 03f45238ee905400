package upstream

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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
	StateOpen     = "open"      // failing: requests are refused without a call
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
	failures      int       // consecutive failures
	open          bool      // the breaker is open (or half-open once openUntil passed)
	openUntil     time.Time // when open: no request before this; then one probe at a time
	probing       bool      // the half-open probe is in flight
	cooldownUntil time.Time
	cooldownWhy   string

	requests atomic.Int64 // attempts sent
	failed   atomic.Int64 // attempts that failed (any outcome but OK and cancelled)
}

// breakerPolicy is the part of Config the endpoints apply.
type breakerPolicy struct {
	failures    int           // consecutive failures that open the breaker; 0 = never
	openFor     time.Duration // before a half-open probe
	keyCooldown time.Duration // after a 401/403, and the most a 429 cools a key
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

func newEndpoint(name string, i int, ep Endpoint) (*endpoint, error) {
	ep.BaseURL = strings.TrimRight(ep.BaseURL, "/")
	u, err := url.Parse(ep.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("provider %q: base URL %q must be an absolute http(s) URL", name, ep.BaseURL)
	}
	if ep.Weight <= 0 {
		ep.Weight = 1
	}
	e := &endpoint{Endpoint: ep, index: i, fp: KeyFingerprint(ep.APIKey), scheme: u.Scheme, host: u.Host,
		origin: u.Scheme + "://" + u.Host}
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
// probe through at a time. False: another request took the probe first.
func (e *endpoint) acquire(now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.open {
		return true
	}
	if now.Before(e.openUntil) || e.probing {
		return false
	}
	e.probing = true
	return true
}

// report records an attempt's outcome. It returns true when the breaker
// opened (or, after a failed probe, stayed open).
func (e *endpoint) report(o outcome, now time.Time, retryAfter time.Duration, p breakerPolicy) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.probing = false
	switch o {
	case outcomeCancelled:
		return false
	case outcomeFailed:
		e.failed.Add(1)
		e.failures++
		if e.open || p.failures > 0 && e.failures >= p.failures {
			e.open, e.openUntil = true, now.Add(p.openFor)
			return true
		}
		return false
	case outcomeLimited:
		e.failed.Add(1)
		d := retryAfter
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
	// The upstream answered: the endpoint is up.
	e.failures, e.open = 0, false
	return false
}

// EndpointHealth is one endpoint's state (GET /status/providers and the
// beaver_upstream_* metrics). The key appears only as its fingerprint.
type EndpointHealth struct {
	Index               int       `json:"index"`
	Key                 string    `json:"key"` // KeyFingerprint
	BaseURL             string    `json:"base_url"`
	Weight              int       `json:"weight"`
	State               string    `json:"state"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	OpenUntil           time.Time `json:"-"` // zero when closed
	CooldownUntil       time.Time `json:"-"` // zero when not cooling down
	CooldownReason      string    `json:"cooldown_reason,omitempty"`
	Requests            int64     `json:"requests"`
	Failures            int64     `json:"failures"`
}

// Health is a provider's endpoints and its retries.
type Health struct {
	Provider string `json:"provider"`
	// State is the provider's: closed when an endpoint is closed, else
	// half_open when one is half-open, else open.
	State     string           `json:"state"`
	Retries   int64            `json:"retries"`
	Endpoints []EndpointHealth `json:"endpoints"`
}

func (e *endpoint) health(now time.Time) EndpointHealth {
	e.mu.Lock()
	defer e.mu.Unlock()
	h := EndpointHealth{Index: e.index, Key: e.fp, Weight: e.Weight, State: StateClosed,
		ConsecutiveFailures: e.failures, Requests: e.requests.Load(), Failures: e.failed.Load()}
	if u, err := url.Parse(e.BaseURL); err == nil {
		h.BaseURL = displayURL(u)
	}
	if e.open {
		h.OpenUntil = e.openUntil
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
// lets a request through, preferring keys that are not cooling down, then
// endpoints this call has not tried yet; within that, by smooth weighted
// round robin (rotate). It returns nil when every breaker is open.
func (c *Client) pick(now time.Time, tried []bool) *endpoint {
	if len(c.eps) == 1 { // the common case: no choice to make
		if e := c.eps[0]; e.acquire(now) {
			return e
		}
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	skip := make([]bool, len(c.eps)) // refused, or lost a half-open probe race
	cands := make([]*endpoint, 0, len(c.eps))
	for tier := range 4 {
		wantCool, wantTried := tier >= 2, tier%2 == 1
		for {
			cands = cands[:0]
			for i, e := range c.eps {
				if skip[i] || tried[i] != wantTried || e.cooling(now) != wantCool {
					continue
				}
				if e.refuses(now) {
					skip[i] = true
					continue
				}
				cands = append(cands, e)
			}
			if len(cands) == 0 {
				break
			}
			e := rotate(cands)
			if e.acquire(now) {
				return e
			}
			skip[e.index] = true
		}
	}
	return nil
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
	for _, e := range c.eps {
		e.mu.Lock()
		if e.open && (next.IsZero() || e.openUntil.Before(next)) {
			next = e.openUntil
		}
		e.mu.Unlock()
	}
	return &Error{CircuitOpen: true, RetryAfter: max(next.Sub(now), time.Second),
		Message: fmt.Sprintf("%s failed %d times in a row; no request is sent to it until a probe succeeds", c.cfg.Name, c.cfg.BreakerFailures)}
}

// allOpen reports whether every endpoint's breaker will still refuse
// requests at t.
func (c *Client) allOpen(t time.Time) bool {
	for _, e := range c.eps {
		if !e.refuses(t) {
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
	now := time.Now()
	h := Health{Provider: c.cfg.Name, State: StateOpen, Retries: c.retries.Load(), Endpoints: make([]EndpointHealth, len(c.eps))}
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
