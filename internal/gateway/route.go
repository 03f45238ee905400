package gateway

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/internal/providers"
)

// Routing: the models a request may be answered by, and trying them in
// turn. Within one model, its provider's client retries, picks keys and
// keeps circuit breakers (package upstream); here, a model that fails
// before any output in a way another model may mend hands the request to
// the next one. The request is held once, for the chain's most expensive
// model, and charged once, at the price of the model that answered.

// candidate is one model of a request's chain. Its catalog entry is the one
// resolved at admission: its price and version are what it is charged at.
type candidate struct {
	entry *catalog.Entry
	prov  providers.Provider
}

// chain resolves the models that may answer a call, in order: the model
// asked for (the path's, the request's model, or else the first of its
// models), then the request's models, or, when it names none, the
// configured fallbacks of that model. Every model the request names must
// exist (else 400 with param models) and be allowed to the key (else 403);
// configured fallbacks that are unknown, not allowed or whose provider is
// not configured are left out, as are repeats.
func (g *Gateway) chain(p *auth.Principal, model string, models []string, ip string) ([]candidate, error) {
	primary, listed, first := model, models, 0
	if primary == "" {
		if len(listed) == 0 {
			return nil, apierr.Invalid("model is required").WithParam("model")
		}
		primary, listed, first = listed[0], listed[1:], 1
	}
	account := ""
	if p != nil {
		account = p.Account.ID
	}
	entry, err := g.catalog.ResolveFor(primary, account) // the account's fine-tuned models too
	if err != nil {
		if first == 1 {
			return nil, modelsError(0, err)
		}
		return nil, err
	}
	if err := checkKeyPolicy(p, entry.ID, ip); err != nil {
		return nil, err
	}
	prov, ok := g.providers.Get(entry.Provider)
	if !ok {
		return nil, apierr.Unavailable("provider %s is not configured on this gateway", entry.Provider)
	}
	chain := []candidate{{entry: entry, prov: prov}}
	add := func(e *catalog.Entry) {
		for _, c := range chain {
			if c.entry.ID == e.ID {
				return
			}
		}
		if prov, ok := g.providers.Get(e.Provider); ok {
			chain = append(chain, candidate{entry: e, prov: prov})
		}
	}
	if models != nil {
		for i, name := range listed {
			e, err := g.catalog.ResolveFor(name, account)
			if err != nil {
				return nil, modelsError(i+first, err)
			}
			if err := checkKeyPolicy(p, e.ID, ip); err != nil {
				return nil, err
			}
			add(e)
		}
		return chain, nil
	}
	for _, name := range g.opts.Fallbacks[entry.ID] {
		if e, err := g.catalog.Resolve(name); err == nil && checkKeyPolicy(p, e.ID, ip) == nil {
			add(e)
		}
	}
	return chain, nil
}

func modelsError(i int, err error) error {
	msg := err.Error()
	if ae, ok := apierr.As(err); ok {
		msg = ae.Message
	}
	return apierr.Invalid("models[%d]: %s", i, msg).WithParam("models")
}

// defaultMaxOutput is the output cap of a model whose catalog entry has
// none (the contract's 4096).
const defaultMaxOutput = 4096

// chainPrice is what a chain is admitted at, for a request admitted at at
// whose prompt is at most prompt tokens: pricing.UpperBoundOf its models'
// prices, with toolCalls provider-run calls of each priced tool (chat:
// chat.MaxServerToolCalls), so that the hold covers the most any of them
// can charge.
func chainPrice(chain []candidate, at time.Time, prompt, toolCalls int64) pricing.Price {
	prices := make([]pricing.Price, len(chain))
	for i, c := range chain {
		prices[i] = c.entry.Price
	}
	return pricing.UpperBoundOf(prices, at, prompt, toolCalls)
}

// chainMaxOutput is the largest output cap of a chain's models (a model
// without one has the contract's 4096); a chain of one is its model's cap.
func chainMaxOutput(chain []candidate) int64 {
	if len(chain) == 1 {
		return chain[0].entry.MaxOutputTokens
	}
	var maxOut int64
	for _, c := range chain {
		out := c.entry.MaxOutputTokens
		if out <= 0 {
			out = defaultMaxOutput
		}
		maxOut = max(maxOut, out)
	}
	return maxOut
}

// use makes c the model the request goes to next, readied for it by the
// operation (retarget).
func (r *run) use(c candidate) {
	r.entry, r.prov = c.entry, c.prov
	if r.retarget != nil {
		r.retarget(r, c)
	}
}

// retargetChat readies a chat request for c: its provider's model name,
// and the completion cap (when one is sent) within its own limit.
func retargetChat(r *run, c candidate) {
	r.up.Model = c.entry.ProviderModel
	// A provider's own options go to that provider's models only; a
	// fallback model of another gets the request without them.
	r.up.ProviderOptions = r.call.Request.ProviderOptions
	if r.call.Request.CheckProviderOptions(c.entry.Provider) != nil {
		r.up.ProviderOptions = nil
	}
	if r.capped {
		mt := r.hold.MaxTokens
		if m := c.entry.MaxOutputTokens; m > 0 && mt > m {
			mt = m
		}
		v := int(mt)
		r.up.MaxTokens = &v
	}
}

