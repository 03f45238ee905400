package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/models"
)

// Cached prompt tokens are charged at the cached-input price and reasoning
// tokens at the reasoning price (the output price unless the catalog gives
// one), complete and streamed, on every wire format; the answer, the usage
// log, the balance and the ledger agree.
func TestTokenDetailsCharged(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		// prompt: 1003 words + 3 (OpenAI's count for its models), 1000 of
		// them cached; completion: 5 words + 4 reasoning tokens
		text := strings.Repeat("w ", 1000) + "[[cached:1000]] [[reasoning:4]] [[words:5]]"
		tests := []struct {
			model     string
			reasoning int64 // what the format reports apart
		}{
			{"openai/gpt-4o-mini", 4},
			{"deepseek/deepseek-chat", 4},
			{"anthropic/claude-3-5-haiku-20241022", 0}, // thinking is in output_tokens, not broken down
			{"google/gemini-1.5-flash", 4},
			{"xai/grok-beta", 4}, // xAI's completion_tokens leaves reasoning out; Beaver's answer has it in
		}
		for _, tt := range tests {
			for _, stream := range []bool{false, true} {
				name := fmt.Sprintf("%s stream=%v", tt.model, stream)
				before, _ := inf.balance(u.Token)
				id, usage := chatUsage(t, inf, key, tt.model, text, stream)
				num := jsonInt
				if f, ok := v(usage["prompt_tokens_details"])["cached_tokens"]; !ok || num(f) != 1000 {
					t.Fatalf("%s: usage %v", name, usage)
				}
				// OpenAI's convention on every provider: completion includes reasoning.
				if num(usage["completion_tokens"]) != 9 || num(usage["total_tokens"]) != num(usage["prompt_tokens"])+9 {
					t.Fatalf("%s: completion_tokens is not the 5 words + 4 reasoning tokens: %v", name, usage)
				}
				if tt.reasoning > 0 && num(v(usage["completion_tokens_details"])["reasoning_tokens"]) != tt.reasoning {
					t.Fatalf("%s: usage %v", name, usage)
				}
				e, _ := inf.Catalog.Resolve(tt.model)
				tok := pricing.Tokens{Prompt: num(usage["prompt_tokens"]), Completion: num(usage["completion_tokens"]), Cached: 1000, Reasoning: tt.reasoning}
				want := pricing.ChargeTokens(e.Price, tok, time.Time{})
				reqs := inf.Fake.Requests()
				prompt, err := inf.Fake.PromptTokens(reqs[len(reqs)-1])
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(tt.model, "openai/") && prompt != 1006 {
					t.Fatalf("%s: the fake counts %d prompt tokens", name, prompt)
				}
				// With a cache discount the charge is below the plain one.
				discounted := e.Price.CachedInput < e.Price.Input
				if tok.Prompt != int64(prompt) || tok.Completion != 9 || num(usage["cost_micros"]) != want.ChargedMicros ||
					discounted && want.ChargedMicros >= pricing.ChargeTokens(e.Price, pricing.Tokens{Prompt: tok.Prompt, Completion: tok.Completion}, time.Time{}).ChargedMicros {
					t.Fatalf("%s: usage %v, want charge %d", name, usage, want.ChargedMicros)
				}
				var log models.UsageLog
				inf.DB.Where("id = ?", id).Take(&log)
				if log.CachedTokens != 1000 || log.ReasoningTokens != tt.reasoning || log.ChargedMicros != want.ChargedMicros ||
					log.ProviderCostMicros != want.ProviderCostMicros {
					t.Fatalf("%s: usage log %+v, want %+v", name, log, want)
				}
				after, _ := inf.balance(u.Token)
				if before-after != want.ChargedMicros {
					t.Fatalf("%s: balance %d → %d, charge %d", name, before, after, want.ChargedMicros)
				}
				g := inf.do("GET", "/v1/generation?id="+id, key, nil).want(200)
				if g.num("data.cached_tokens") != 1000 || g.num("data.reasoning_tokens") != tt.reasoning {
					t.Fatalf("%s: generation %s", name, g.Raw)
				}
			}
		}
		inf.invariant(u.ID)
	})
}

func v(x any) map[string]any { m, _ := x.(map[string]any); return m }

// chatUsage makes a chat completion, streamed or not, and returns its
// generation id and usage (the stream's final usage chunk), numbers decoded
// as json.Number.
func chatUsage(t *testing.T, inf *inference, key, model, text string, stream bool) (string, map[string]any) {
	t.Helper()
	if !stream {
		r := inf.do("POST", "/v1/chat/completions", key, chatBody(model, text)).want(200)
		return r.str("id"), r.JSON["usage"].(map[string]any)
	}
	res, data := inf.stream(key, chatBody(model, text, "stream", true))
	var last struct {
		Usage map[string]any `json:"usage"`
	}
	dec := json.NewDecoder(strings.NewReader(data[max(len(data)-2, 0)]))
	dec.UseNumber()
	if len(data) < 2 || dec.Decode(&last) != nil || last.Usage == nil {
		t.Fatalf("%s stream: %v", model, data)
	}
	return res.Header.Get("X-Beaver-Generation-Id"), last.Usage
}

