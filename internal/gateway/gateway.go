// Package gateway runs one inference request from start to charge, without
// HTTP: rate limit → key policy → admit (hold) → provider → settle, with
// stream accounting and disconnect billing, the same for every kind of
// work (an operation, operation.go: chat completions, embeddings). The HTTP layer parses the
// request, calls the gateway and renders what it returns; a stream is
// written through a Sink.
//
// Money rules of a request, all here:
//   - Admission holds the prompt's upper bound plus n × max_tokens at the
//     current price version, and lowers max_tokens to what the balance
//     affords (billing.Engine).
//   - A failure before any output is free. A stream cut or failed midway,
//     or left by its client, pays for the prompt and the tokens received,
//     counted by the upstream when it said so, else by Beaver (count.go):
//     the prompt with the model's public tokenizer or its provider's count
//     endpoint, else at the admission bound; the text with the tokenizer,
//     else the estimator (chat.EstimateTokens).
//   - A non-streamed request whose client leaves is seen through: its
//     answer is read in the background and billed by its usage (complete.go).
//   - The answer (or the stream's final usage chunk) carries the exact
//     charge, and is produced only after the charge is committed.
package gateway

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/opsstats"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/internal/ratelimit"
)

// Gateway serves chat requests.
type Gateway struct {
	billing   *billing.Engine
	catalog   *catalog.Catalog
	providers providers.Set
	limiter   *ratelimit.Limiter
	log       *slog.Logger
	opts      Options
	latency   *Latency
	ops       *opsstats.Recorder // nil = no operations aggregates
	metrics   routeMetrics
	tracer    trace.Tracer // nil = no traces (trace.go)

	// Requests whose client left, still billed in the background
	// (complete.go); stop cancels their upstream calls at shutdown.
	background sync.WaitGroup
	stop       context.Context
	stopAll    context.CancelFunc
}

// Options are the gateway's policy switches.
type Options struct {
	// RequireVerifiedEmail refuses inference to accounts whose email is not
	// verified (BEAVER_REQUIRE_VERIFIED_EMAIL).
	RequireVerifiedEmail bool
	// Fallbacks are the configured fallback chains: by prefixed model id,
	// the models to try, in order, when it fails before any output
	// (BEAVER_FALLBACKS, BEAVER_ROUTING_FILE). A request's own models
	// replace its model's chain.
	Fallbacks map[string][]string
	// AbandonTimeout bounds how long the upstream answer of a non-streamed
	// request whose client left is still awaited, from when it left (the
	// upstream timeout, BEAVER_UPSTREAM_FIRST_BYTE_TIMEOUT); 0 = 60s.
	AbandonTimeout time.Duration
}

// Deps are what the gateway calls.
type Deps struct {
	Billing *billing.Engine
	Catalog *catalog.Catalog
	// Providers are looked up by name on every request: the registry
	// (built-ins and operator-added ones, changing at run time) or a
	// providers.Static.
	Providers providers.Set
	Limiter   *ratelimit.Limiter // nil = no rate limits
	Log       *slog.Logger
	// Registerer gets the routing metrics (fallbacks, breaker states,
	// retries); nil = not exported.
	Registerer prometheus.Registerer
	// Tracer gets the spans of each request (trace.go); nil = none.
	Tracer trace.Tracer
	// Ops gets every settled request (the operations view's aggregates);
	// nil = none.
	Ops *opsstats.Recorder
}

// New returns a gateway.
func New(d Deps, o Options) *Gateway {
	log := d.Log
	if log == nil {
		log = slog.Default()
	}
	if o.AbandonTimeout <= 0 {
		o.AbandonTimeout = 60 * time.Second
	}
	if d.Providers == nil {
		d.Providers = providers.Static{}
	}
	g := &Gateway{billing: d.Billing, catalog: d.Catalog, providers: d.Providers, limiter: d.Limiter,
		log: log, opts: o, latency: NewLatency(), tracer: d.Tracer, ops: d.Ops}
	g.stop, g.stopAll = context.WithCancel(context.Background())
	g.metrics = newRouteMetrics(g, d.Registerer)
	g.checkFallbacks()
	return g
}

// Latency is the per-provider latency of recent requests.
func (g *Gateway) Latency() *Latency { return g.latency }

// Call is one parsed chat request.
type Call struct {
	Principal *auth.Principal
	Request   *chat.Request
	Model     string // the model asked for: the request's, or the path's ("" = the first of Request.Models)
	ClientIP  string
	RequestID string
	// OnAttempts, when set, is told of the upstream attempts once they are
	// over and before the answer starts (before a stream opens; before
	// Complete or Stream returns an error), when there was more than one or
	// the last failed: the HTTP layer's X-Beaver-Attempts header.
	OnAttempts func(Attempts)

	// Durable jobs (a batch line, a background response) run a call that a
	// worker crash may interrupt and a retry run again; these make the retry
	// charge the answer exactly once (see Durable below).
	Durable Durable
}

