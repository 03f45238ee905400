package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/beaver-gateway/beaver/internal/embedding"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/models"
)

func embedBody(model string, input any, extra ...any) map[string]any {
	b := map[string]any{"model": model, "input": input}
	for i := 0; i+1 < len(extra); i += 2 {
		b[extra[i].(string)] = extra[i+1]
	}
	return b
}

// vectorsOf decodes an answer's vectors, float or base64.
func vectorsOf(t *testing.T, r *resp) [][]float64 {
	t.Helper()
	var out [][]float64
	for i := range r.list("data") {
		if r.str(fmt.Sprintf("data.%d.object", i)) != "embedding" || r.num(fmt.Sprintf("data.%d.index", i)) != int64(i) {
			t.Fatalf("vector %d: %s", i, r.Raw)
		}
	}
	var body struct {
		Data []embedding.Vector `json:"data"`
	}
	if err := json.Unmarshal(r.Raw, &body); err != nil {
		t.Fatal(err)
	}
	for _, d := range body.Data {
		v, err := embedding.Decode(d.Embedding)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// One embeddings request is billed exactly once: the balance drops by the
// cost the answer shows (usage and header), which is the usage log's
// charge and the ledger entry's amount, at the model's price for the
// prompt tokens (the upstream's count, or Beaver's estimate for Gemini).
func TestEmbeddingsBilledOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		tests := []struct {
			model     string
			input     any
			texts     []string // what the fake embeds, per input
			tokens    int64    // prompt tokens billed
			estimated bool
			provider  string
		}{
			{"openai/text-embedding-3-small", "hello embeddings world", []string{"hello embeddings world"}, 3, false, "openai"},
			{"openai/text-embedding-3-large", []string{"one two", "three"}, []string{"one two", "three"}, 3, false, "openai"},
			{"text-embedding-3-small", []int{5, 6, 7, 8}, []string{"5 6 7 8"}, 4, false, "openai"}, // a bare name; a token array
			{"openai/text-embedding-3-small", [][]int{{1}, {2, 3}}, []string{"1", "2 3"}, 3, false, "openai"},
			// Gemini reports no usage: ceil(11/4) + ceil(5/4) = 3 + 2
			{"google/gemini-embedding-001", []string{"hello world", "again"}, []string{"hello world", "again"}, 5, true, "google"},
		}
		for _, tt := range tests {
			before, _ := inf.balance(u.Token)
			r := inf.do("POST", "/v1/embeddings", key, embedBody(tt.model, tt.input)).want(200)
			id := r.str("id")
			cost := r.num("usage.cost_micros")
			e, _ := inf.Catalog.Resolve(tt.model)
			if want := pricing.ChargeTokens(e.Price, pricing.Tokens{Prompt: tt.tokens, Completion: 0}, time.Time{}).ChargedMicros; cost != want || cost <= 0 {
				t.Fatalf("%s: cost %d, want %d (%s)", tt.model, cost, want, r.Raw)
			}
			if r.str("object") != "list" || r.str("model") != e.ID || !strings.HasPrefix(id, "embd-") ||
				r.num("usage.prompt_tokens") != tt.tokens || r.num("usage.total_tokens") != tt.tokens {
				t.Fatalf("%s: envelope %s", tt.model, r.Raw)
			}
			want := make([][]float64, len(tt.texts))
			for i, text := range tt.texts {
				want[i] = fakeupstream.FakeVector(text, 0)
			}
			if got := vectorsOf(t, r); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: vectors %v, want %v", tt.model, got, want)
			}
			after, _ := inf.balance(u.Token)
			if before-after != cost || r.Header.Get("X-Beaver-Cost-Micros") != fmt.Sprint(cost) ||
				r.Header.Get("X-Beaver-Balance-Micros") != fmt.Sprint(after) || r.Header.Get("X-Beaver-Generation-Id") != id {
				t.Fatalf("%s: balance %d → %d, cost %d, headers %v", tt.model, before, after, cost, r.Header)
			}
			var log models.UsageLog
			inf.DB.Where("id = ?", id).Take(&log)
			if log.ChargedMicros != cost || log.Model != e.ID || log.Provider != tt.provider || log.PromptTokens != tt.tokens ||
				log.CompletionTokens != 0 || log.UsageEstimated != tt.estimated || log.Streamed || log.Error != nil {
				t.Fatalf("%s: usage log %+v", tt.model, log)
			}
			var entries []models.LedgerEntry
			inf.DB.Where("account_id = ? AND reference = ?", u.ID, "charge:"+id).Find(&entries)
			if len(entries) != 1 || entries[0].AmountMicros != -cost || entries[0].Type != models.EntryCharge {
				t.Fatalf("%s: ledger %+v", tt.model, entries)
			}
			g := inf.do("GET", "/v1/generation?id="+id, key, nil).want(200)
			if g.num("data.charged_micros") != cost || g.str("data.model") != e.ID || g.num("data.prompt_tokens") != tt.tokens ||
				g.num("data.completion_tokens") != 0 || g.get("data.usage_estimated") != tt.estimated {
				t.Fatalf("%s: generation %s", tt.model, g.Raw)
			}
		}
		inf.invariant(u.ID)
		inf.waitReservedZero(u.ID)
	})
}