// A reasoning price above the output price is held too: the balance lowers
// max_tokens by the reasoning price, so the charge stays within the hold and
// nothing goes uncollected.
func TestReasoningPriceBoundsTheHold(t *testing.T) {
	inf := newInference(t, "sqlite", fakeupstream.Options{})
	inf.do("PATCH", "/admin/models/openai/gpt-4o-mini", inf.Admin.Token, map[string]any{"reasoning_per_million_usd": "100"}).want(200)
	e, _ := inf.Catalog.Resolve("openai/gpt-4o-mini")
	if e.Price.Reasoning <= 100*e.Price.Output {
		t.Fatalf("reasoning price %d not repriced: %+v", e.Price.Reasoning, e.Price)
	}
	u, key := inf.fundedKey("0.01", nil)
	r := inf.do("POST", "/v1/chat/completions", key, chatBody("openai/gpt-4o-mini", "think [[reasoning:40]] [[words:2]]")).want(200)
	reqs := inf.Fake.Requests()
	var sent map[string]any
	_ = json.Unmarshal(reqs[len(reqs)-1].Body, &sent)
	mt, _ := sent["max_completion_tokens"].(float64)
	// $0.01 at the marked-up reasoning price affords under 100 tokens (at the output price it would be ~16,000).
	if mt <= 0 || int64(mt)*e.Price.Reasoning > 10_000*1_000_000 {
		t.Fatalf("max_completion_tokens %v not clamped by the reasoning price %d", sent["max_completion_tokens"], e.Price.Reasoning)
	}
	want := pricing.ChargeTokens(e.Price, pricing.Tokens{Prompt: r.num("usage.prompt_tokens"), Completion: 42, Reasoning: 40}, time.Time{})
	var log models.UsageLog
	inf.DB.Where("id = ?", r.str("id")).Take(&log)
	if r.num("usage.cost_micros") != want.ChargedMicros || log.UncollectedMicros != 0 || log.ReasoningTokens != 40 {
		t.Fatalf("cost %d, want %d; log %+v", r.num("usage.cost_micros"), want.ChargedMicros, log)
	}
	inf.invariant(u.ID)
}

// The admin model API shows and sets the cached-input and reasoning base
// prices beside the others; null removes one (the model then follows its
// input or output price); /v1/models shows the marked-up prices charged.
func TestAdminModelTokenPrices(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		l := inf.do("GET", "/admin/models", inf.Admin.Token, nil).want(200)
		found := false
		for i := range l.list("data") {
			p := fmt.Sprintf("data.%d.", i)
			if l.str(p+"id") != "openai/gpt-4o" {
				continue
			}
			found = true
			if l.num(p+"base.cached_input_per_million_micros") != 1_250_000 || l.get(p+"base.cached_input_per_million_usd") != json.Number("1.25") ||
				l.num(p+"base.reasoning_per_million_micros") != 10_000_000 || l.num(p+"base.input_per_million_micros") != 2_500_000 ||
				l.num(p+"pricing.cached_input_per_million_micros") != pricing.MarkUp(1_250_000, l.num(p+"pricing.markup_permille")) {
				t.Fatalf("gpt-4o: %v", l.get(p[:len(p)-1]))
			}
		}
		if !found {
			t.Fatal("gpt-4o not listed")
		}

		path := "/admin/models/openai/gpt-4o-mini"
		r := inf.do("PATCH", path, inf.Admin.Token, map[string]any{"cached_input_per_million_usd": "0.05",
			"reasoning_per_million_usd": "2.4"}).want(200)
		pm := r.num("pricing.markup_permille")
		if r.num("base.cached_input_per_million_micros") != 50_000 || r.num("base.reasoning_per_million_micros") != 2_400_000 ||
			r.num("base.input_per_million_micros") != 150_000 || r.num("base.output_per_million_micros") != 600_000 ||
			r.num("pricing.cached_input_per_million_micros") != pricing.MarkUp(50_000, pm) ||
			r.num("pricing.reasoning_per_million_micros") != pricing.MarkUp(2_400_000, pm) {
			t.Fatalf("after PATCH: %s", r.Raw)
		}
		list := inf.do("GET", "/v1/models", "", nil).want(200)
		for i := range list.list("data") {
			p := fmt.Sprintf("data.%d.pricing.", i)
			if list.str(fmt.Sprintf("data.%d.id", i)) == "openai/gpt-4o-mini" &&
				(list.num(p+"reasoning_per_million_micros") != pricing.MarkUp(2_400_000, pm) || !strings.Contains(string(list.Raw), `"reasoning_per_million_usd"`)) {
				t.Fatalf("/v1/models: %v", list.get(fmt.Sprintf("data.%d", i)))
			}
		}
		// null: back to following the input (output) price, also when that changes.
		r = inf.do("PATCH", path, inf.Admin.Token, map[string]any{"cached_input_per_million_usd": nil, "input_per_million_usd": "0.2"}).want(200)
		if r.num("base.cached_input_per_million_micros") != 200_000 || r.num("base.reasoning_per_million_micros") != 2_400_000 {
			t.Fatalf("after null: %s", r.Raw)
		}
		r = inf.do("PATCH", path, inf.Admin.Token, map[string]any{"reasoning_per_million_usd": nil}).want(200)
		if r.num("base.reasoning_per_million_micros") != 600_000 || r.num("pricing.reasoning_per_million_micros") != r.num("pricing.output_per_million_micros") {
			t.Fatalf("after reasoning null: %s", r.Raw)
		}
		for _, bad := range []string{"cached_input_per_million_usd", "reasoning_per_million_usd"} {
			r := inf.do("PATCH", path, inf.Admin.Token, map[string]any{bad: "-1"}).wantError(400, "invalid_request")
			if r.get("error.param") != bad {
				t.Fatalf("%s: %s", bad, r.Raw)
			}
		}
	})
}
