package api_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/models"
)

// POST /v1/messages, the Anthropic-compatible surface, against models of
// the three wire formats behind the fake upstream.

// messageModels are one model per wire format (and DeepSeek, another
// OpenAI-format provider).
var messageModels = []string{"openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-20241022", "google/gemini-1.5-flash",
	"deepseek/deepseek-chat"}

// message calls POST /v1/messages as Anthropic's SDKs do: x-api-key and
// anthropic-version, no Authorization.
func (inf *inference) message(key string, body any, opts ...reqOpt) *resp {
	inf.t.Helper()
	opts = append([]reqOpt{withHeader("x-api-key", key), withHeader("anthropic-version", "2023-06-01")}, opts...)
	return inf.do("POST", "/v1/messages", "", body, opts...)
}

func messageBody(model string, maxTokens int, content any, extra ...any) map[string]any {
	b := map[string]any{"model": model, "max_tokens": maxTokens,
		"messages": []any{map[string]any{"role": "user", "content": content}}}
	for i := 0; i+1 < len(extra); i += 2 {
		b[extra[i].(string)] = extra[i+1]
	}
	return b
}

// wantAnthropicError checks Anthropic's error shape ({"type": "error",
// "error": {"type", "message"}}), which is also the contract's (code,
// param), the error type and Beaver's code.
func (r *resp) wantAnthropicError(status int, typ, code string) *resp {
	r.t.Helper()
	r.wantError(status, code)
	if r.JSON["type"] != "error" || r.str("error.type") != typ {
		r.t.Fatalf("%s: want Anthropic error type %s: %s", r.req, typ, r.Raw)
	}
	return r
}

// messageEvent is one server-sent event of a /v1/messages stream.
type messageEvent struct {
	Name string
	Data map[string]any
	Raw  string
}

// messageStream posts a streaming request and reads its events.
func (inf *inference) messageStream(key string, body map[string]any) (*http.Response, []messageEvent) {
	inf.t.Helper()
	body["stream"] = true
	j, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", inf.URL+"/v1/messages", strings.NewReader(string(j)))
	req.Header.Set("x-api-key", key)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("Content-Type", "application/json")
	res, err := inf.Client.Do(req)
	if err != nil {
		inf.t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return res, nil
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		inf.t.Fatalf("content type %q", ct)
	}
	var events []messageEvent
	var name string
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			raw := strings.TrimPrefix(line, "data: ")
			var data map[string]any
			dec := json.NewDecoder(strings.NewReader(raw))
			dec.UseNumber()
			if err := dec.Decode(&data); err != nil {
				inf.t.Fatalf("bad event data %q: %v", raw, err)
			}
			if data["type"] != name {
				inf.t.Fatalf("event %s carries type %v", name, data["type"])
			}
			events = append(events, messageEvent{Name: name, Data: data, Raw: raw})
		case line == "":
		default:
			inf.t.Fatalf("unexpected SSE line %q", line)
		}
	}
	return res, events
}

// streamed is what a stream's events add up to, with their order checked
// against Anthropic's grammar: message_start, then blocks (start, deltas,
// stop; ping only after the first start), then message_delta and
// message_stop — or an error event, last.
type streamed struct {
	ID, Model    string
	Blocks       []map[string]any // content_block_start's blocks, with text / partial_json accumulated
	Texts        []string         // per block: the text, thinking or input JSON delivered
	StopReason   string
	OutputTokens int64
	InputTokens  int64
	CostMicros   int64
	Error        map[string]any
}

