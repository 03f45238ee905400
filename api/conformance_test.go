package api_test

// The conformance test: Beaver's real answers, captured from a running API
// over the fake upstreams of every wire format, validated against OpenAI's
// published schemas (testdata/openapi: which schemas, from which commit),
// and driven through the official Go SDK where clients rely on more than the
// shape.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/santhosh-tekuri/jsonschema/v6"

	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/providers"
)

// openAISpec is the vendored extract of OpenAI's spec, compiled.
type openAISpec struct {
	schemas map[string]*jsonschema.Schema
	// events names each Responses stream event's schema by its type
	// (response.created: ResponseCreatedEvent), from ResponseStreamEvent.
	events map[string]string
}

const specFile = "testdata/openapi/openai-openapi.json"

func loadOpenAISpec(t *testing.T) *openAISpec {
	t.Helper()
	f, err := os.Open(specFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", specFile, err)
	}
	comps, _ := doc.(map[string]any)["components"].(map[string]any)
	schemas, _ := comps["schemas"].(map[string]any)
	if len(schemas) == 0 {
		t.Fatalf("%s: no components.schemas", specFile)
	}
	defs := make(map[string]any, len(schemas))
	for name, s := range schemas {
		defs[name] = toJSONSchema(s, name)
	}
	const url = "openai-openapi.schema.json"
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(url, map[string]any{"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": defs}); err != nil {
		t.Fatal(err)
	}
	spec := &openAISpec{schemas: map[string]*jsonschema.Schema{}, events: map[string]string{}}
	union, _ := schemas["ResponseStreamEvent"].(map[string]any)
	members, _ := union["anyOf"].([]any)
	for _, m := range members {
		name := strings.TrimPrefix(m.(map[string]any)["$ref"].(string), "#/components/schemas/")
		props, _ := schemas[name].(map[string]any)["properties"].(map[string]any)
		typ, _ := props["type"].(map[string]any)
		if enum, _ := typ["enum"].([]any); len(enum) == 1 {
			spec.events[enum[0].(string)] = name
		}
	}
	for name := range defs {
		sch, err := c.Compile(url + "#/$defs/" + name)
		if err != nil {
			t.Fatalf("compile %s: %v", name, err)
		}
		spec.schemas[name] = sch
	}
	return spec
}

// toJSONSchema turns an OpenAPI schema (3.0, or 3.1 as OpenAI writes it)
// into JSON Schema 2020-12: nullable: true admits null (in type, and in enum
// when there is one), #/components/schemas/X references point at #/$defs/X,
// and draft 2019-09's recursion ($recursiveAnchor, $recursiveRef "#" in
// CompoundFilter) becomes a plain reference to the schema def itself.
func toJSONSchema(v any, def string) any {
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = toJSONSchema(x, def)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			switch k {
			case "nullable", "$recursiveAnchor":
			case "$recursiveRef":
				if x != "#" {
					panic("$recursiveRef " + x.(string))
				}
				out["$ref"] = "#/$defs/" + def
			case "$ref":
				out[k] = strings.Replace(x.(string), "#/components/schemas/", "#/$defs/", 1)
			case "properties": // keys are field names, not keywords
				props := map[string]any{}
				for name, s := range x.(map[string]any) {
					props[name] = toJSONSchema(s, def)
				}
				out[k] = props
			default:
				out[k] = toJSONSchema(x, def)
			}
		}
		if v["nullable"] != true {
			return out
		}
		if e, ok := out["enum"].([]any); ok {
			out["enum"] = append(e, nil)
		}
		if t, ok := out["type"].(string); ok {
			out["type"] = []any{t, "null"}
			return out
		}
		return map[string]any{"anyOf": []any{out, map[string]any{"type": "null"}}}
	}
	return v
}

// check validates one captured JSON answer against the named schema.
func (s *openAISpec) check(t *testing.T, schema, what string, raw []byte) {
	t.Helper()
	sch := s.schemas[schema]
	if sch == nil {
		t.Fatalf("no schema %s in %s", schema, specFile)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", what, err, raw)
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("%s does not match OpenAI's %s:\n%v\nbody: %s", what, schema, err, raw)
	}
}

