package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/chat"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/models"
)

// An Anthropic answer that opens with a server tool's blocks (a web search:
// server_tool_use, then a result whose content is an array) decodes, on
// chat completions complete and streamed, and on /v1/messages: the text
// arrives and the request is charged once. Such blocks used to fail the
// decoding (502, or a mid-stream error) while the provider charged.
func TestAnthropicServerToolBlocks(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		const model = "anthropic/claude-3-5-haiku-20241022"
		text := "what happened today [[web-search]] [[words:4]]"

		before, _ := inf.balance(u.Token)
		r := inf.do("POST", "/v1/chat/completions", key, chatBody(model, text)).want(200)
		if got := r.str("choices.0.message.content"); len(strings.Fields(got)) != 4 {
			t.Fatalf("complete: content %q: %s", got, r.Raw)
		}
		after, _ := inf.balance(u.Token)
		inf.chargedOnce(u.ID, r.str("id"), r.num("usage.cost_micros"), before, after)

		before = after
		res, data := inf.stream(key, chatBody(model, text, "stream", true))
		joined := strings.Join(data, "\n")
		if !strings.Contains(joined, `"finish_reason":"stop"`) || strings.Contains(joined, `"error"`) {
			t.Fatalf("stream: %v", data)
		}
		after, _ = inf.balance(u.Token)
		if after >= before {
			t.Fatalf("stream not charged: %d → %d", before, after)
		}
		inf.chargedOnce(u.ID, res.Header.Get("X-Beaver-Generation-Id"), before-after, before, after)

		before = after
		m := inf.do("POST", "/v1/messages", key, map[string]any{"model": model, "max_tokens": 100,
			"messages": []any{map[string]any{"role": "user", "content": text}}}).want(200)
		after, _ = inf.balance(u.Token)
		if m.str("content.0.type") != "text" || len(strings.Fields(m.str("content.0.text"))) != 4 {
			t.Fatalf("messages: %s", m.Raw)
		}
		inf.chargedOnce(u.ID, m.Header.Get("X-Beaver-Generation-Id"), before-after, before, after)
		inf.invariant(u.ID)
	})
}

// Perplexity's legacy Sonar streams (PERPLEXITY_API_FORMAT=openai) end
// after the chunk with the finish reason (object chat.completion.done),
// usage on every chunk and no "data: [DONE]": that is a finished answer,
// charged by its usage, with one finish and one usage chunk, not a cut with
// an error after it.
func TestStreamEndingWithoutDone(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInferenceWith(t, dialect, fakeupstream.Options{}, legacyPerplexity)
		u, key := inf.fundedKey("10", nil)
		const model = "perplexity/llama-3.1-sonar-small-128k-online"
		before, _ := inf.balance(u.Token)
		res, data := inf.stream(key, chatBody(model, "population of San Francisco [[words:6]]", "stream_options", map[string]any{"include_usage": true}))
		var finishes, usages int
		var usage *struct{ completion, cost int64 }
		for _, d := range data {
			if d == "[DONE]" {
				continue
			}
			var c chunk
			if err := json.Unmarshal([]byte(d), &c); err != nil || c.Error != nil {
				t.Fatalf("chunk %s", d)
			}
			for _, ch := range c.Choices {
				if ch.FinishReason != nil {
					finishes++
				}
			}
			if c.Usage != nil {
				usages++
				usage = &struct{ completion, cost int64 }{c.Usage.CompletionTokens, c.Usage.CostMicros}
			}
		}
		if finishes != 1 || usages != 1 || usage == nil || usage.completion != 6 || data[len(data)-1] != "[DONE]" {
			t.Fatalf("%d finish chunks, %d usage chunks (%+v):\n%s", finishes, usages, usage, strings.Join(data, "\n"))
		}
		if reqs := inf.Fake.Requests(); reqs[len(reqs)-1].Path != "/chat/completions" {
			t.Fatalf("sent to %s, not the legacy API", reqs[len(reqs)-1].Path)
		}
		after, _ := inf.balance(u.Token)
		inf.chargedOnce(u.ID, res.Header.Get("X-Beaver-Generation-Id"), usage.cost, before, after)
		var log models.UsageLog
		inf.DB.Where("id = ?", res.Header.Get("X-Beaver-Generation-Id")).Take(&log)
		if log.UsageEstimated || log.Cancelled || log.Error != nil || log.CompletionTokens != 6 {
			t.Fatalf("usage log %+v", log)
		}
	})
}