// encoding_format base64 (what the official SDKs ask for by default): the
// little-endian float32 vectors, passed through from OpenAI and encoded by
// Beaver for Gemini; dimensions reach both.
func TestEmbeddingsBase64AndDimensions(t *testing.T) {
	inf := newInference(t, "sqlite", fakeupstream.Options{})
	_, key := inf.fundedKey("10", nil)
	for _, model := range []string{"openai/text-embedding-3-small", "google/gemini-embedding-001"} {
		r := inf.do("POST", "/v1/embeddings", key, embedBody(model, []string{"a b", "c"}, "encoding_format", "base64", "dimensions", 5)).want(200)
		if s, ok := r.get("data.0.embedding").(string); !ok || s == "" {
			t.Fatalf("%s: not base64: %s", model, r.Raw)
		}
		want := [][]float64{fakeupstream.FakeVector("a b", 5), fakeupstream.FakeVector("c", 5)}
		if got := vectorsOf(t, r); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %v, want %v", model, got, want)
		}
		r = inf.do("POST", "/v1/embeddings", key, embedBody(model, "x", "encoding_format", "float")).want(200)
		if _, ok := r.get("data.0.embedding").([]any); !ok {
			t.Fatalf("%s: float answer %s", model, r.Raw)
		}
	}
}

// The official Go SDK reads the answer.
func TestEmbeddingsOpenAIGoSDK(t *testing.T) {
	inf := newInference(t, "sqlite", fakeupstream.Options{})
	_, key := inf.fundedKey("10", nil)
	client := openai.NewClient(option.WithBaseURL(inf.URL+"/v1/"), option.WithAPIKey(key),
		option.WithHTTPClient(inf.Client), option.WithMaxRetries(0))
	for _, model := range []string{"openai/text-embedding-3-small", "google/gemini-embedding-001"} {
		resp, err := client.Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: model,
			Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"hello", "world"}}, Dimensions: openai.Int(4)})
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		if len(resp.Data) != 2 || !reflect.DeepEqual(resp.Data[1].Embedding, fakeupstream.FakeVector("world", 4)) ||
			resp.Usage.PromptTokens <= 0 || resp.Usage.TotalTokens != resp.Usage.PromptTokens {
			t.Fatalf("%s: %+v", model, resp)
		}
	}
	_, err := client.Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: "openai/gpt-4o-mini",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hi")}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || apiErr.Param != "model" {
		t.Fatalf("chat model: %v", err)
	}
}

// Chat models do not embed and embedding models do not chat: 400 naming
// the field, before anything is held or sent upstream.
func TestEmbeddingsWrongModelKind(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		r := inf.do("POST", "/v1/embeddings", key, embedBody("openai/gpt-4o-mini", "hi")).wantError(400, "invalid_request")
		if r.get("error.param") != "model" || !strings.Contains(r.str("error.message"), "chat model") {
			t.Fatalf("chat model embedding: %s", r.Raw)
		}
		for _, body := range []map[string]any{
			chatBody("openai/text-embedding-3-small", "hi"),
			chatBody("google/gemini-embedding-001", "hi", "stream", true),
		} {
			r := inf.do("POST", "/v1/chat/completions", key, body).wantError(400, "invalid_request")
			if r.get("error.param") != "model" || !strings.Contains(r.str("error.message"), "/v1/embeddings") {
				t.Fatalf("embedding model chat: %s", r.Raw)
			}
		}
		inf.do("POST", "/v1/models/openai/text-embedding-3-small/chat", key, map[string]any{"messages": []any{msg("hi")}}).
			wantError(400, "invalid_request")
		inf.do("POST", "/v1/responses", key, map[string]any{"model": "openai/text-embedding-3-small", "input": "hi"}).
			wantError(400, "invalid_request")
		inf.do("POST", "/v1/messages", key, map[string]any{"model": "google/gemini-embedding-001", "max_tokens": 10,
			"messages": []any{msg("hi")}}).want(400)
		r = inf.do("POST", "/v1/chat/completions", key, map[string]any{"models": []string{"openai/gpt-4o-mini", "openai/text-embedding-3-large"},
			"messages": []any{msg("hi")}}).wantError(400, "invalid_request")
		if r.get("error.param") != "models" {
			t.Fatalf("embedding model among models: %s", r.Raw)
		}
		if n := len(inf.Fake.Requests()); n != 0 {
			t.Fatalf("%d upstream calls for refused requests", n)
		}
		if n := inf.scalar("SELECT COUNT(*) FROM usage_logs WHERE account_id = ?", u.ID); n != 0 {
			t.Fatalf("%d usage logs for refused requests", n)
		}
		if b, reserved := inf.balance(u.Token); b != 10_000_000 || reserved != 0 {
			t.Fatalf("balance %d reserved %d", b, reserved)
		}
	})
}