func readStream(t *testing.T, events []messageEvent) streamed {
	t.Helper()
	var s streamed
	names := make([]string, len(events))
	for i, e := range events {
		names[i] = e.Name
	}
	all := strings.Join(names, " ")
	if len(events) == 0 || events[0].Name != "message_start" && events[0].Name != "error" {
		t.Fatalf("stream does not start with message_start: %s", all)
	}
	open := -1
	for i, e := range events {
		num := func(path string) int64 {
			n, err := e.Data[path].(json.Number).Int64()
			if err != nil {
				t.Fatalf("%s.%s: %v", e.Name, path, err)
			}
			return n
		}
		switch e.Name {
		case "message_start":
			if i != 0 {
				t.Fatalf("message_start at %d: %s", i, all)
			}
			m := e.Data["message"].(map[string]any)
			s.ID, s.Model = m["id"].(string), m["model"].(string)
			if m["type"] != "message" || m["role"] != "assistant" || m["stop_reason"] != nil || len(m["content"].([]any)) != 0 {
				t.Fatalf("message_start %s", e.Raw)
			}
		case "content_block_start":
			if open != -1 || int(num("index")) != len(s.Blocks) {
				t.Fatalf("block start out of order at %d: %s", i, all)
			}
			open = len(s.Blocks)
			s.Blocks = append(s.Blocks, e.Data["content_block"].(map[string]any))
			s.Texts = append(s.Texts, "")
		case "ping":
			if len(s.Blocks) == 0 {
				t.Fatalf("ping before the first block: %s", all)
			}
		case "content_block_delta":
			idx := int(num("index"))
			if idx != open {
				t.Fatalf("delta for block %d while %d is open: %s", idx, open, all)
			}
			d := e.Data["delta"].(map[string]any)
			switch d["type"] {
			case "text_delta":
				s.Texts[idx] += d["text"].(string)
			case "input_json_delta":
				s.Texts[idx] += d["partial_json"].(string)
			case "thinking_delta":
				s.Texts[idx] += d["thinking"].(string)
			case "signature_delta":
				s.Blocks[idx]["signature"] = d["signature"]
			default:
				t.Fatalf("delta type %v", d["type"])
			}
		case "content_block_stop":
			if int(num("index")) != open {
				t.Fatalf("stop of a block that is not open: %s", all)
			}
			open = -1
		case "message_delta":
			if open != -1 || i != len(events)-2 || events[i+1].Name != "message_stop" {
				t.Fatalf("message_delta out of place: %s", all)
			}
			d := e.Data["delta"].(map[string]any)
			s.StopReason = d["stop_reason"].(string)
			u := e.Data["usage"].(map[string]any)
			s.OutputTokens, _ = u["output_tokens"].(json.Number).Int64()
			s.InputTokens, _ = u["input_tokens"].(json.Number).Int64()
			s.CostMicros, _ = u["cost_micros"].(json.Number).Int64()
		case "message_stop":
			if i != len(events)-1 {
				t.Fatalf("message_stop is not last: %s", all)
			}
		case "error":
			if i != len(events)-1 {
				t.Fatalf("events after the error: %s", all)
			}
			s.Error = e.Data["error"].(map[string]any)
		default:
			t.Fatalf("unknown event %s", e.Name)
		}
	}
	return s
}

// chargedOnce checks that generation genID was billed exactly once for
// cost: one usage log, one ledger entry of -cost, and the balance moved by
// cost.
func (inf *inference) chargedOnce(accountID, genID string, cost, balanceBefore, balanceAfter int64) {
	inf.t.Helper()
	var logs []models.UsageLog
	inf.DB.Where("id = ?", genID).Find(&logs)
	var entries []models.LedgerEntry
	inf.DB.Where("account_id = ? AND reference = ?", accountID, "charge:"+genID).Find(&entries)
	if len(logs) != 1 || logs[0].ChargedMicros != cost || len(entries) != 1 || entries[0].AmountMicros != -cost ||
		balanceBefore-balanceAfter != cost {
		inf.t.Fatalf("%s: usage logs %+v, ledger entries %+v, balance %d → %d, cost %d", genID, logs, entries,
			balanceBefore, balanceAfter, cost)
	}
}

