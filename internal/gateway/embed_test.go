package gateway_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/embedding"
	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/internal/providers"
)

// fakeEmbedder is a provider with an embeddings endpoint.
type fakeEmbedder struct {
	fakeProvider
	embed func(*embedding.Request) (*embedding.Response, error)
	sent  *embedding.Request
}

func (p *fakeEmbedder) Embed(_ context.Context, req *embedding.Request) (*embedding.Response, error) {
	p.sent = req
	return p.embed(req)
}

func vectorsFor(req *embedding.Request, usage *embedding.Usage) *embedding.Response {
	r := &embedding.Response{Object: embedding.ObjectList, Model: req.Model, Usage: usage}
	for i := 0; i < req.Input.Len(); i++ {
		r.Data = append(r.Data, embedding.Vector{Object: embedding.ObjectEmbedding, Index: i, Embedding: json.RawMessage(`[0.5]`)})
	}
	return r
}

// Embed charges the upstream's prompt tokens at the model's input price,
// or Beaver's estimate (marked usage_estimated) when the upstream reports
// none, and sends the provider's model name.
func TestEmbedChargesPromptTokens(t *testing.T) {
	f := newRouteFixture(t, 1_000_000, gateway.Options{})
	up := &fakeEmbedder{}
	eng := billing.NewEngine(f.d, quiet, billing.EngineOptions{})
	t.Cleanup(eng.Close)
	f.gw = gateway.New(gateway.Deps{Billing: eng, Catalog: f.cat, Providers: providers.Static{"openai": up}, Log: quiet},
		gateway.Options{})
	const id = "openai/text-embedding-3-large"
	e, _ := f.cat.Resolve(id)
	for _, reported := range []*embedding.Usage{{PromptTokens: 1234, TotalTokens: 1234}, nil} {
		up.embed = func(req *embedding.Request) (*embedding.Response, error) { return vectorsFor(req, reported), nil }
		req := &embedding.Request{Model: id, Input: embedding.Input{Texts: []string{"hello there", "general"}}}
		before := f.balance()
		done, err := f.gw.Embed(context.Background(), gateway.EmbedCall{Principal: &auth.Principal{Account: f.account}, Request: req,
			ClientIP: "127.0.0.1", RequestID: "req-e"})
		if err != nil {
			t.Fatal(err)
		}
		tokens := int64(req.EstimatePromptTokens())
		if reported != nil {
			tokens = 1234
		}
		want := pricing.ChargeTokens(e.Price, pricing.Tokens{Prompt: tokens, Completion: 0}, time.Time{})
		log := f.lastLog()
		if done.Settlement.ChargedMicros != want.ChargedMicros || *done.Response.Usage.CostMicros != want.ChargedMicros ||
			before-f.balance() != want.ChargedMicros || log.PromptTokens != tokens || log.UsageEstimated != (reported == nil) ||
			log.Model != id || done.Response.Model != id || up.sent.Model != "text-embedding-3-large" || len(done.Response.Data) != 2 {
			t.Fatalf("reported %+v: settlement %+v, usage %+v, log %+v", reported, done.Settlement, done.Response.Usage, log)
		}
	}
	// A chat model is refused before anything is held.
	_, err := f.gw.Embed(context.Background(), gateway.EmbedCall{Principal: &auth.Principal{Account: f.account},
		Request: &embedding.Request{Model: "openai/gpt-4o", Input: embedding.Input{Texts: []string{"x"}}}})
	if ae, ok := apierr.As(err); !ok || ae.Status != 400 || ae.Param != "model" {
		t.Fatalf("chat model: %v", err)
	}
}

// A configured fallback that is an embedding model is left out of a chat
// request's chain.
func TestChatChainLeavesOutEmbeddingModels(t *testing.T) {
	f := newRouteFixture(t, 1_000_000, gateway.Options{Fallbacks: map[string][]string{
		model: {"openai/text-embedding-3-small", haiku}}}, "openai", "anthropic")
	calls := 0
	f.ups["openai"].complete = func(context.Context, *chat.Request) (*chat.Response, error) {
		calls++
		return nil, &providers.Error{Status: 503}
	}
	f.ups["anthropic"].complete = answer(10, 5)
	resp, err := f.gw.Complete(context.Background(), f.request(body(model)))
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 || resp.Response.Model != haiku {
		t.Fatalf("openai called %d times, answer from %s", calls, resp.Response.Model)
	}
}