// Auth, balance, key policy, rate limit and quota answer as for chat.
func TestEmbeddingsLimits(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		body := embedBody("openai/text-embedding-3-small", "hi")
		inf.do("POST", "/v1/embeddings", "", body).wantError(401, "unauthorized")
		inf.do("POST", "/v1/embeddings", "sk-beaver-nope", body).wantError(401, "invalid_api_key")
		_, broke := inf.fundedKey("0", nil)
		r := inf.do("POST", "/v1/embeddings", broke, body).wantError(402, "insufficient_balance")
		if r.get("error.limit_source") != "balance" {
			t.Fatalf("402: %s", r.Raw)
		}
		_, narrow := inf.fundedKey("1", map[string]any{"name": "n", "allowed_models": []string{"openai/gpt-4o-mini"}})
		inf.do("POST", "/v1/embeddings", narrow, body).wantError(403, "forbidden")
		if n := len(inf.Fake.Requests()); n != 0 {
			t.Fatalf("%d upstream calls for refused requests", n)
		}

		u, key := inf.fundedKey("1", nil)
		r = inf.do("POST", "/v1/embeddings", key, body).want(200)
		if r.Header.Get("X-RateLimit-Limit") != "60" || r.Header.Get("X-RateLimit-Remaining") != "59" {
			t.Fatalf("rate headers %v", r.Header)
		}
		inf.do("PATCH", "/admin/accounts/"+u.ID, inf.Admin.Token, map[string]any{"rpm_limit": 2}).want(200)
		inf.do("POST", "/v1/embeddings", key, map[string]any{"model": 3}).wantError(400, "invalid_request") // counted too
		r = inf.do("POST", "/v1/embeddings", key, body).wantError(429, "rate_limit_exceeded")
		if r.Header.Get("Retry-After") == "" {
			t.Fatalf("429 without Retry-After: %v", r.Header)
		}
		_, key2 := inf.createKey(u, nil)
		inf.do("PATCH", "/admin/accounts/"+u.ID, inf.Admin.Token, map[string]any{"rpm_limit": 0, "monthly_request_limit": 2}).want(200)
		inf.do("POST", "/v1/embeddings", key2, body).want(200)
		inf.do("POST", "/v1/embeddings", key2, body).wantError(429, "monthly_quota_exceeded")
		inf.invariant(u.ID)
	})
}

// Malformed requests are 400 naming the field; upstream failures map as
// for chat and cost nothing; a request Gemini cannot carry is refused.
func TestEmbeddingsErrors(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		// No retries: each failure is answered at once (every attempt is free anyway).
		inf := newInferenceWith(t, dialect, fakeupstream.Options{}, func(pc *providers.Config) { pc.MaxRetries = -1 })
		u, key := inf.fundedKey("10", nil)
		for _, c := range []struct {
			body  any
			param any
		}{
			{"{not json", nil},
			{map[string]any{"input": "x"}, "model"},
			{map[string]any{"model": "openai/text-embedding-3-small"}, "input"},
			{embedBody("openai/text-embedding-3-small", ""), "input"},
			{embedBody("openai/text-embedding-3-small", []any{"a", 1}), "input"},
			{embedBody("openai/text-embedding-3-small", "x", "encoding_format", "int8"), "encoding_format"},
			{embedBody("openai/text-embedding-3-small", "x", "dimensions", 0), "dimensions"},
			{embedBody("openai/text-embedding-3-small", "x", "stream", true), "stream"},
		} {
			r := inf.do("POST", "/v1/embeddings", key, c.body).wantError(400, "invalid_request")
			if r.get("error.param") != c.param {
				t.Fatalf("%v: param %v, want %v: %s", c.body, r.get("error.param"), c.param, r.Raw)
			}
		}
		inf.do("POST", "/v1/embeddings", key, embedBody("openai/nope", "x")).wantError(404, "model_not_found")
		for _, c := range []struct {
			model, text string
			status      int
			code        string
		}{
			{"openai/text-embedding-3-small", "[[error:400]]", 400, "invalid_request"},
			{"openai/text-embedding-3-small", "[[error:429]]", 429, "upstream_rate_limited"},
			{"google/gemini-embedding-001", "[[error:500]]", 502, "upstream_error"},
			{"openai/text-embedding-3-small", "[[error:401]]", 502, "upstream_error"},
		} {
			inf.do("POST", "/v1/embeddings", key, embedBody(c.model, c.text)).wantError(c.status, c.code)
		}
		r := inf.do("POST", "/v1/embeddings", key, embedBody("google/gemini-embedding-001", []int{1, 2})).wantError(400, "invalid_request")
		if r.get("error.param") != "input" {
			t.Fatalf("token arrays to Gemini: %s", r.Raw)
		}
		if b, _ := inf.balance(u.Token); b != 10_000_000 {
			t.Fatalf("failed requests charged: balance %d", b)
		}
		if n := inf.scalar("SELECT COUNT(*) FROM usage_logs WHERE account_id = ? AND error IS NOT NULL AND charged_micros = 0", u.ID); n != 5 {
			t.Fatalf("%d free failed usage logs, want 5", n)
		}
		inf.invariant(u.ID)
		inf.waitReservedZero(u.ID)
	})
}