// What a provider answers beside the completion reaches the client as
// top-level fields: Perplexity's citations (rebuilt from its Agent API's
// search results), Gemini's grounding metadata (grounding_metadata), on the
// completion and once on the stream.
func TestProviderExtrasPassedOn(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		_, key := inf.fundedKey("10", nil)
		for _, tt := range []struct{ model, text, field, want string }{
			{"perplexity/llama-3.1-sonar-small-128k-online", "population of San Francisco", "citations", "https://en.wikipedia.org/wiki/San_Francisco"},
			{"google/gemini-1.5-flash", "news today [[grounding]]", "grounding_metadata", "https://example.com/news"},
		} {
			r := inf.do("POST", "/v1/chat/completions", key, chatBody(tt.model, tt.text)).want(200)
			if _, ok := r.JSON[tt.field]; !ok || !strings.Contains(string(r.Raw), tt.want) {
				t.Fatalf("%s: no %s in %s", tt.model, tt.field, r.Raw)
			}
			_, data := inf.stream(key, chatBody(tt.model, tt.text+" [[words:4]]"))
			carrying := 0
			for _, d := range data {
				if strings.Contains(d, `"`+tt.field+`":`) {
					carrying++
				}
			}
			if carrying != 1 || !strings.Contains(strings.Join(data, "\n"), tt.want) {
				t.Fatalf("%s: %d chunks carry %s:\n%s", tt.model, carrying, tt.field, strings.Join(data, "\n"))
			}
		}
		// Models whose provider sends none have none.
		r := inf.do("POST", "/v1/chat/completions", key, chatBody("openai/gpt-4o-mini", "hi")).want(200)
		for _, f := range []string{"citations", "search_results", "grounding_metadata"} {
			if _, ok := r.JSON[f]; ok {
				t.Fatalf("openai answer has %s: %s", f, r.Raw)
			}
		}
	})
}

// A tool round trip on a thinking model: DeepSeek's thinking mode answers
// 400 to a tool loop whose assistant turn lost its reasoning_content, so
// Beaver hands the reasoning to the client and sends it back upstream.
func TestReasoningToolRoundTrip(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		_, key := inf.fundedKey("10", nil)
		const model = "deepseek/deepseek-reasoner"
		tools := []any{map[string]any{"type": "function", "function": map[string]any{"name": "get_weather",
			"description": "The weather in a city", "parameters": map[string]any{"type": "object",
				"properties": map[string]any{"city": map[string]any{"type": "string"}}}}}}
		first := inf.do("POST", "/v1/chat/completions", key, chatBody(model, "weather in Paris? [[tool]] [[reasoning:12]]", "tools", tools)).want(200)
		msg, _ := first.get("choices.0.message").(map[string]any)
		if msg["reasoning_content"] == nil || first.str("choices.0.finish_reason") != "tool_calls" {
			t.Fatalf("turn 1: %s", first.Raw)
		}
		callID := first.str("choices.0.message.tool_calls.0.id")
		history := []any{
			map[string]any{"role": "user", "content": "weather in Paris? [[tool]] [[reasoning:12]]"},
			msg, // as received: content, tool_calls and reasoning_content
			map[string]any{"role": "tool", "tool_call_id": callID, "content": `{"temp_c": 21}`},
		}
		inf.do("POST", "/v1/chat/completions", key, map[string]any{"model": model, "messages": history, "tools": tools}).want(200)
		reqs := inf.Fake.Requests()
		if !strings.Contains(string(reqs[len(reqs)-1].Body), `"reasoning_content":"think`) {
			t.Fatalf("the reasoning was not sent back: %s", reqs[len(reqs)-1].Body)
		}
		// Other providers never get it (OpenAI refuses unknown fields).
		history[1].(map[string]any)["content"] = "calling"
		inf.do("POST", "/v1/chat/completions", key, map[string]any{"model": "openai/gpt-4o-mini", "messages": history, "tools": tools}).want(200)
		reqs = inf.Fake.Requests()
		if strings.Contains(string(reqs[len(reqs)-1].Body), "reasoning_content") {
			t.Fatalf("reasoning sent to OpenAI: %s", reqs[len(reqs)-1].Body)
		}
	})
}

// legacyPerplexity puts Perplexity on its legacy Chat Completions (Sonar)
// API, as PERPLEXITY_API_FORMAT=openai does.
func legacyPerplexity(c *providers.Config) {
	if c.Name == "perplexity" {
		*c = providers.UseFormat(*c, providers.FormatOpenAI)
	}
}

