package gateway

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/internal/providers"
)

// The gateway's pipeline is one for every kind of work: admit (hold the
// most the request can cost) → route (the models that may answer, tried in
// turn: try) → provider → settle (charge what the upstream reported, or
// Beaver's count). What varies per kind of work (a chat completion, an
// embeddings call, an image request) is an operation: what admission
// holds, how its generations are named, what is billed for a prompt nobody
// counted; and, in its entry point (Complete, Stream, Embed, Images), the
// provider call of one attempt and the usage it reports. A new kind of
// work costs one operation and one entry point, not another copy of the
// run.

// operation is what admission needs of a kind of work.
type operation struct {
	// prefix names its generations (ids.ChatPrefix, ids.EmbeddingPrefix,
	// ids.ImagePrefix).
	prefix string
	// bound is what is held for a chain admitted at at: a true upper bound
	// of what any of its models can charge.
	bound func(chain []candidate, at time.Time) bound
	// prompt is billed for the prompt when neither the upstream nor
	// Beaver counted it; countable says the provider may count it
	// (count.go: chat requests only).
	prompt    int64
	countable bool
	// ready, when set, readies the run once its bound is held (chat: the
	// request sent upstream, capped when the balance lowered its output).
	ready func(r *run)
	// retarget, when set, readies the request for the model an attempt
	// goes to (chat: its provider model name, options and output cap).
	retarget func(r *run, c candidate)
}

// bound is what an operation holds: the price (pricing.UpperBoundOf the
// chain), the prompt's most tokens, the output asked for (0 = the model's
// cap) and that cap, and the number of choices (0 = one).
type bound struct {
	Price               pricing.Price
	Prompt, Output, Max int64
	Choices             int64
}

// start admits call's operation on chain: its bound is held (the key's
// policy was applied by chain), and the run that settles it is returned.
// Errors are *apierr.Error.
func (g *Gateway) start(ctx context.Context, call Call, chain []candidate, op operation) (*run, error) {
	p := call.Principal
	at := time.Now()
	b := op.bound(chain, at)
	_, monthly := p.Account.Limits()
	actx, span := g.span(ctx, "admit")
	hold, err := g.billing.Admit(actx, billing.AdmitRequest{AccountID: p.Account.ID, Key: p.Key,
		Price: b.Price, PriceVersion: chain[0].entry.Version, PromptTokens: b.Prompt, MaxTokens: b.Output,
		ModelMax: b.Max, MonthlyLimit: monthly, Choices: b.Choices, At: at})
	endWith(span, err)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	r := &run{g: g, call: call, chain: chain, hold: hold, prompt: op.prompt, countable: op.countable,
		retarget: op.retarget, start: now, began: at, genID: newGenerationID(op.prefix, call.Durable), created: now.Unix(),
		prefix: op.prefix, parent: trace.SpanContextFromContext(ctx)}
	if op.ready != nil {
		op.ready(r)
	}
	r.use(chain[0])
	return r, nil
}

// alone admits the operation opFor makes for the model call asks for,
// without fallbacks (a kind of work whose models are not interchangeable:
// images; embeddings, whose vectors live in their model's space). opFor
// refuses a model not of its kind, or a request it cannot bound, before
// anything is held; serves is the provider's interface to the work, named
// work in the refusal of a provider without it.
func alone[S any](ctx context.Context, g *Gateway, call Call, work string, opFor func(*catalog.Entry) (operation, error),
	serves func(providers.Provider) (S, bool)) (*run, S, error) {
	var none S
	chain, err := g.chain(call.Principal, call.Model, nil, call.ClientIP)
	if err != nil {
		return nil, none, err
	}
	model := chain[0]
	op, err := opFor(model.entry)
	if err != nil {
		return nil, none, err
	}
	s, ok := serves(model.prov)
	if !ok {
		return nil, none, apierr.Invalid("model %s: provider %s serves no %s", model.entry.ID, model.entry.Provider, work).WithParam("model")
	}
	r, err := g.start(ctx, call, chain[:1], op)
	if err != nil {
		return nil, none, err
	}
	return r, s, nil
}

// attempt is r's answer from fn, the provider call of one attempt given
// the provider's name of the model it goes to, tried on r's chain (try);
// a failure is settled (failed) and its error returned.
func attempt[T any](ctx context.Context, r *run, fn func(ctx context.Context, providerModel string) (T, error)) (T, error) {
	var out T
	err := r.try(ctx, func(ctx context.Context) (err error) {
		out, err = fn(ctx, r.entry.ProviderModel)
		return err
	})
	if err != nil {
		var none T
		return none, r.failed(ctx, err, ctx.Err() != nil)
	}
	return out, nil
}
