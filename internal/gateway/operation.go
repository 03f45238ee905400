package gateway

import (
	"context"
	"time"

	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/pricing"
)

// The gateway's pipeline is one for every kind of work: admit (hold the
// most the request can cost) → route (the models that may answer, tried in
// turn: try) → provider → settle (charge what the upstream reported, or
// Beaver's count). What varies per kind of work (a chat completion, an
// embeddings call; images next) is an operation: what admission holds, how
// its generations are named, what is billed for a prompt nobody counted;
// and, in its entry point (Complete, Stream, Embed), the provider call of
// one attempt and the usage it reports. A new kind of work costs one
// operation and one entry point, not another copy of the run.

// operation is what admission needs of a kind of work.
type operation struct {
	// prefix names its generations (ids.ChatPrefix, ids.EmbeddingPrefix).
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
	hold, err := g.billing.Admit(ctx, billing.AdmitRequest{AccountID: p.Account.ID, Key: p.Key,
		Price: b.Price, PriceVersion: chain[0].entry.Version, PromptTokens: b.Prompt, MaxTokens: b.Output,
		ModelMax: b.Max, MonthlyLimit: monthly, Choices: b.Choices, At: at})
	if err != nil {
		return nil, err
	}
	now := time.Now()
	r := &run{g: g, call: call, chain: chain, hold: hold, prompt: op.prompt, countable: op.countable,
		retarget: op.retarget, start: now, genID: newGenerationID(op.prefix, call.Durable), created: now.Unix()}
	if op.ready != nil {
		op.ready(r)
	}
	r.use(chain[0])
	return r, nil
}
