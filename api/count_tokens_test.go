package api_test

import (
	"testing"

	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/models"
)

// POST /v1/messages/count_tokens answers Anthropic's {input_tokens} for
// every model: Anthropic's and Gemini's count endpoints, OpenAI's public
// tokenizer, else Beaver's estimate (said in X-Beaver-Token-Count). It is
// never billed, and errors come in Anthropic's envelope.
func TestMessagesCountTokens(t *testing.T) {
	inf := newInference(t, "sqlite", fakeupstream.Options{})
	u, key := inf.fundedKey("1", nil)
	before, _ := inf.balance(u.Token)
	body := func(model string) map[string]any {
		return map[string]any{"model": model, "system": "be brief",
			"messages": []any{map[string]any{"role": "user", "content": "how many tokens is this"}}}
	}
	for _, tt := range []struct {
		model, how string
		path       string // where the count went upstream; "" = nowhere
	}{
		{"claude-3-5-haiku-20241022", "provider", "/v1/messages/count_tokens"},
		{"google/gemini-1.5-flash", "provider", "/v1beta/models/gemini-1.5-flash:countTokens"},
		{"openai/gpt-4o-mini", "provider", ""},
		{"deepseek/deepseek-chat", "estimated", ""},
	} {
		inf.Fake.Reset()
		r := countTokens(inf, key, body(tt.model)).want(200)
		if r.num("input_tokens") <= 0 || r.Header.Get("X-Beaver-Token-Count") != tt.how {
			t.Fatalf("%s: %s (%s)", tt.model, r.Raw, r.Header.Get("X-Beaver-Token-Count"))
		}
		reqs := inf.Fake.Requests()
		if tt.path == "" && len(reqs) != 0 || tt.path != "" && (len(reqs) != 1 || reqs[0].Path != tt.path) {
			t.Fatalf("%s: upstream requests %+v", tt.model, reqs)
		}
	}
	after, _ := inf.balance(u.Token)
	var logs int64
	inf.DB.Model(&models.UsageLog{}).Where("account_id = ?", u.ID).Count(&logs)
	if after != before || logs != 0 {
		t.Fatalf("counting was billed: balance %d → %d, %d usage logs", before, after, logs)
	}
	// What the count says is what generating bills as the prompt.
	b := body("claude-3-5-haiku-20241022")
	counted := countTokens(inf, key, b).want(200).num("input_tokens")
	b["max_tokens"] = 5
	if m := inf.message(key, b).want(200); m.num("usage.input_tokens") != counted {
		t.Fatalf("counted %d, billed %d input tokens: %s", counted, m.num("usage.input_tokens"), m.Raw)
	}

	r := countTokens(inf, key, body("anthropic/nope")).want(404)
	if r.str("type") != "error" || r.str("error.type") != "not_found_error" || r.Header.Get("Request-Id") == "" {
		t.Fatalf("unknown model: %s", r.Raw)
	}
	r = inf.do("POST", "/v1/messages/count_tokens", "", body("claude-3-5-haiku-20241022")).want(401)
	if r.str("error.type") != "authentication_error" {
		t.Fatalf("no key: %s", r.Raw)
	}
}

// countTokens calls POST /v1/messages/count_tokens as Anthropic's SDKs do.
func countTokens(inf *inference, key string, body any) *resp {
	inf.t.Helper()
	return inf.do("POST", "/v1/messages/count_tokens", "", body, withHeader("x-api-key", key),
		withHeader("anthropic-version", "2023-06-01"), withHeader("anthropic-beta", "token-counting-2024-11-01"))
}
