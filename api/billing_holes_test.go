package api_test

import (
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/models"
)

// Regression tests for the billing holes of the outside review (issue 10):
// each failed before its fix.

// Fields Beaver cannot price are refused, naming the field; nothing is
// held, charged or sent upstream.
func TestUnpricedFieldsAreRefused(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("1", nil)
		before, _ := inf.balance(u.Token)
		for field, value := range map[string]any{
			"functions":          []any{map[string]any{"name": "f", "parameters": map[string]any{"type": "object"}}},
			"function_call":      "auto",
			"prediction":         map[string]any{"type": "content", "content": strings.Repeat("x ", 1000)},
			"audio":              map[string]any{"voice": "alloy", "format": "wav"},
			"modalities":         []string{"text", "audio"},
			"web_search_options": map[string]any{},
			"service_tier":       "priority",
			"n":                  0,
			"made_up_field":      true,
		} {
			r := inf.do("POST", "/v1/chat/completions", key, chatBody("openai/gpt-4o-mini", "hi", field, value)).wantError(400, "invalid_request")
			if r.get("error.param") != field || !strings.Contains(r.str("error.message"), field) {
				t.Errorf("%s: the error does not name the field: %s", field, r.Raw)
			}
		}
		if n := len(inf.Fake.Requests()); n != 0 {
			t.Fatalf("%d refused requests reached the upstream", n)
		}
		if after, _ := inf.balance(u.Token); after != before {
			t.Fatalf("refused requests cost %d", before-after)
		}
		// Billing-neutral fields still pass through.
		inf.do("POST", "/v1/chat/completions", key, chatBody("openai/gpt-4o-mini", "hi", "seed", 7, "logit_bias", map[string]any{"1": -100})).want(200)
		var sent map[string]any
		reqs := inf.Fake.Requests()
		_ = json.Unmarshal(reqs[len(reqs)-1].Body, &sent)
		if sent["seed"] == nil || sent["logit_bias"] == nil {
			t.Fatalf("pass-through fields not forwarded: %s", reqs[len(reqs)-1].Body)
		}
		inf.invariant(u.ID)
	})
}

// n multiplies the completion hold: on a tight balance each of n choices
// gets a third of the cap one choice would get.
func TestChoicesMultiplyTheHold(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		sentCap := func(n int) float64 {
			_, key := inf.fundedKey("0.001", nil)
			body := chatBody("openai/gpt-4o", "hi [[words:3]]")
			if n > 1 {
				body["n"] = n
			}
			inf.do("POST", "/v1/chat/completions", key, body).want(200)
			reqs := inf.Fake.Requests()
			var sent map[string]any
			_ = json.Unmarshal(reqs[len(reqs)-1].Body, &sent)
			if n > 1 && sent["n"] != float64(n) {
				t.Fatalf("n not forwarded: %s", reqs[len(reqs)-1].Body)
			}
			mt, _ := sent["max_completion_tokens"].(float64)
			if mt == 0 {
				mt, _ = sent["max_tokens"].(float64)
			}
			return mt
		}
		one, three := sentCap(1), sentCap(3)
		if one < 30 || three*3 > one+3 || three < one/3-3 {
			t.Fatalf("cap with n=1 %v, with n=3 %v: want about a third", one, three)
		}
		// Formats with one completion per request refuse n > 1.
		_, key := inf.fundedKey("1", nil)
		inf.do("POST", "/v1/chat/completions", key, chatBody("anthropic/claude-3-5-haiku-20241022", "hi", "n", 2)).wantError(400, "invalid_request")
	})
}