// try calls fn with each model of the chain in turn (r.entry and r.prov
// are that model's, readied by the operation), until one answers or fails in a way the next model
// would not mend (see fallsBack); fn's errors are the provider's. On return
// r.entry is the model that answered, or the one tried last, and the
// caller's OnAttempts has been told of the attempts.
func (r *run) try(ctx context.Context, fn func(ctx context.Context) error) error {
	r.route.Abandoned = r.left // nil for a stream: its client's leaving cancels ctx
	ctx = providers.WithRoute(ctx, &r.route)
	if p := r.call.Principal; p != nil {
		r.route.Account = p.Account.ID // the breakers count failing accounts, not failures alone
	}
	var err error
	for i, c := range r.chain {
		if i > 0 {
			r.g.metrics.fallbacks.WithLabelValues(r.entry.ID).Inc()
			r.use(c)
		}
		// An open breaker refuses a call only when another model can take it.
		r.route.Fallback = i < len(r.chain)-1
		n, t0 := len(r.attempts), time.Now()
		model := c.entry.ID
		r.route.OnAttempt = func(a providers.Attempt) {
			r.attempts = append(r.attempts, Attempt{Model: model, Outcome: a.Outcome(), OK: a.Err == nil})
		}
		actx, span := r.startAttempt(ctx)
		err = fn(actx)
		r.upstream += time.Since(t0)
		r.endAttempt(span, err)
		if err == nil && len(r.attempts) == n { // a provider that reports no attempts
			r.attempts = append(r.attempts, Attempt{Model: model, Outcome: "200", OK: true})
		}
		if err != nil && (len(r.attempts) == n || r.attempts[len(r.attempts)-1].OK) {
			// Failed without an upstream attempt (the adapter refused the
			// request), or after the answer's headers (a body cut or
			// unreadable): the model's failure is this error.
			if len(r.attempts) > n {
				r.attempts = r.attempts[:len(r.attempts)-1]
			}
			r.attempts = append(r.attempts, Attempt{Model: model, Outcome: outcomeOf(err)})
		}
		if err == nil || ctx.Err() != nil || r.abandoned() || !fallsBack(err) || i == len(r.chain)-1 {
			break
		}
		// Passed on: the failed model's provider counts an error (the
		// request's own outcome is observed when it settles).
		r.g.latency.Observe(c.entry.Provider, time.Since(t0), true)
	}
	r.route.OnAttempt = nil
	if f := r.call.OnAttempts; f != nil && (len(r.attempts) > 1 || len(r.attempts) == 1 && !r.attempts[0].OK) {
		// Under r.mu: a client that left (Complete) has no HTTP context to tell.
		r.mu.Lock()
		if !r.gone {
			f(r.attempts)
		}
		r.mu.Unlock()
	}
	return err
}

// fallsBack reports whether a failure before any output is passed on to
// the next model: the provider's trouble (connection failures, timeouts,
// 408, 409, 429, 5xx, an open circuit) or its credentials' (401/403), not
// the request's (other 4xx, a request the format cannot express) and not
// a caller who left.
func fallsBack(err error) bool {
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Cancelled() {
		return false
	}
	return pe.Retryable() || pe.KeyRejected() || pe.Timeout || pe.CircuitOpen
}

func outcomeOf(err error) string {
	var pe *providers.Error
	var ie *chat.InvalidError
	switch {
	case errors.As(err, &pe):
		return providers.Outcome(pe)
	case errors.As(err, &ie):
		return "invalid"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	return "error"
}

// Attempt is one upstream attempt of a request: the model it was for and
// its outcome (the upstream's HTTP status, or "error", "timeout",
// "circuit_open", "cancelled", "invalid").
type Attempt struct {
	Model   string
	Outcome string
	OK      bool // the upstream answered with a 2xx
}

// Attempts are a request's upstream attempts, oldest first.
type Attempts []Attempt

// String is the X-Beaver-Attempts header:
// "openai/gpt-4o-mini:429, anthropic/claude-3-5-haiku-20241022:200".
func (as Attempts) String() string {
	var b strings.Builder
	for i, a := range as {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.Model)
		b.WriteByte(':')
		b.WriteString(a.Outcome)
	}
	return b.String()
}

// checkFallbacks logs configured fallback chains that name models the
// catalog does not have (they are skipped at request time).
func (g *Gateway) checkFallbacks() {
	if g.catalog == nil {
		return
	}
	for model, chain := range g.opts.Fallbacks {
		for _, name := range append([]string{model}, chain...) {
			if _, err := g.catalog.Resolve(name); err != nil {
				g.log.Warn("fallback chain names an unknown or inactive model; it is skipped", "chain", model, "model", name)
			}
		}
	}
}