func TestMessagesNonStreamingEveryFormat(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		for _, model := range messageModels {
			before, _ := inf.balance(u.Token)
			r := inf.message(key, messageBody(model, 200, "say hello [[words:5]]",
				"system", "You are terse.", "metadata", map[string]any{"user_id": "u-1"})).want(200)
			if r.str("type") != "message" || r.str("role") != "assistant" || r.str("model") != model ||
				!strings.HasPrefix(r.str("id"), "msg_") || r.get("stop_sequence") != nil || r.str("stop_reason") != "end_turn" {
				t.Fatalf("%s: envelope %s", model, r.Raw)
			}
			if r.str("content.0.type") != "text" || len(strings.Fields(r.str("content.0.text"))) != 5 || len(r.list("content")) != 1 {
				t.Fatalf("%s: content %s", model, r.Raw)
			}
			in, out := r.num("usage.input_tokens")+r.num("usage.cache_read_input_tokens"), r.num("usage.output_tokens")
			if out != 5 || in <= 0 {
				t.Fatalf("%s: usage %s", model, r.Raw)
			}
			cost := r.num("usage.cost_micros")
			if want := inf.expectedCost(model, in, out); cost != want || cost <= 0 {
				t.Fatalf("%s: cost %d, want %d", model, cost, want)
			}
			if !strings.Contains(string(r.Raw), `"cost":`+strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%d.%06d", cost/1e6, cost%1e6), "0"), ".")) {
				t.Fatalf("%s: usage.cost not exact in %s", model, r.Raw)
			}
			after, _ := inf.balance(u.Token)
			if r.Header.Get("X-Beaver-Cost-Micros") != fmt.Sprint(cost) || r.Header.Get("X-Beaver-Balance-Micros") != fmt.Sprint(after) ||
				r.Header.Get("Request-Id") == "" || r.Header.Get("Request-Id") != r.Header.Get("X-Request-Id") {
				t.Fatalf("%s: headers %v", model, r.Header)
			}
			genID := r.Header.Get("X-Beaver-Generation-Id")
			if "msg_"+strings.TrimPrefix(genID, "chatcmpl-") != r.str("id") {
				t.Fatalf("%s: generation %s, message %s", model, genID, r.str("id"))
			}
			inf.chargedOnce(u.ID, genID, cost, before, after)
			// /v1/generation takes the message id.
			g := inf.do("GET", "/v1/generation?id="+r.str("id"), key, nil).want(200)
			if g.str("data.id") != genID || g.num("data.charged_micros") != cost || g.num("data.balance_after_micros") != after ||
				g.str("data.model") != model {
				t.Fatalf("%s: generation %s", model, g.Raw)
			}
		}
		// A bare model name, Authorization: Bearer instead of x-api-key, and
		// anthropic-beta are accepted.
		r := inf.do("POST", "/v1/messages", key, messageBody("claude-3-5-haiku-20241022", 50, "hi"),
			withHeader("anthropic-beta", "prompt-caching-2024-07-31")).want(200)
		if r.str("model") != "anthropic/claude-3-5-haiku-20241022" {
			t.Fatalf("bare name: %s", r.Raw)
		}
		// The answer is capped by max_tokens: stop_reason max_tokens.
		for _, model := range messageModels[:3] {
			r := inf.message(key, messageBody(model, 3, "long answer [[words:40]]")).want(200)
			if r.str("stop_reason") != "max_tokens" || r.num("usage.output_tokens") != 3 {
				t.Fatalf("%s: capped %s", model, r.Raw)
			}
		}
		inf.invariant(u.ID)
	})
}

func TestMessagesStreamingEveryFormat(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		for _, model := range messageModels {
			before, _ := inf.balance(u.Token)
			res, events := inf.messageStream(key, messageBody(model, 200, []any{
				map[string]any{"type": "text", "text": "stream please [[words:6]]"}}))
			if res.StatusCode != 200 {
				t.Fatalf("%s: status %d", model, res.StatusCode)
			}
			s := readStream(t, events)
			if s.Error != nil || s.Model != model || !strings.HasPrefix(s.ID, "msg_") {
				t.Fatalf("%s: %+v", model, s)
			}
			if len(s.Blocks) != 1 || s.Blocks[0]["type"] != "text" || len(strings.Fields(s.Texts[0])) != 6 {
				t.Fatalf("%s: blocks %v %q", model, s.Blocks, s.Texts)
			}
			if s.StopReason != "end_turn" || s.OutputTokens != 6 || s.InputTokens <= 0 {
				t.Fatalf("%s: %+v", model, s)
			}
			if want := inf.expectedCost(model, s.InputTokens, 6); s.CostMicros != want {
				t.Fatalf("%s: cost %d, want %d", model, s.CostMicros, want)
			}
			after, _ := inf.balance(u.Token)
			genID := res.Header.Get("X-Beaver-Generation-Id")
			if "msg_"+strings.TrimPrefix(genID, "chatcmpl-") != s.ID {
				t.Fatalf("%s: generation %s, message %s", model, genID, s.ID)
			}
			inf.chargedOnce(u.ID, genID, s.CostMicros, before, after)
			g := inf.do("GET", "/v1/generation?id="+s.ID, key, nil).want(200)
			if g.num("data.charged_micros") != s.CostMicros || g.get("data.streamed") != true {
				t.Fatalf("%s: generation %s", model, g.Raw)
			}
			// Capped by max_tokens.
			_, events = inf.messageStream(key, messageBody(model, 2, "long [[words:30]]"))
			if s := readStream(t, events); s.StopReason != "max_tokens" || s.OutputTokens != 2 {
				t.Fatalf("%s: capped stream %+v", model, s)
			}
		}
		inf.invariant(u.ID)
	})
}