// checkError validates an error answer: its status and code, OpenAI's
// ErrorResponse (message, type, param and code, param null or a field name).
func (s *openAISpec) checkError(t *testing.T, what string, r *resp, status int, code string) {
	t.Helper()
	r.wantError(status, code)
	s.check(t, "ErrorResponse", what, r.Raw)
}

// sseEvent is one data payload of a captured stream.
type sseEvent struct {
	raw   string
	chunk map[string]any // nil for the error event
	err   map[string]any // the error event's error object
}

// checkStream validates every event of a stream (chunks against
// CreateChatCompletionStreamResponse, the error event against
// ErrorResponse) and its order, as OpenAI sends it and SDKs expect it:
// content chunks, one finish chunk (empty delta, non-null finish_reason),
// the usage chunk (choices []), [DONE]. A failed stream has OpenAI's error
// event just before its finish chunk. It returns the events before [DONE].
func (s *openAISpec) checkStream(t *testing.T, what string, data []string, failed bool) []sseEvent {
	t.Helper()
	if len(data) < 3 || data[len(data)-1] != "[DONE]" {
		t.Fatalf("%s: stream does not end with [DONE]: %q", what, data)
	}
	var events []sseEvent
	for i, d := range data[:len(data)-1] {
		var m map[string]any
		if err := json.Unmarshal([]byte(d), &m); err != nil {
			t.Fatalf("%s: event %d is not JSON: %q", what, i, d)
		}
		if _, isChunk := m["object"]; !isChunk {
			s.check(t, "ErrorResponse", what+": error event", []byte(d))
			e, _ := m["error"].(map[string]any)
			events = append(events, sseEvent{raw: d, err: e})
			continue
		}
		s.check(t, "CreateChatCompletionStreamResponse", what+": chunk", []byte(d))
		events = append(events, sseEvent{raw: d, chunk: m})
	}
	n := len(events)
	usage, finish := events[n-1].chunk, events[n-2].chunk
	if usage == nil || usage["usage"] == nil || len(usage["choices"].([]any)) != 0 {
		t.Fatalf("%s: last chunk is not the usage chunk: %s", what, events[n-1].raw)
	}
	if finish == nil {
		t.Fatalf("%s: no finish chunk before the usage chunk: %s", what, events[n-2].raw)
	}
	ch := finish["choices"].([]any)
	if len(ch) != 1 {
		t.Fatalf("%s: finish chunk has %d choices: %s", what, len(ch), events[n-2].raw)
	}
	c := ch[0].(map[string]any)
	if c["finish_reason"] == nil || len(c["delta"].(map[string]any)) != 0 {
		t.Fatalf("%s: finish chunk is not an empty delta with a finish_reason: %s", what, events[n-2].raw)
	}
	errEvents := 0
	for i, e := range events[:n-2] {
		if e.chunk == nil {
			errEvents++
			if !failed || i != n-3 {
				t.Fatalf("%s: error event %d of %d: %s", what, i, n, e.raw)
			}
			continue
		}
		if e.chunk["id"] != usage["id"] {
			t.Fatalf("%s: chunk ids differ: %s vs %s", what, e.raw, events[n-1].raw)
		}
		for _, c := range e.chunk["choices"].([]any) {
			if c.(map[string]any)["finish_reason"] != nil {
				t.Fatalf("%s: finish_reason before the finish chunk: %s", what, e.raw)
			}
		}
	}
	if failed {
		if errEvents != 1 || finish["error"] == nil || c["finish_reason"] != "length" {
			t.Fatalf("%s: a failed stream ends with the error event and a length finish chunk carrying the error: %q", what, data)
		}
		if b, _ := json.Marshal(events[n-3].err); !bytes.Equal(b, mustMarshal(finish["error"])) {
			t.Fatalf("%s: error event %s and final chunk's error %s differ", what, b, mustMarshal(finish["error"]))
		}
	} else if errEvents != 0 || finish["error"] != nil {
		t.Fatalf("%s: error in a stream that did not fail: %q", what, data)
	}
	return events
}

func mustMarshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

