package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/embedding"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/providers"
)

// Embeddings: one POST /v1/embeddings request, the way Complete runs a chat
// request (the HTTP layer calls Check first): key policy → admit (hold) →
// provider → settle, through the same run. Models are of two kinds:
// embedding models (capability "embeddings") serve embeddings only, chat
// models everything else; each refuses the other's requests with 400.
//
// Money rules, beside the chat ones:
//   - The hold is the prompt's upper bound (embedding.PromptTokenBound) at
//     the model's price, and one completion token at its output price
//     (zero for embedding models): nothing is completed.
//   - The charge is the upstream's reported prompt tokens; where it
//     reports none (Gemini), Beaver's estimate (EstimatePromptTokens), and
//     the usage log is marked usage_estimated.
//   - An embedding model has no fallbacks: another model's vectors live in
//     another space.

// EmbedCall is one parsed embeddings request.
type EmbedCall struct {
	Principal  *auth.Principal
	Request    *embedding.Request
	ClientIP   string
	RequestID  string
	OnAttempts func(Attempts) // as Call.OnAttempts

	// Durable is a durable job's (a batch line's) hooks, as Call.Durable.
	Durable EmbedDurable
}

// EmbedDurable is Durable for an embeddings call: the job names its
// generation, keeps the answer before it is charged (Record), and a retry
// that finds a kept answer without its charge has it charged without asking
// the provider again (Replay).
type EmbedDurable struct {
	// GenerationID, when set, is the generation's id instead of a new one.
	GenerationID string
	// Record is told the answer and the model that gave it after the
	// provider answered and before the charge. An error from it is
	// returned after the answer is charged all the same.
	Record func(ctx context.Context, resp *embedding.Response, model string) error
	// Replay, when set, is the answer: no provider is called and it is
	// charged as if it had just come from the request's model.
	Replay *embedding.Response
}

// Embeddings is a charged embeddings answer.
type Embeddings struct {
	Response   *embedding.Response // id, model and usage (with cost) set by Beaver
	Settlement *billing.Settlement
}

// Embed runs an embeddings call. The answer is returned only after its
// charge is committed. Errors are *apierr.Error (or context.Canceled).
func (g *Gateway) Embed(ctx context.Context, call EmbedCall) (*Embeddings, error) {
	r, emb, err := g.admitEmbedding(ctx, call)
	if err != nil {
		return nil, err
	}
	var resp *embedding.Response
	var recordErr error
	if d := call.Durable; d.Replay != nil {
		c := *d.Replay
		if d.Replay.Usage != nil {
			u := *d.Replay.Usage
			c.Usage = &u
		}
		resp = &c
	} else {
		err = r.try(ctx, func(ctx context.Context) (err error) {
			up := *call.Request
			up.Model = r.entry.ProviderModel
			resp, err = emb.Embed(ctx, &up)
			return err
		})
		if err != nil {
			return nil, r.failed(ctx, err, ctx.Err() != nil)
		}
		if d.Record != nil {
			if recordErr = d.Record(ctx, resp, r.entry.ID); recordErr != nil {
				recordErr = fmt.Errorf("record the answer of %s: %w", r.genID, recordErr)
			}
		}
	}
	o := r.outcome()
	u := &chat.Usage{PromptTokens: int(r.prompt)}
	if resp.Usage != nil {
		u.PromptTokens = resp.Usage.PromptTokens
	} else {
		o.UsageEstimated = true // the upstream reported no usage: Beaver's estimate
	}
	st, err := r.settle(ctx, o, u)
	if err != nil {
		return nil, err
	}
	g.latency.Observe(r.entry.Provider, time.Since(r.start), false)
	withCost(u, st)
	resp.ID, resp.Object, resp.Model = r.genID, embedding.ObjectList, r.entry.ID
	resp.Usage = &embedding.Usage{PromptTokens: u.PromptTokens, TotalTokens: u.TotalTokens, Cost: u.Cost, CostMicros: u.CostMicros}
	return &Embeddings{Response: resp, Settlement: st}, recordErr
}

// admitEmbedding resolves the model as a chat request's (key policy
// included), checks that it is an embedding model its provider can serve,
// and holds the request's maximum cost (embeddingOperation).
func (g *Gateway) admitEmbedding(ctx context.Context, call EmbedCall) (*run, providers.Embedder, error) {
	req := call.Request
	chain, err := g.chain(call.Principal, req.Model, nil, call.ClientIP)
	if err != nil {
		return nil, nil, err
	}
	first := chain[0] // no fallbacks (see above)
	if first.entry.Images() {
		return nil, nil, notImages(first.entry).WithParam("model")
	}
	if !first.entry.Embeddings() {
		return nil, nil, apierr.Invalid("model %s is a chat model; embeddings need an embedding model", first.entry.ID).WithParam("model")
	}
	emb, ok := providers.EmbedderOf(first.prov)
	if !ok {
		return nil, nil, apierr.Invalid("model %s: provider %s serves no embeddings", first.entry.ID, first.entry.Provider).WithParam("model")
	}
	c := Call{Principal: call.Principal, Model: req.Model, ClientIP: call.ClientIP, RequestID: call.RequestID,
		OnAttempts: call.OnAttempts, Durable: Durable{GenerationID: call.Durable.GenerationID}}
	r, err := g.start(ctx, c, chain[:1], embeddingOperation(req))
	if err != nil {
		return nil, nil, err
	}
	return r, emb, nil
}

// embeddingOperation is an embeddings request's operation: it holds the
// prompt's upper bound at the model's price and one completion token at
// its output price; a prompt the upstream does not count is billed at
// Beaver's estimate.
func embeddingOperation(req *embedding.Request) operation {
	prompt := int64(req.PromptTokenBound())
	return operation{prefix: ids.EmbeddingPrefix, prompt: int64(req.EstimatePromptTokens()),
		bound: func(chain []candidate, at time.Time) bound {
			return bound{Price: chainPrice(chain, at, prompt, 0), Prompt: prompt, Output: 1, Max: 1}
		}}
}

// chatModels keeps chat requests off embedding, realtime and image models:
// the model asked for must be a chat model (else 400, param model, or
// models when it is the first of them), and so must every model the
// request lists (400, param models); configured fallbacks that are
// embedding, realtime or image models are left out.
func chatModels(call Call, chain []candidate) ([]candidate, error) {
	refuse := func(e *catalog.Entry, param string) error {
		switch {
		case e.Realtime():
			return apierr.Invalid("model %s is a realtime model; use GET /v1/realtime (a WebSocket)", e.ID).WithParam(param)
		case e.Images():
			return notImages(e).WithParam(param)
		}
		return apierr.Invalid("model %s is an embedding model; use POST /v1/embeddings", e.ID).WithParam(param)
	}
	notChat := func(e *catalog.Entry) bool { return e.Embeddings() || e.Realtime() || e.Images() }
	if e := chain[0].entry; notChat(e) {
		if call.Model == "" {
			return nil, refuse(e, "models")
		}
		return nil, refuse(e, "model")
	}
	out := chain[:1]
	for _, c := range chain[1:] {
		switch {
		case !notChat(c.entry):
			out = append(out, c)
		case call.Request.Models != nil:
			return nil, refuse(c.entry, "models")
		}
	}
	return out, nil
}