var weatherTool = map[string]any{"name": "get_weather", "description": "The weather in a city",
	"input_schema": map[string]any{"type": "object", "properties": map[string]any{"input": map[string]any{"type": "string"}}}}

func TestMessagesToolRoundTrip(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		for _, model := range messageModels[:3] {
			question := map[string]any{"role": "user", "content": "weather in Paris? [[tool]]"}
			body := map[string]any{"model": model, "max_tokens": 100, "messages": []any{question},
				"tools": []any{weatherTool}, "tool_choice": map[string]any{"type": "auto"}}
			r := inf.message(key, body).want(200)
			if r.str("stop_reason") != "tool_use" {
				t.Fatalf("%s: %s", model, r.Raw)
			}
			content := r.list("content")
			call := content[len(content)-1].(map[string]any)
			id, _ := call["id"].(string)
			if call["type"] != "tool_use" || call["name"] != "get_weather" || id == "" {
				t.Fatalf("%s: tool_use %s", model, r.Raw)
			}
			if input, _ := call["input"].(map[string]any); input["input"] != "fake" {
				t.Fatalf("%s: input %s", model, r.Raw)
			}
			// The assistant turn goes back as returned, then the tool's result.
			inf.Fake.Reset()
			body["messages"] = []any{question,
				map[string]any{"role": "assistant", "content": content},
				map[string]any{"role": "user", "content": []any{
					map[string]any{"type": "tool_result", "tool_use_id": id, "content": "sunny, 24 degrees"},
					map[string]any{"type": "text", "text": "thanks [[words:4]]"}}}}
			r = inf.message(key, body).want(200)
			if r.str("stop_reason") != "end_turn" || r.str("content.0.type") != "text" || len(strings.Fields(r.str("content.0.text"))) != 4 {
				t.Fatalf("%s: after the tool result %s", model, r.Raw)
			}
			reqs := inf.Fake.Requests()
			if len(reqs) != 1 || !strings.Contains(string(reqs[0].Body), "sunny, 24 degrees") || !strings.Contains(string(reqs[0].Body), "get_weather") {
				t.Fatalf("%s: upstream got %d requests: %s", model, len(reqs), reqs[0].Body)
			}
			if model != "google/gemini-1.5-flash" && !strings.Contains(string(reqs[0].Body), id) { // Gemini matches calls by name
				t.Fatalf("%s: the tool_use id %s did not reach the upstream: %s", model, id, reqs[0].Body)
			}

			// Streamed: a tool_use block whose input_json_delta fragments add up to the input.
			delete(body, "tool_choice")
			body["tool_choice"] = map[string]any{"type": "tool", "name": "get_weather"}
			body["messages"] = []any{question}
			_, events := inf.messageStream(key, body)
			s := readStream(t, events)
			last := len(s.Blocks) - 1
			if s.Error != nil || s.StopReason != "tool_use" || last < 0 || s.Blocks[last]["type"] != "tool_use" ||
				s.Blocks[last]["name"] != "get_weather" || s.Blocks[last]["id"] == "" {
				t.Fatalf("%s: streamed tool call %+v", model, s)
			}
			var input map[string]any
			if err := json.Unmarshal([]byte(s.Texts[last]), &input); err != nil || input["input"] != "fake" {
				t.Fatalf("%s: streamed input %q", model, s.Texts[last])
			}
			if !strings.Contains(events[len(events)-2].Raw, `"cost_micros"`) {
				t.Fatalf("%s: no cost in %s", model, events[len(events)-2].Raw)
			}
		}
		inf.invariant(u.ID)
	})
}