var conformanceTools = []any{map[string]any{"type": "function", "function": map[string]any{
	"name": "lookup", "description": "look a word up",
	"parameters": map[string]any{"type": "object", "properties": map[string]any{"input": map[string]any{"type": "string"}}},
}}}

// conformanceModels are one model per wire format, and an OpenAI-compatible one.
var conformanceModels = []string{"openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-20241022", "google/gemini-1.5-flash", "deepseek/deepseek-chat"}

// newConformance is an inference harness whose providers time out quickly
// (for the 504) and do not retry, with a funded key that no per-minute limit
// applies to.
func newConformance(t *testing.T) (inf *inference, key string) {
	t.Helper()
	inf = newInferenceWith(t, "sqlite", fakeupstream.Options{}, func(pc *providers.Config) {
		pc.FirstByteTimeout, pc.MaxRetries = 500*time.Millisecond, -1
	})
	u, key := inf.fundedKey("10", nil)
	inf.do("PATCH", "/admin/accounts/"+u.ID, inf.Admin.Token, map[string]any{"rpm_limit": 0}).want(200)
	return inf, key
}

func TestChatAnswersMatchOpenAISchemas(t *testing.T) {
	spec := loadOpenAISpec(t)
	inf, key := newConformance(t)
	for _, model := range conformanceModels {
		t.Run(strings.ReplaceAll(model, "/", "_"), func(t *testing.T) {
			// Non-streaming, on both inference routes.
			for _, path := range []string{"/v1/chat/completions", "/v1/models/" + model + "/chat"} {
				r := inf.do("POST", path, key, chatBody(model, "hello [[words:5]]")).want(200)
				spec.check(t, "CreateChatCompletionResponse", "POST "+path, r.Raw)
				c := r.list("choices")[0].(map[string]any)
				m := c["message"].(map[string]any)
				if lp, ok := c["logprobs"]; !ok || lp != nil {
					t.Errorf("%s: logprobs is not null: %s", path, r.Raw)
				}
				if rf, ok := m["refusal"]; !ok || rf != nil {
					t.Errorf("%s: message.refusal is not null: %s", path, r.Raw)
				}
			}

			// A tool call.
			r := inf.do("POST", "/v1/chat/completions", key, chatBody(model, "call it [[tool]]", "tools", conformanceTools)).want(200)
			spec.check(t, "CreateChatCompletionResponse", "tool call", r.Raw)
			if r.str("choices.0.finish_reason") != "tool_calls" || r.str("choices.0.message.tool_calls.0.function.name") != "lookup" {
				t.Fatalf("tool call answer %s", r.Raw)
			}

			// Streams: text, a tool call, and one that fails midway.
			_, data := inf.stream(key, chatBody(model, "stream [[words:4]]"))
			spec.checkStream(t, "text stream", data, false)

			_, data = inf.stream(key, chatBody(model, "call it [[tool]]", "tools", conformanceTools))
			events := spec.checkStream(t, "tool call stream", data, false)
			calls := 0
			for _, e := range events {
				for _, c := range e.chunk["choices"].([]any) {
					if tc, ok := c.(map[string]any)["delta"].(map[string]any)["tool_calls"]; ok {
						calls += len(tc.([]any))
					}
				}
			}
			if calls == 0 || !strings.Contains(events[len(events)-2].raw, `"finish_reason":"tool_calls"`) {
				t.Fatalf("tool call stream without tool calls or their finish: %q", data)
			}

			_, data = inf.stream(key, chatBody(model, "fail [[midstream-error:2]]"))
			spec.checkStream(t, "failed stream", data, true)

			// Upstream errors before any output.
			for _, c := range []struct {
				directive string
				status    int
				code      string
			}{
				{"[[error:400]]", 400, "invalid_request"},
				{"[[error:401]]", 502, "upstream_error"},
				{"[[error:429]]", 429, "upstream_rate_limited"},
				{"[[error:500]]", 502, "upstream_error"},
				{"[[slow:3000]]", 504, "upstream_timeout"},
			} {
				for _, stream := range []bool{false, true} {
					r := inf.do("POST", "/v1/chat/completions", key, chatBody(model, "x "+c.directive, "stream", stream))
					spec.checkError(t, c.directive, r, c.status, c.code)
				}
			}
		})
	}
}

