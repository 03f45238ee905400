package upstream

import (
	"context"
	"strconv"
	"time"
)

// Route is one logical request that may make several calls (the models of
// a fallback chain, each through its provider's client), shared with the
// clients through the context, like net/http/httptrace: one retry budget
// for every call, and a report of each attempt. A Route is used by one
// goroutine at a time (calls made one after the other).
type Route struct {
	// OnAttempt, when set, is called after each attempt (and when a call
	// is refused because every circuit breaker is open), on the calling
	// goroutine.
	OnAttempt func(Attempt)
	// Account is whom the request is for (the gateway's account id). A
	// breaker opens only on failures from several distinct accounts, so
	// that one account's requests cannot turn a provider off for others.
	Account string
	// Fallback: the caller has another model to try if this call fails.
	// Without one, a call finding every breaker of its provider open is
	// sent all the same: refusing it could only turn a possible answer
	// into a certain error.
	Fallback bool
	// Abandoned, when closed, means the caller went away while its call
	// goes on (a non-streamed answer that is still billed): the attempt in
	// flight is seen through, and no retry starts for nobody.
	Abandoned <-chan struct{}

	until time.Time // retries end here; set by the first call (its RetryBudget)
}

type routeKey struct{}

// WithRoute returns ctx carrying r.
func WithRoute(ctx context.Context, r *Route) context.Context {
	return context.WithValue(ctx, routeKey{}, r)
}

func routeOf(ctx context.Context) *Route {
	r, _ := ctx.Value(routeKey{}).(*Route)
	return r
}

// abandoned reports whether r's caller went away (see Route.Abandoned).
func (r *Route) abandoned() bool {
	if r == nil || r.Abandoned == nil {
		return false
	}
	select {
	case <-r.Abandoned:
		return true
	default:
		return false
	}
}

// abandonedC is r's Abandoned channel; nil (never ready) when none.
func (r *Route) abandonedC() <-chan struct{} {
	if r == nil {
		return nil
	}
	return r.Abandoned
}

// Attempt is one try of a call.
type Attempt struct {
	Provider string
	Endpoint int    // index of the endpoint (base URL and key) it went to; -1 = none (circuit open)
	Key      string // that endpoint's KeyFingerprint
	Status   int    // the upstream's HTTP status; 0 = no answer
	Err      *Error // nil: the upstream answered with a 2xx
	Duration time.Duration
}

// Outcome is the attempt in a word, as X-Beaver-Attempts shows it: the
// upstream's HTTP status, or "timeout", "circuit_open", "cancelled" or
// "error" (no answer: connection refused, reset, ...).
func (a Attempt) Outcome() string {
	return OutcomeOf(a.Status, a.Err)
}

// OutcomeOf is Attempt.Outcome for a status and error.
func OutcomeOf(status int, e *Error) string {
	switch {
	case e == nil && status != 0:
		return strconv.Itoa(status)
	case e == nil:
		return "200"
	case e.CircuitOpen:
		return "circuit_open"
	case e.Cancelled():
		return "cancelled"
	case e.Timeout:
		return "timeout"
	case e.Status != 0:
		return strconv.Itoa(e.Status)
	}
	return "error"
}