// A chat completion on a Perplexity model goes through its Agent API
// (/v1/responses): the catalog's "sonar" as perplexity/sonar, the
// web_search tool offered and Perplexity's tool calls bounded by
// chat.MaxServerToolCalls. The client gets the Sonar API's citations and
// search_results, and usage.server_tool_use counts the searches, complete
// and streamed, each request charged once. Perplexity's preset and
// web_search_options are accepted for its models only.
func TestPerplexityAgentAPI(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		// perplexity/sonar is in the default catalog with the Agent API's
		// fees: $5 per 1,000 searches, $0.50 per 1,000 fetches.
		if e, err := inf.Catalog.Resolve("perplexity/sonar"); err != nil || e.Base.Tools["web_search"] != 5000 || e.Base.Tools["fetch_url"] != 500 {
			t.Fatalf("perplexity/sonar: %+v %v", e, err)
		}
		u, key := inf.fundedKey("10", nil)
		const model = "perplexity/sonar"
		text := "population of San Francisco [[words:6]] [[web-search:2]]"
		lastSent := func() (string, map[string]any) {
			reqs := inf.Fake.Requests()
			last := reqs[len(reqs)-1]
			var body map[string]any
			if err := json.Unmarshal(last.Body, &body); err != nil {
				t.Fatal(err)
			}
			return last.Path, body
		}

		before, _ := inf.balance(u.Token)
		r := inf.do("POST", "/v1/chat/completions", key, chatBody(model, text)).want(200)
		path, sent := lastSent()
		if path != "/v1/responses" || sent["model"] != "perplexity/sonar" || sent["max_tool_calls"] != float64(chat.MaxServerToolCalls) ||
			fmt.Sprint(sent["tools"]) != "[map[type:web_search]]" {
			t.Fatalf("sent to %s: %v", path, sent)
		}
		if r.num("usage.server_tool_use.web_search") != 2 || r.num("usage.completion_tokens") != 6 ||
			r.str("citations.0") != "https://en.wikipedia.org/wiki/San_Francisco" || len(r.list("citations")) != 4 ||
			r.str("search_results.2.url") != "https://example.com/search-2/a" || r.str("search_results.0.title") == "" {
			t.Fatalf("answer %s", r.Raw)
		}
		after, _ := inf.balance(u.Token)
		inf.chargedOnce(u.ID, r.str("id"), r.num("usage.cost_micros"), before, after)
		e, _ := inf.Catalog.Resolve(model)
		want := pricing.ChargeTokens(e.Price, pricing.Tokens{Prompt: r.num("usage.prompt_tokens"), Completion: 6,
			Tools: map[string]int64{"web_search": 2}}, time.Now())
		if r.num("usage.cost_micros") != want.ChargedMicros || e.Price.Tools["web_search"] <= 5000 {
			t.Fatalf("charged %d, want %d with two searches at %d each", r.num("usage.cost_micros"), want.ChargedMicros, e.Price.Tools["web_search"])
		}

		before = after
		res, data := inf.stream(key, chatBody(model, text))
		var finishes, carrying, searches int
		for _, d := range data {
			if d == "[DONE]" {
				continue
			}
			var c struct {
				chunk
				Citations []string `json:"citations"`
				Usage     *struct {
					ServerToolUse map[string]int `json:"server_tool_use"`
				} `json:"usage"`
			}
			if err := json.Unmarshal([]byte(d), &c); err != nil || c.Error != nil {
				t.Fatalf("chunk %s", d)
			}
			for _, ch := range c.Choices {
				if ch.FinishReason != nil {
					finishes++
				}
			}
			if c.Citations != nil {
				carrying++
			}
			if c.Usage != nil {
				searches = c.Usage.ServerToolUse["web_search"]
			}
		}
		if finishes != 1 || carrying != 1 || searches != 2 || data[len(data)-1] != "[DONE]" {
			t.Fatalf("%d finishes, %d chunks with citations, %d searches:\n%s", finishes, carrying, searches, strings.Join(data, "\n"))
		}
		after, _ = inf.balance(u.Token)
		inf.chargedOnce(u.ID, res.Header.Get("X-Beaver-Generation-Id"), before-after, before, after)

		inf.do("POST", "/v1/chat/completions", key, chatBody(model, "hi", "preset", "pro-search",
			"web_search_options", map[string]any{"search_context_size": "low"}, "max_tool_calls", 3)).want(200)
		if _, sent := lastSent(); sent["preset"] != "pro-search" || sent["max_tool_calls"] != float64(3) ||
			fmt.Sprint(sent["tools"]) != "[map[search_context_size:low type:web_search]]" {
			t.Fatalf("sent %v", sent)
		}
		n := len(inf.Fake.Requests())
		for _, field := range []string{"preset", "web_search_options", "max_tool_calls"} {
			values := map[string]any{"preset": "pro-search", "web_search_options": map[string]any{}, "max_tool_calls": 3}
			e := inf.do("POST", "/v1/chat/completions", key, chatBody("openai/gpt-4o-mini", "hi", field, values[field])).wantError(400, "invalid_request")
			if e.str("error.param") != field || !strings.Contains(e.str("error.message"), "perplexity") {
				t.Errorf("%s for openai: %s", field, e.Raw)
			}
		}
		if len(inf.Fake.Requests()) != n {
			t.Error("a refused request reached the upstream")
		}
		inf.invariant(u.ID)
	})
}