func TestModelListMatchesOpenAISchema(t *testing.T) {
	spec := loadOpenAISpec(t)
	inf, _ := newConformance(t)
	r := inf.do("GET", "/v1/models", "", nil).want(200)
	if len(r.list("data")) == 0 {
		t.Fatalf("no models: %s", r.Raw)
	}
	spec.check(t, "ListModelsResponse", "GET /v1/models", r.Raw)
	for _, path := range []string{"/v1/models/openai/gpt-4o-mini", "/v1/models/openai%2Fgpt-4o-mini"} {
		r = inf.do("GET", path, "", nil).want(200)
		spec.check(t, "Model", "GET "+path, r.Raw)
	}
	r = inf.do("GET", "/v1/models/openai/no-such-model", "", nil)
	spec.checkError(t, "GET unknown model", r, 404, "model_not_found")
	if r.get("error.param") != "model" {
		t.Errorf("GET unknown model: param %v: %s", r.get("error.param"), r.Raw)
	}
	// GET on a chat path: 405.
	spec.checkError(t, "GET chat path", inf.do("GET", "/v1/models/openai/gpt-4o-mini/chat", "", nil), 405, "method_not_allowed")
}

// Every kind of error Beaver answers, on inference and elsewhere, is
// OpenAI's ErrorResponse (with error.param, null or the field at fault).
func TestErrorsMatchOpenAISchema(t *testing.T) {
	spec := loadOpenAISpec(t)
	inf, key := newConformance(t)
	model := "openai/gpt-4o-mini"

	// 400, with and without a field named.
	r := inf.do("POST", "/v1/chat/completions", key, `{"model":`)
	spec.checkError(t, "malformed body", r, 400, "invalid_request")
	r = inf.do("POST", "/v1/chat/completions", key, chatBody(model, "hi", "frobnicate", 1))
	spec.checkError(t, "unknown field", r, 400, "invalid_request")
	if r.get("error.param") != "frobnicate" {
		t.Errorf("unknown field: param %v: %s", r.get("error.param"), r.Raw)
	}
	r = inf.do("POST", "/v1/chat/completions", key, chatBody(model, "hi", "temperature", 7))
	spec.checkError(t, "temperature", r, 400, "invalid_request")
	if r.get("error.param") != "temperature" {
		t.Errorf("temperature: param %v: %s", r.get("error.param"), r.Raw)
	}
	r = inf.do("POST", "/v1/chat/completions", key, map[string]any{"messages": []any{msg("hi")}})
	spec.checkError(t, "no model", r, 400, "invalid_request")
	if r.get("error.param") != "model" {
		t.Errorf("no model: param %v: %s", r.get("error.param"), r.Raw)
	}
	spec.checkError(t, "register", inf.do("POST", "/auth/register", "", map[string]any{"email": "nope"}), 400, "invalid_request")

	// 401.
	spec.checkError(t, "no credentials", inf.do("POST", "/v1/chat/completions", "", chatBody(model, "hi")), 401, "unauthorized")
	spec.checkError(t, "bad key", inf.do("POST", "/v1/chat/completions", "sk-beaver-nope", chatBody(model, "hi")), 401, "invalid_api_key")
	spec.checkError(t, "bad login", inf.do("POST", "/auth/login", "", map[string]any{"email": "no@example.com", "password": "wrong-password-1"}), 401, "unauthorized")

	// 402 (param stays null; limit_source is an extra field).
	_, broke := inf.fundedKey("0", nil)
	r = inf.do("POST", "/v1/chat/completions", broke, chatBody(model, "hi"))
	spec.checkError(t, "no balance", r, 402, "insufficient_balance")
	if r.get("error.limit_source") != "balance" {
		t.Errorf("402 without limit_source: %s", r.Raw)
	}

	// 403.
	u, _ := inf.fundedKey("1", nil)
	_, narrow := inf.createKey(u, map[string]any{"name": "narrow", "allowed_models": []string{"openai/gpt-4o"}})
	spec.checkError(t, "model not allowed", inf.do("POST", "/v1/chat/completions", narrow, chatBody(model, "hi")), 403, "forbidden")
	spec.checkError(t, "admin route", inf.do("GET", "/admin/accounts", u.Token, nil), 403, "forbidden")

	// 404: unknown route, unknown model, unknown generation.
	spec.checkError(t, "no route", inf.do("GET", "/v1/nothing-here", key, nil), 404, "not_found")
	r = inf.do("POST", "/v1/chat/completions", key, chatBody("openai/no-such-model", "hi"))
	spec.checkError(t, "unknown model", r, 404, "model_not_found")
	spec.checkError(t, "unknown generation", inf.do("GET", "/v1/generation?id=nope", key, nil), 404, "not_found")

	// 405.
	spec.checkError(t, "wrong method", inf.do("DELETE", "/v1/chat/completions", key, nil), 405, "method_not_allowed")

	// 429: the key's per-minute limit, whose Retry-After is the true wait.
	_, limited := inf.createKey(u, map[string]any{"name": "one a minute", "rpm_limit": 1})
	inf.do("POST", "/v1/chat/completions", limited, chatBody(model, "hi")).want(200)
	r = inf.do("POST", "/v1/chat/completions", limited, chatBody(model, "hi"))
	spec.checkError(t, "rpm limit", r, 429, "rate_limit_exceeded")
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("429 Retry-After %q, want 1..60", r.Header.Get("Retry-After"))
	}
	// 502 and 504 on streams and non-streams are covered per provider in
	// TestChatAnswersMatchOpenAISchemas.
}