// Durable lets a job that is retried after a crash charge its answer
// exactly once. The job names its generation (the usage log's key, so the
// retry can see whether the charge committed), keeps the answer before it
// is charged (Record), and, when a retry finds a kept answer without its
// charge, has it charged without asking the provider again (Replay).
// Non-streamed calls only (Complete).
type Durable struct {
	// GenerationID, when set, is the generation's id instead of a new one.
	GenerationID string
	// Record is told the answer and the model that gave it after the
	// provider answered and before the charge. An error from it is
	// returned after the answer is charged all the same: the provider
	// billed it.
	Record func(ctx context.Context, resp *chat.Response, model string) error
	// Replay, when set, is the answer: no provider is called and it is
	// charged as if it had just come from Model, which must be the model
	// Record was told.
	Replay *chat.Response
}

// run is a call that was admitted: its hold, and what settles it.
type run struct {
	g      *Gateway
	call   Call
	chain  []candidate // the models that may answer, in order (route.go)
	entry  *catalog.Entry
	prov   providers.Provider
	hold   *billing.Hold
	up     chat.Request // what goes upstream
	capped bool         // a max_tokens cap is sent upstream
	// prompt is billed for the prompt when neither the upstream nor Beaver
	// counted it: the bound held at admission (chat), the estimate
	// (embeddings). countable: the provider may count it (chat, count.go).
	prompt    int64
	countable bool
	retarget  func(r *run, c candidate) // the operation's (see operation.retarget)
	start     time.Time
	genID     string
	created   int64
	finished  bool
	attempts  Attempts
	route     providers.Route // one retry budget for every model of the chain

	// Traces (trace.go): the operation's generation prefix, the request's
	// span, the attempt that answered (open until settled) and the model
	// the upstream said answered.
	prefix        string
	parent        trace.SpanContext
	attempt       trace.Span
	upstreamModel string
	// For the operations aggregates (ops.go): when admission began, the
	// time spent waiting on the upstream (try), when a stream opened, and
	// the error a failed request ends with.
	began    time.Time
	upstream time.Duration
	opened   time.Time
	failErr  error

	// A non-streamed request's client may leave while try runs on another
	// goroutine (complete.go): from then on no attempt or fallback starts
	// and the caller's OnAttempts is not called (its HTTP context is gone).
	mu   sync.Mutex
	left chan struct{} // closed when the client left; nil = cannot happen
	gone bool          // left is closed (mu)
}

// admit resolves the model and its fallbacks, applies the key's policy and
// holds the request's maximum cost: at the price of the chain's most
// expensive model in each component, so that the hold covers whichever
// answers. Errors are *apierr.Error.
func (g *Gateway) admit(ctx context.Context, call Call) (*run, error) {
	req := call.Request
	chain, err := g.chain(call.Principal, call.Model, req.Models, call.ClientIP)
	if err != nil {
		return nil, err
	}
	if chain, err = chatModels(call, chain); err != nil { // embedding models serve embeddings only (embed.go)
		return nil, err
	}
	// A provider's own options (Perplexity's preset...) for another's
	// model: refused before anything is held. Fallback models of other
	// providers are sent the request without them.
	if ie := req.CheckProviderOptions(chain[0].entry.Provider); ie != nil {
		return nil, InvalidRequest(ie)
	}
	return g.start(ctx, call, chain, chatOperation(req))
}

// chatOperation is a chat request's operation. It holds for the most
// tokens the prompt can be (billed at the upstream's count, or Beaver's,
// count.go, when it never reports one) and n × max_tokens, the model's cap
// when the request sets none, at the chain's price (chainPrice). The cap
// is sent upstream when the caller set one or when the balance lowered it;
// otherwise the model's own default applies (and is held).
func chatOperation(req *chat.Request) operation {
	prompt := int64(req.PromptTokenBound())
	return operation{prefix: ids.ChatPrefix, prompt: prompt, countable: true,
		bound: func(chain []candidate, at time.Time) bound {
			var asked int64
			if req.MaxTokens != nil {
				asked = int64(*req.MaxTokens)
			}
			return bound{Price: chainPrice(chain, at, prompt, chat.MaxServerToolCalls), Prompt: prompt, Output: asked, Max: chainMaxOutput(chain),
				Choices: int64(req.ChoiceCount())}
		},
		ready: func(r *run) {
			r.up = *req
			r.up.Models = nil
			r.capped = req.MaxTokens != nil || r.hold.Clamped
		},
		retarget: retargetChat,
	}
}

