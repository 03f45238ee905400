package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/models"
)

// Tool loops on reasoning models through /v1/messages and /v1/responses:
// the provider refuses the second turn (400) unless it gets back what came
// with the first, and the client only sends back what the answer gave it.
// DeepSeek's thinking mode wants each assistant turn's reasoning_content,
// Gemini 3 each function call's thought signature (the fake refuses both
// as the providers do).

// gemini3 is a Gemini 3 model, added to the catalog for the test (the seed
// has none) and priced with the others.
const gemini3 = "google/gemini-3-pro-preview"

func (inf *inference) addGemini3() {
	inf.t.Helper()
	now := time.Now().UTC()
	row := models.Model{ID: gemini3, Provider: "google", ProviderModel: "gemini-3-pro-preview", Name: "Gemini 3 Pro Preview",
		ContextLength: 1048576, MaxOutputTokens: 65536, Capabilities: `["tools","vision","json","reasoning"]`, Active: true,
		BaseInputMicros: 2_000_000, BaseOutputMicros: 12_000_000, CreatedAt: now, UpdatedAt: now}
	if err := inf.DB.Create(&row).Error; err != nil {
		inf.t.Fatal(err)
	}
	if _, err := inf.Catalog.Recalculate(context.Background(), "test: "+gemini3); err != nil {
		inf.t.Fatal(err)
	}
}

// reasoningModels are the models whose tool loops need their reasoning
// state back, and what of it the upstream must get on the second turn.
var reasoningModels = []struct{ model, sentBack string }{
	{"deepseek/deepseek-reasoner", `"reasoning_content":"think think`},
	{gemini3, `"thoughtSignature":"EpwICpkIAXLI2nxlU6gsWZaZHRYkX1orzuM8vSUFwaAt1JRx"`},
}

// lastUpstreamBody is the body of the fake's last request.
func (inf *inference) lastUpstreamBody() string {
	reqs := inf.Fake.Requests()
	if len(reqs) == 0 {
		return ""
	}
	return string(reqs[len(reqs)-1].Body)
}

// content is what a client accumulates from a /v1/messages stream, as
// Anthropic's SDKs do: the blocks with their text, thinking, signature and
// input filled in.
func (s streamed) content(t *testing.T) []any {
	t.Helper()
	out := make([]any, len(s.Blocks))
	for i, b := range s.Blocks {
		switch b["type"] {
		case "thinking":
			b["thinking"] = s.Texts[i]
		case "text":
			b["text"] = s.Texts[i]
		case "tool_use":
			var input any = map[string]any{}
			if s.Texts[i] != "" {
				if err := json.Unmarshal([]byte(s.Texts[i]), &input); err != nil {
					t.Fatalf("tool input %q: %v", s.Texts[i], err)
				}
			}
			b["input"] = input
		}
		out[i] = b
	}
	return out
}

func TestMessagesReasoningToolRoundTrip(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		inf.addGemini3()
		u, key := inf.fundedKey("10", nil)
		for _, tt := range reasoningModels {
			for _, stream := range []bool{false, true} {
				question := map[string]any{"role": "user", "content": "weather in Paris? [[tool]] [[reasoning:12]]"}
				body := map[string]any{"model": tt.model, "max_tokens": 200, "messages": []any{question}, "tools": []any{weatherTool}}
				var content []any
				if stream {
					_, events := inf.messageStream(key, body)
					s := readStream(t, events)
					if s.Error != nil || s.StopReason != "tool_use" {
						t.Fatalf("%s stream: %+v", tt.model, s)
					}
					content = s.content(t)
					delete(body, "stream")
				} else {
					r := inf.message(key, body).want(200)
					if r.str("stop_reason") != "tool_use" {
						t.Fatalf("%s: %s", tt.model, r.Raw)
					}
					content = r.list("content")
				}
				// The reasoning state rides on a thinking block before the call.
				first := content[0].(map[string]any)
				call := content[len(content)-1].(map[string]any)
				if first["type"] != "thinking" || call["type"] != "tool_use" {
					t.Fatalf("%s (stream %v): content %v", tt.model, stream, content)
				}
				result := map[string]any{"role": "user", "content": []any{
					map[string]any{"type": "tool_result", "tool_use_id": call["id"], "content": "sunny"},
					map[string]any{"type": "text", "text": "thanks [[words:4]]"}}}

				// Sent back as received: the provider gets its state back.
				body["messages"] = []any{question, map[string]any{"role": "assistant", "content": content}, result}
				r := inf.message(key, body).want(200)
				if r.str("stop_reason") != "end_turn" || len(strings.Fields(r.str("content.0.text"))) != 4 {
					t.Fatalf("%s (stream %v): second turn %s", tt.model, stream, r.Raw)
				}
				if up := inf.lastUpstreamBody(); !strings.Contains(up, tt.sentBack) {
					t.Fatalf("%s (stream %v): upstream got no %s: %s", tt.model, stream, tt.sentBack, up)
				}
				// Without the thinking block the provider refuses the turn.
				body["messages"] = []any{question, map[string]any{"role": "assistant", "content": content[len(content)-1:]}, result}
				inf.message(key, body).wantAnthropicError(400, "invalid_request_error", "invalid_request")
			}
		}
		inf.invariant(u.ID)
	})
}

func TestResponsesReasoningToolRoundTrip(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		inf.addGemini3()
		u, key := inf.fundedKey("10", nil)
		tools := []any{map[string]any{"type": "function", "name": "lookup", "description": "Looks things up.",
			"parameters": map[string]any{"type": "object", "properties": map[string]any{"input": map[string]any{"type": "string"}}}}}
		for _, tt := range reasoningModels {
			for _, stream := range []bool{false, true} {
				body := responsesBody(tt.model, "look it up [[tool]] [[reasoning:12]]", "tools", tools)
				var output []any
				if stream {
					_, events := inf.streamResponses(key, body)
					last := events[len(events)-1]
					if last.Name != "response.completed" {
						t.Fatalf("%s stream: %v", tt.model, eventNames(events))
					}
					output, _ = last.response()["output"].([]any)
					delete(body, "stream")
				} else {
					r := inf.do("POST", "/v1/responses", key, body).want(200)
					output = r.list("output")
				}
				// A reasoning item before the call carries the state.
				first := output[0].(map[string]any)
				call := output[len(output)-1].(map[string]any)
				if first["type"] != "reasoning" || call["type"] != "function_call" {
					t.Fatalf("%s (stream %v): output %v", tt.model, stream, output)
				}
				question := map[string]any{"role": "user", "content": "look it up"}
				result := map[string]any{"type": "function_call_output", "call_id": call["call_id"], "output": "it is 42"}

				// Sent back as received: the provider gets its state back.
				input := append(append([]any{question}, output...), result)
				r := inf.do("POST", "/v1/responses", key, responsesBody(tt.model, input, "tools", tools)).want(200)
				if r.str("status") != "completed" || r.str("output.0.type") != "message" {
					t.Fatalf("%s (stream %v): second turn %s", tt.model, stream, r.Raw)
				}
				if up := inf.lastUpstreamBody(); !strings.Contains(up, tt.sentBack) {
					t.Fatalf("%s (stream %v): upstream got no %s: %s", tt.model, stream, tt.sentBack, up)
				}
				// Without the reasoning item the provider refuses the turn.
				inf.do("POST", "/v1/responses", key, responsesBody(tt.model, []any{question, call, result}, "tools", tools)).
					wantError(400, "invalid_request")
			}
		}
		inf.invariant(u.ID)
	})
}