// The schemas catch what the issue found: the former answers fail them, so
// the checks above are not vacuous.
func TestOpenAISchemasRejectTheFormerShapes(t *testing.T) {
	spec := loadOpenAISpec(t)
	for _, c := range []struct{ schema, name, body string }{
		{"CreateChatCompletionResponse", "no logprobs, no refusal",
			`{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`},
		{"CreateChatCompletionResponse", "no refusal",
			`{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"logprobs":null,"finish_reason":"stop"}]}`},
		{"ErrorResponse", "no param", `{"error":{"message":"m","type":"t","code":"c"}}`},
		{"CreateChatCompletionStreamResponse", `finish_reason "error"`,
			`{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"error"}],"error":{"message":"m","type":"t","code":"c"}}`},
		{"ListModelsResponse", "model without owned_by", `{"object":"list","data":[{"id":"m","object":"model","created":1}]}`},
		{"ResponseFunctionCallArgumentsDoneEvent", "no name",
			`{"type":"response.function_call_arguments.done","item_id":"fc_1","output_index":0,"arguments":"{}","sequence_number":3}`},
		{"ResponseUsage", "no cache_write_tokens",
			`{"input_tokens":1,"input_tokens_details":{"cached_tokens":0},"output_tokens":1,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":2}`},
		{"ResponseItemList", "input message as sent (text content)",
			`{"object":"list","data":[{"id":"msg_1","type":"message","role":"user","content":"hi"}],"first_id":"msg_1","last_id":"msg_1","has_more":false}`},
	} {
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		if err := spec.schemas[c.schema].Validate(inst); err == nil {
			t.Errorf("%s: %s passes %s", c.name, c.body, c.schema)
		}
	}
	// And null where the spec says nullable passes.
	ok := `{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":null,"refusal":null},"logprobs":null,"finish_reason":null}]}`
	spec.check(t, "CreateChatCompletionStreamResponse", "nullable fields", []byte(ok))
}