// newGenerationID is a durable job's own generation id, or a new one
// under prefix.
func newGenerationID(prefix string, d Durable) string {
	if d.GenerationID != "" {
		return d.GenerationID
	}
	return ids.Generation(prefix)
}

// KeyPolicy applies an API key's allowed models and IPs to a request for
// model from ip (a session has none): 403 forbidden outside them. Other
// surfaces than chat (realtime) apply it through this.
func KeyPolicy(p *auth.Principal, model, ip string) error { return checkKeyPolicy(p, model, ip) }

// checkKeyPolicy applies an API key's allowed models and IPs.
func checkKeyPolicy(p *auth.Principal, model, ip string) error {
	if p.Key == nil {
		return nil
	}
	if allowed := auth.DecodeList(p.Key.AllowedModels); allowed != nil && !slices.Contains(allowed, model) {
		return apierr.Forbidden("this API key may not use model %s", model)
	}
	if !auth.IPAllowed(auth.DecodeList(p.Key.AllowedIPs), ip) {
		return apierr.Forbidden("this API key may not be used from %s", ip)
	}
	return nil
}

func (r *run) outcome() billing.Outcome {
	return billing.Outcome{GenerationID: r.genID, RequestID: r.call.RequestID, Model: r.entry.ID, Provider: r.entry.Provider,
		LatencyMS: time.Since(r.start).Milliseconds()}
}

// settle commits the request's charge; it goes on when ctx is cancelled.
func (r *run) settle(ctx context.Context, o billing.Outcome, u *chat.Usage) (*billing.Settlement, error) {
	if u != nil {
		o.PromptTokens, o.CompletionTokens = int64(u.PromptTokens), int64(u.CompletionTokens)
		if d := u.PromptTokensDetails; d != nil {
			o.CachedTokens, o.CacheWriteTokens, o.CacheWrite1hTokens = int64(d.CachedTokens), int64(d.CacheWriteTokens), int64(d.CacheWrite1hTokens)
		}
		for tool, n := range u.ServerToolUse {
			if o.ToolCalls == nil {
				o.ToolCalls = make(map[string]int64, len(u.ServerToolUse))
			}
			o.ToolCalls[tool] = int64(n)
		}
		if u.CompletionTokensDetails != nil {
			o.ReasoningTokens = int64(u.CompletionTokensDetails.ReasoningTokens)
		}
	}
	r.finished = true
	ctx, span := r.settleSpan(ctx)
	st, err := r.finish(ctx, o)
	if st != nil {
		span.SetAttributes(attrCostMicros.Int64(st.ChargedMicros))
	}
	endWith(span, err)
	r.settled(o, st, err)
	return st, err
}

// finish reprices the hold to the model that answered and commits the
// charge.
func (r *run) finish(ctx context.Context, o billing.Outcome) (*billing.Settlement, error) {
	// Charged at the price of the model that answered (or was tried last),
	// in the version it was resolved at; never above the hold's.
	if err := r.hold.Reprice(r.entry.Price, r.entry.Version); err != nil {
		r.g.log.Error("reprice hold", "request_id", r.call.RequestID, "model", r.entry.ID, "err", err)
	}
	settling := time.Now()
	st, err := r.g.billing.Finish(ctx, r.hold, o)
	r.observe(o, st, settling)
	return st, err
}

// failed settles a request that produced no output (nothing is charged)
// and returns the error to answer with.
//
// A request cut off while the upstream was working (cut: its client left,
// or Beaver stopped waiting) is the exception: like a disconnect
// mid-stream, it pays for the prompt, which the upstream never reported
// (Beaver counts it, see countPrompt), and the zero tokens it got.
func (r *run) failed(ctx context.Context, err error, cut bool) error {
	o := r.outcome()
	o.Error = err.Error()
	o.Cancelled = cut || r.abandoned()
	r.failErr = err
	var u *chat.Usage
	if cut {
		o.Error = "client disconnected"
		o.UsageEstimated = true
		u = &chat.Usage{PromptTokens: int(r.countPrompt(ctx))}
	}
	if _, ferr := r.settle(ctx, o, u); ferr != nil {
		r.g.log.Error("settle failed request", "request_id", r.call.RequestID, "err", ferr)
	}
	r.g.latency.Observe(r.entry.Provider, time.Since(r.start), true)
	return UpstreamError(err)
}

// withCost adds the charge to usage as the contract shows it.
func withCost(u *chat.Usage, st *billing.Settlement) {
	cost := money.USD(st.ChargedMicros)
	micros := st.ChargedMicros
	u.Cost, u.CostMicros, u.CostDetails = &cost, &micros, st.Details
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
}