// The review's prompt: 30,000 × "a " (which real tokenizers, and the fake,
// count as 30,000 tokens) with max_tokens 16. The old bytes/3 estimate held
// for 20,000 and left the difference uncollected; the hold now bounds it.
func TestAdmissionHoldBoundsThePrompt(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		const model = "openai/gpt-4o"
		text := strings.Repeat("a ", 30000)
		// A balance the old estimate would have admitted but that cannot pay
		// for the real prompt: refused, nothing charged.
		short := inf.expectedCost(model, 25_000, 16)
		u, key := inf.fundedKey(money.Format(short), nil)
		inf.do("POST", "/v1/chat/completions", key, chatBody(model, text, "max_tokens", 16)).wantError(402, "insufficient_balance")
		if after, _ := inf.balance(u.Token); after != short {
			t.Fatalf("refused request cost %d", short-after)
		}
		// Enough for the bound: answered, charged the reported count, nothing uncollected.
		u2, key2 := inf.fundedKey(money.Format(inf.expectedCost(model, 61_000, 16)), nil)
		r := inf.do("POST", "/v1/chat/completions", key2, chatBody(model, text+" [[words:3]]", "max_tokens", 16)).want(200)
		var log models.UsageLog
		if err := inf.DB.Where("account_id = ?", u2.ID).Take(&log).Error; err != nil {
			t.Fatal(err)
		}
		// The fake counts as OpenAI: one token per "a " and the framing.
		reqs := inf.Fake.Requests()
		n, err := inf.Fake.PromptTokens(reqs[len(reqs)-1])
		if err != nil {
			t.Fatal(err)
		}
		real := int64(n)
		if log.UncollectedMicros != 0 || log.PromptTokens != real || real < 30_000 {
			t.Fatalf("usage log: prompt %d, uncollected %d; want %d and 0", log.PromptTokens, log.UncollectedMicros, real)
		}
		if got := r.num("usage.cost_micros"); got != inf.expectedCost(model, real, 3) || got != log.ChargedMicros {
			t.Fatalf("charged %d, usage log %d, want %d", got, log.ChargedMicros, inf.expectedCost(model, real, 3))
		}
		inf.invariant(u2.ID)
	})
}

// A cut or failed Anthropic or Gemini stream bills the prompt count the
// upstream already sent (message_start, the first usageMetadata), not
// Beaver's estimate.
func TestCutStreamsBillTheUpstreamPromptCount(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		// "go" + the directive are 2 words: the fake reports 2 + 3 prompt
		// tokens; Beaver's own estimate of the text would be higher.
		for _, model := range []string{"anthropic/claude-3-5-haiku-20241022", "google/gemini-1.5-flash"} {
			for _, directive := range []string{"[[cut:3]]", "[[midstream-error:3]]"} {
				before, _ := inf.balance(u.Token)
				_, data := inf.stream(key, chatBody(model, "go "+directive))
				chunks, done := parseChunks(t, data)
				if !done || len(chunks) < 2 {
					t.Fatalf("%s %s: %v", model, directive, data)
				}
				usage := chunks[len(chunks)-1].Usage
				if usage == nil || usage.PromptTokens != 5 || usage.CompletionTokens < 3 {
					t.Fatalf("%s %s: usage %s, want the upstream's 5 prompt tokens", model, directive, data[len(data)-2])
				}
				if after, _ := inf.balance(u.Token); before-after != usage.CostMicros || usage.CostMicros != inf.expectedCost(model, 5, usage.CompletionTokens) {
					t.Fatalf("%s %s: charged %d, shown %d", model, directive, before-after, usage.CostMicros)
				}
			}
		}
		inf.invariant(u.ID)
	})
}

// Malformed bodies count against the key's RPM: the limit is applied before
// the body is parsed.
func TestMalformedBodiesAreRateLimited(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		_, key := inf.fundedKey("1", map[string]any{"name": "k", "rpm_limit": 3})
		for i := 0; i < 3; i++ {
			inf.do("POST", "/v1/chat/completions", key, `{"model": "openai/gpt-4o-mini", "messages": [`).wantError(400, "invalid_request")
		}
		inf.do("POST", "/v1/chat/completions", key, `not json at all`).wantError(429, "rate_limit_exceeded")
		inf.do("POST", "/v1/models/openai/gpt-4o-mini/chat", key, `{`).wantError(429, "rate_limit_exceeded")
	})
}

// Two replicas on one database admit at most the account's monthly limit
// between them (the review saw 10 admitted on a limit of 5).
func TestMonthlyQuotaAcrossReplicas(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		other := inf.replica(inf.Bus)
		u, key := inf.fundedKey("10", nil)
		inf.do("PATCH", "/admin/accounts/"+u.ID, inf.Admin.Token, map[string]any{"monthly_request_limit": 5}).want(200)
		var ok, refused atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < 10; i++ {
			wg.Add(1)
			go func(h *harness) {
				defer wg.Done()
				r := h.do("POST", "/v1/chat/completions", key, chatBody("openai/gpt-4o-mini", "hi"))
				switch {
				case r.Status == 200:
					ok.Add(1)
				case r.Status == 429 && r.str("error.code") == "monthly_quota_exceeded":
					refused.Add(1)
				default:
					t.Errorf("status %d: %s", r.Status, r.Raw)
				}
			}([]*harness{inf.harness, other}[i%2])
		}
		wg.Wait()
		if ok.Load() != 5 || refused.Load() != 5 {
			t.Fatalf("%d answered, %d refused; want 5 and 5", ok.Load(), refused.Load())
		}
	})
}