// The official Go SDK, pointed at Beaver, sees what it sees from OpenAI:
// its stream accumulator reports the finished content and tool calls for
// every wire format (Gemini's used to carry the finish on its last content
// chunk, so they never fired), non-streaming answers carry refusal and
// logprobs, a mid-stream failure is an API error, and errors carry param.
func TestOpenAIGoSDK(t *testing.T) {
	inf, key := newConformance(t)
	client := openai.NewClient(option.WithBaseURL(inf.URL+"/v1/"), option.WithAPIKey(key),
		option.WithHTTPClient(inf.Client), option.WithMaxRetries(0))
	ctx := context.Background()
	tool := openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{Name: "lookup",
		Parameters: openai.FunctionParameters{"type": "object", "properties": map[string]any{"input": map[string]any{"type": "string"}}}})

	for _, model := range conformanceModels {
		t.Run(strings.ReplaceAll(model, "/", "_"), func(t *testing.T) {
			// Content.
			stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("say [[words:4]]")}})
			var acc openai.ChatCompletionAccumulator
			var finished []string
			for stream.Next() {
				if !acc.AddChunk(stream.Current()) {
					t.Fatalf("accumulator refused chunk %s", stream.Current().RawJSON())
				}
				if content, ok := acc.JustFinishedContent(); ok {
					finished = append(finished, content)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("stream: %v", err)
			}
			if len(finished) != 1 || len(strings.Fields(finished[0])) != 4 || acc.Choices[0].FinishReason != "stop" {
				t.Fatalf("JustFinishedContent fired with %q; finish_reason %q", finished, acc.Choices[0].FinishReason)
			}

			// A tool call.
			stream = client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("call [[tool]]")},
				Tools:    []openai.ChatCompletionToolUnionParam{tool}})
			acc = openai.ChatCompletionAccumulator{}
			var calls []openai.FinishedChatCompletionToolCall
			for stream.Next() {
				acc.AddChunk(stream.Current())
				if tc, ok := acc.JustFinishedToolCall(); ok {
					calls = append(calls, tc)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("tool stream: %v", err)
			}
			if len(calls) != 1 || calls[0].Name != "lookup" || calls[0].ID == "" || !json.Valid([]byte(calls[0].Arguments)) {
				t.Fatalf("JustFinishedToolCall fired with %+v", calls)
			}
			if acc.Choices[0].FinishReason != "tool_calls" {
				t.Fatalf("tool stream finish_reason %q", acc.Choices[0].FinishReason)
			}

			// Non-streaming: refusal and logprobs are there, as null.
			resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi [[words:3]]")}})
			if err != nil {
				t.Fatal(err)
			}
			if c := resp.Choices[0]; c.Message.JSON.Refusal.Raw() != "null" || c.JSON.Logprobs.Raw() != "null" || c.Message.Content == "" {
				t.Fatalf("refusal %q, logprobs %q, content %q", c.Message.JSON.Refusal.Raw(), c.JSON.Logprobs.Raw(), c.Message.Content)
			}

			// A mid-stream failure is an error for the SDK, after the content delivered.
			stream = client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("fail [[midstream-error:2]]")}})
			n := 0
			for stream.Next() {
				n++
			}
			if err := stream.Err(); err == nil || n < 2 {
				t.Fatalf("failed stream: %d chunks, err %v", n, err)
			}
		})
	}

	// Errors: the SDK's typed error, with param.
	_, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "openai/gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}, Temperature: openai.Float(7)})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || apiErr.Param != "temperature" || apiErr.Code != "invalid_request" {
		t.Fatalf("bad request: %v", err)
	}
	_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "openai/no-such-model",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || apiErr.JSON.Param.Raw() != "null" {
		t.Fatalf("unknown model: %v, want a 404 with param null", err)
	}
}

// checkEvents validates every event of a Responses stream against its own
// schema (the member of ResponseStreamEvent its type names) and against the
// union, and returns the event types in order. An event type the spec does
// not know fails.
func (s *openAISpec) checkEvents(t *testing.T, what string, events []respEvent) []string {
	t.Helper()
	if len(events) == 0 {
		t.Fatalf("%s: no events", what)
	}
	types := make([]string, len(events))
	for i, e := range events {
		types[i] = e.str("type")
		schema := s.events[types[i]]
		if schema == "" {
			t.Fatalf("%s: event %d has a type OpenAI's ResponseStreamEvent does not know: %s", what, i, e.Raw)
		}
		s.check(t, schema, what+": "+types[i], []byte(e.Raw))
		s.check(t, "ResponseStreamEvent", what+": "+types[i], []byte(e.Raw))
	}
	return types
}

