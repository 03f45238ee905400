package gateway_test

import (
	"context"
	"errors"
	"testing"

	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/embedding"
	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/models"
)

// A durable embeddings call, as a durable chat call: its own generation id,
// the answer recorded before the charge, a replay charged the same without
// the provider, and a failing record charged all the same.
func TestDurableEmbedRecordsThenReplaysWithoutTheProvider(t *testing.T) {
	f := newRouteFixture(t, 1_000_000, gateway.Options{})
	up := &fakeEmbedder{}
	eng := billing.NewEngine(f.d, quiet, billing.EngineOptions{})
	t.Cleanup(eng.Close)
	f.gw = gateway.New(gateway.Deps{Billing: eng, Catalog: f.cat, Providers: providers.Static{"openai": up}, Log: quiet},
		gateway.Options{})
	const id = "openai/text-embedding-3-large"
	calls := 0
	up.embed = func(req *embedding.Request) (*embedding.Response, error) {
		calls++
		return vectorsFor(req, &embedding.Usage{PromptTokens: 321, TotalTokens: 321}), nil
	}
	charged := func(gen string) bool {
		var n int64
		if err := f.d.Model(&models.UsageLog{}).Where("id = ?", gen).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	call := func(d gateway.EmbedDurable) gateway.EmbedCall {
		return gateway.EmbedCall{Principal: &auth.Principal{Account: f.account}, ClientIP: "127.0.0.1", RequestID: "req-d",
			Request: &embedding.Request{Model: id, Input: embedding.Input{Texts: []string{"hello"}}}, Durable: d}
	}
	var recorded *embedding.Response
	var recordedModel string
	before := f.balance()
	done, err := f.gw.Embed(context.Background(), call(gateway.EmbedDurable{GenerationID: "embd-job-1",
		Record: func(_ context.Context, resp *embedding.Response, model string) error {
			if charged("embd-job-1") {
				t.Error("the answer was recorded after its charge")
			}
			c := *resp
			recorded, recordedModel = &c, model
			return nil
		}}))
	if err != nil {
		t.Fatal(err)
	}
	want := before - f.balance()
	if done.Response.ID != "embd-job-1" || !charged("embd-job-1") || want <= 0 || done.Settlement.ChargedMicros != want {
		t.Fatalf("id %q, charged %v, drop %d, settlement %d", done.Response.ID, charged("embd-job-1"), want, done.Settlement.ChargedMicros)
	}
	if recorded == nil || recordedModel != id {
		t.Fatalf("recorded %v from %q", recorded, recordedModel)
	}

	again, err := f.gw.Embed(context.Background(), call(gateway.EmbedDurable{GenerationID: "embd-job-2", Replay: recorded}))
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 || again.Settlement.ChargedMicros != want || again.Response.ID != "embd-job-2" || len(again.Response.Data) != 1 {
		t.Fatalf("provider calls %d, replay charged %d (want %d), id %q", calls, again.Settlement.ChargedMicros, want, again.Response.ID)
	}

	got, err := f.gw.Embed(context.Background(), call(gateway.EmbedDurable{GenerationID: "embd-job-3",
		Record: func(context.Context, *embedding.Response, string) error { return errors.New("disk full") }}))
	if err == nil || got == nil || !charged("embd-job-3") {
		t.Fatalf("failing record: answer %v, err %v, charged %v", got, err, charged("embd-job-3"))
	}
}