func TestMessagesImageInput(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		const data = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
		wants := map[string][]string{
			"openai/gpt-4o-mini":                  {`"url":"data:image/png;base64,` + data},
			"anthropic/claude-3-5-haiku-20241022": {`"media_type":"image/png"`, `"data":"` + data},
			"google/gemini-1.5-flash":             {`"mimeType":"image/png"`, `"data":"` + data},
		}
		for model, want := range wants {
			inf.Fake.Reset()
			r := inf.message(key, messageBody(model, 50, []any{
				map[string]any{"type": "image", "source": map[string]any{"type": "base64", "media_type": "image/png", "data": data}},
				map[string]any{"type": "text", "text": "What is this? [[words:3]]"},
			})).want(200)
			if len(strings.Fields(r.str("content.0.text"))) != 3 {
				t.Fatalf("%s: %s", model, r.Raw)
			}
			reqs := inf.Fake.Requests()
			for _, w := range want {
				if len(reqs) != 1 || !strings.Contains(string(reqs[0].Body), w) {
					t.Fatalf("%s: upstream body lacks %s: %s", model, w, reqs[0].Body)
				}
			}
		}
		// A URL image reaches an OpenAI-format upstream as its URL.
		inf.Fake.Reset()
		inf.message(key, messageBody("openai/gpt-4o-mini", 50, []any{
			map[string]any{"type": "image", "source": map[string]any{"type": "url", "url": "https://example.com/cat.png"}},
			map[string]any{"type": "text", "text": "and this?"},
		})).want(200)
		if reqs := inf.Fake.Requests(); len(reqs) != 1 || !strings.Contains(string(reqs[0].Body), `"url":"https://example.com/cat.png"`) {
			t.Fatalf("url image: %v", reqs)
		}
		// A bad media type is refused before the upstream.
		inf.Fake.Reset()
		inf.message(key, messageBody("openai/gpt-4o-mini", 50, []any{
			map[string]any{"type": "image", "source": map[string]any{"type": "base64", "media_type": "image/bmp", "data": data}},
		})).wantAnthropicError(400, "invalid_request_error", "invalid_request")
		if len(inf.Fake.Requests()) != 0 {
			t.Fatal("a refused request reached the upstream")
		}
		inf.invariant(u.ID)
	})
}