var conformanceResponseTools = []any{map[string]any{"type": "function", "name": "lookup", "description": "look a word up",
	"parameters": map[string]any{"type": "object", "properties": map[string]any{"input": map[string]any{"type": "string"}}}}}

// deleteResponseSchema is the answer to DELETE /v1/responses/{id}. The spec
// gives that operation no schema (200 "OK", and an example body); this is
// the shape of its other Delete*Response schemas, with the object OpenAI
// answers.
const deleteResponseSchema = `{"type":"object","required":["id","object","deleted"],"properties":{
	"id":{"type":"string"},"object":{"type":"string","enum":["response.deleted"]},"deleted":{"type":"boolean","enum":[true]}}}`

// Beaver's /v1/responses answers, stored-response reads and every stream
// event match OpenAI's published Responses schemas, for each wire format
// and for reasoning models.
func TestResponsesAnswersMatchOpenAISchemas(t *testing.T) {
	spec := loadOpenAISpec(t)
	inf, key := newConformance(t)
	inf.addGemini3()
	models := append(append([]string{}, conformanceModels...), "deepseek/deepseek-reasoner", gemini3)
	for _, model := range models {
		t.Run(strings.ReplaceAll(model, "/", "_"), func(t *testing.T) {
			// Non-streamed: text (with reasoning on the reasoning models), a tool call.
			text, thinks := "hello [[words:5]]", ""
			if model == "deepseek/deepseek-reasoner" || model == gemini3 {
				thinks = " [[reasoning:12]]"
				text += thinks
			}
			r := inf.do("POST", "/v1/responses", key, responsesBody(model, text, "instructions", "Be brief.")).want(200)
			spec.check(t, "Response", "POST /v1/responses", r.Raw)
			id := r.str("id")
			// DeepSeek's reasoner answers its thoughts (Gemini's, only a signature on a call).
			if model == "deepseek/deepseek-reasoner" && r.str("output.0.type") != "reasoning" {
				t.Fatalf("no reasoning item: %s", r.Raw)
			}
			call := inf.do("POST", "/v1/responses", key, responsesBody(model, "call it [[tool]]"+thinks, "tools", conformanceResponseTools)).want(200)
			spec.check(t, "Response", "tool call", call.Raw)
			out := call.list("output")
			if last := out[len(out)-1].(map[string]any); last["type"] != "function_call" || last["name"] != "lookup" {
				t.Fatalf("tool call answer %s", call.Raw)
			}
			// max_output_tokens reached: incomplete.
			inc := inf.do("POST", "/v1/responses", key, responsesBody(model, "long [[words:50]]", "max_output_tokens", 4)).want(200)
			spec.check(t, "Response", "incomplete", inc.Raw)

			// The stored response, its input items, its deletion.
			got := inf.do("GET", "/v1/responses/"+id, key, nil).want(200)
			spec.check(t, "Response", "GET /v1/responses/{id}", got.Raw)
			items := inf.do("GET", "/v1/responses/"+id+"/input_items", key, nil).want(200)
			spec.check(t, "ResponseItemList", "GET input_items", items.Raw)
			if len(items.list("data")) == 0 {
				t.Fatalf("no input items: %s", items.Raw)
			}
			// A tool loop's second turn has every kind of input item (an
			// earlier assistant message too, where the model takes one
			// without its reasoning).
			result := map[string]any{"type": "function_call_output", "call_id": out[len(out)-1].(map[string]any)["call_id"], "output": "it is 42"}
			input := []any{map[string]any{"role": "user", "content": "call it"}}
			if thinks == "" {
				input = []any{map[string]any{"role": "developer", "content": "Be brief."}, map[string]any{"role": "user", "content": "hi"},
					map[string]any{"role": "assistant", "content": "hello"}, map[string]any{"type": "message", "role": "user",
						"content": []any{map[string]any{"type": "input_text", "text": "call it"}}}}
			}
			input = append(append(input, out...), result)
			second := inf.do("POST", "/v1/responses", key, responsesBody(model, input, "tools", conformanceResponseTools)).want(200)
			spec.check(t, "Response", "second turn", second.Raw)
			items = inf.do("GET", "/v1/responses/"+second.str("id")+"/input_items?order=asc", key, nil).want(200)
			spec.check(t, "ResponseItemList", "GET input_items of a tool loop", items.Raw)
			if len(items.list("data")) != len(input) {
				t.Fatalf("input items %s", items.Raw)
			}
			del := inf.do("DELETE", "/v1/responses/"+id, key, nil).want(200)
			delSchema, err := jsonschema.UnmarshalJSON(strings.NewReader(deleteResponseSchema))
			if err != nil {
				t.Fatal(err)
			}
			c := jsonschema.NewCompiler()
			if err := c.AddResource("delete.json", delSchema); err != nil {
				t.Fatal(err)
			}
			inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(del.Raw))
			if err := c.MustCompile("delete.json").Validate(inst); err != nil || del.str("id") != id {
				t.Fatalf("DELETE %s: %v", del.Raw, err)
			}
			spec.checkError(t, "GET deleted", inf.do("GET", "/v1/responses/"+id, key, nil), 404, "not_found")

			// Streams: text, a tool call, a failure midway, incomplete.
			_, events := inf.streamResponses(key, responsesBody(model, text))
			types := spec.checkEvents(t, "text stream", events)
			if types[0] != "response.created" || types[1] != "response.in_progress" || types[len(types)-1] != "response.completed" ||
				!slices.Contains(types, "response.output_text.delta") || !slices.Contains(types, "response.output_text.done") ||
				!slices.Contains(types, "response.content_part.added") || !slices.Contains(types, "response.content_part.done") ||
				!slices.Contains(types, "response.output_item.added") || !slices.Contains(types, "response.output_item.done") {
				t.Fatalf("text stream: %v", types)
			}
			if model == "deepseek/deepseek-reasoner" && !slices.ContainsFunc(types, func(s string) bool { return strings.HasPrefix(s, "response.reasoning") }) {
				t.Fatalf("reasoning stream without reasoning events: %v", types)
			}
			// The stored response of a stream is the completed event's.
			final, _ := events[len(events)-1].response()["id"].(string)
			spec.check(t, "Response", "GET a streamed response", inf.do("GET", "/v1/responses/"+final, key, nil).want(200).Raw)

			_, events = inf.streamResponses(key, responsesBody(model, "call it [[tool]]", "tools", conformanceResponseTools))
			types = spec.checkEvents(t, "tool call stream", events)
			if !slices.Contains(types, "response.function_call_arguments.delta") || !slices.Contains(types, "response.function_call_arguments.done") ||
				types[len(types)-1] != "response.completed" {
				t.Fatalf("tool call stream: %v", types)
			}

			_, events = inf.streamResponses(key, responsesBody(model, "go [[midstream-error:3]]"))
			types = spec.checkEvents(t, "failed stream", events)
			if n := len(types); types[n-2] != "error" || types[n-1] != "response.failed" {
				t.Fatalf("failed stream: %v", types)
			}

			_, events = inf.streamResponses(key, responsesBody(model, "long [[words:50]]", "max_output_tokens", 4))
			types = spec.checkEvents(t, "incomplete stream", events)
			if types[len(types)-1] != "response.incomplete" {
				t.Fatalf("incomplete stream: %v", types)
			}

			// Errors, before any output, streamed or not.
			for _, stream := range []bool{false, true} {
				r := inf.do("POST", "/v1/responses", key, responsesBody(model, "x [[error:429]]", "stream", stream))
				spec.checkError(t, "upstream 429", r, 429, "upstream_rate_limited")
			}
		})
	}
	// An unknown stored response: 404 in OpenAI's envelope.
	spec.checkError(t, "GET unknown response", inf.do("GET", "/v1/responses/resp_nope", key, nil), 404, "not_found")
	spec.checkError(t, "input_items of an unknown response", inf.do("GET", "/v1/responses/resp_nope/input_items", key, nil), 404, "not_found")
	spec.checkError(t, "DELETE unknown response", inf.do("DELETE", "/v1/responses/resp_nope", key, nil), 404, "not_found")
}