func TestMessagesErrors(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		// A 1s retry budget: the fake's 429 (Retry-After: 2) is answered at once.
		inf := newInferenceWith(t, dialect, fakeupstream.Options{}, func(pc *providers.Config) { pc.RetryBudget = time.Second })
		u, key := inf.fundedKey("10", nil)
		ok := messageBody("openai/gpt-4o-mini", 50, "hi")

		if r := inf.message("sk-beaver-not-a-key", ok).wantAnthropicError(401, "authentication_error", "invalid_api_key"); r.Header.Get("Request-Id") == "" {
			t.Fatal("401 without request-id")
		}
		inf.do("POST", "/v1/messages", "", ok).wantAnthropicError(401, "authentication_error", "unauthorized")

		r := inf.message(key, map[string]any{"model": "openai/gpt-4o-mini", "messages": []any{msg("hi")}}).
			wantAnthropicError(400, "invalid_request_error", "invalid_request")
		if r.str("error.param") != "max_tokens" || !strings.Contains(r.str("error.message"), "max_tokens") ||
			r.str("request_id") != r.Header.Get("X-Request-Id") {
			t.Fatalf("missing max_tokens: %s", r.Raw)
		}
		inf.message(key, messageBody("openai/gpt-4o-mini", 50, "hi", "n", 2)).wantAnthropicError(400, "invalid_request_error", "invalid_request")
		inf.message(key, messageBody("nobody/no-such-model", 50, "hi")).wantAnthropicError(404, "not_found_error", "model_not_found")
		inf.message(key, `{"model":`).wantAnthropicError(400, "invalid_request_error", "invalid_request")

		// 402: the balance cannot cover the prompt; the upstream is not called.
		poor, poorKey := inf.fundedKey("0", nil)
		inf.Fake.Reset()
		r = inf.message(poorKey, ok).wantAnthropicError(402, "billing_error", "insufficient_balance")
		if r.str("error.limit_source") != "balance" || len(inf.Fake.Requests()) != 0 {
			t.Fatalf("402: %s, upstream calls %d", r.Raw, len(inf.Fake.Requests()))
		}
		// 403: a model the key may not use.
		_, narrowKey := inf.fundedKey("1", map[string]any{"name": "narrow", "allowed_models": []string{"openai/gpt-4o-mini"}})
		inf.message(narrowKey, messageBody("anthropic/claude-3-5-haiku-20241022", 50, "hi")).
			wantAnthropicError(403, "permission_error", "forbidden")

		// Upstream failures before any output cost nothing; 429 keeps Retry-After.
		before, _ := inf.balance(u.Token)
		for _, model := range messageModels[:3] {
			r := inf.message(key, messageBody(model, 50, "hi [[error:429]]")).wantAnthropicError(429, "rate_limit_error", "upstream_rate_limited")
			if r.Header.Get("Retry-After") == "" {
				t.Fatalf("%s: 429 without Retry-After", model)
			}
			inf.message(key, messageBody(model, 50, "hi [[error:500]]")).wantAnthropicError(502, "api_error", "upstream_error")
			inf.message(key, messageBody(model, 50, "hi [[error:400]]")).wantAnthropicError(400, "invalid_request_error", "invalid_request")
			res, _ := inf.messageStream(key, messageBody(model, 50, "hi [[error:429]]"))
			if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" {
				t.Fatalf("%s: stream 429: %d", model, res.StatusCode)
			}
		}
		if after, _ := inf.balance(u.Token); after != before {
			t.Fatalf("failed requests cost %d", before-after)
		}

		// A stream that fails mid-way (an upstream error event, or a cut
		// connection) ends with Anthropic's error event and is charged for
		// what was delivered, once.
		for _, model := range messageModels[:3] {
			for _, directive := range []string{"[[midstream-error:3]]", "[[cut:3]]"} {
				before, _ := inf.balance(u.Token)
				res, events := inf.messageStream(key, messageBody(model, 50, "go "+directive))
				s := readStream(t, events)
				if s.Error == nil || s.Error["type"] != "api_error" || s.Error["message"] == "" || len(s.Texts) != 1 ||
					len(strings.Fields(s.Texts[0])) != 3 {
					t.Fatalf("%s %s: mid-stream error %+v", model, directive, s)
				}
				after, _ := inf.balance(u.Token)
				genID := res.Header.Get("X-Beaver-Generation-Id")
				g := inf.do("GET", "/v1/generation?id="+s.ID, key, nil).want(200)
				cost := g.num("data.charged_micros")
				if g.get("data.error") == nil || cost <= 0 || g.num("data.completion_tokens") < 3 {
					t.Fatalf("%s %s: generation %s", model, directive, g.Raw)
				}
				inf.chargedOnce(u.ID, genID, cost, before, after)
			}
		}
		inf.invariant(u.ID)
		inf.invariant(poor.ID)
	})
}

// The per-minute limit answers 429 rate_limit_error with Retry-After on
// this surface too, counted before the body is read.
func TestMessagesRateLimit(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		_, key := inf.fundedKey("10", map[string]any{"name": "slow", "rpm_limit": 1})
		inf.message(key, `not json`).wantAnthropicError(400, "invalid_request_error", "invalid_request")
		r := inf.message(key, messageBody("openai/gpt-4o-mini", 50, "hi")).wantAnthropicError(429, "rate_limit_error", "rate_limit_exceeded")
		if r.Header.Get("Retry-After") == "" || r.Header.Get("X-RateLimit-Limit") != "1" {
			t.Fatalf("429 headers %v", r.Header)
		}
	})
}
