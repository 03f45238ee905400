package anthropic_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers/anthropic"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
)

type stub struct {
	status int
	header map[string]string
	body   string

	mu   sync.Mutex
	path string
	got  http.Header
	raw  []byte
}

func (s *stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.path, s.got, s.raw = r.URL.Path, r.Header.Clone(), b
	s.mu.Unlock()
	for k, v := range s.header {
		w.Header().Set(k, v)
	}
	if s.status == 0 {
		s.status = 200
	}
	w.WriteHeader(s.status)
	io.WriteString(w, s.body)
}

// sent decodes what the adapter sent into v.
func (s *stub) sent(t *testing.T, v any) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := json.Unmarshal(s.raw, v); err != nil {
		t.Fatalf("adapter sent invalid JSON %s: %v", s.raw, err)
	}
}

func newAdapter(t *testing.T, h http.Handler) *anthropic.Adapter {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	a, err := anthropic.New(upstream.Config{Name: "anthropic", Format: "anthropic", BaseURL: srv.URL, APIKey: "sk-ant-test", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func parse(t *testing.T, body string) *chat.Request {
	t.Helper()
	r, err := chat.ParseRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

const docResponse = `{
  "content": [
    {
      "text": "Hi! My name is Claude.",
      "type": "text"
    }
  ],
  "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
  "model": "claude-3-5-sonnet-20241022",
  "role": "assistant",
  "stop_reason": "end_turn",
  "stop_sequence": null,
  "type": "message",
  "usage": {
    "input_tokens": 2095,
    "output_tokens": 503
  }
}`

// What the Messages API gets for a conversation with system prompts, tools,
// tool calls and results, and images.
func TestRequestTranslation(t *testing.T) {
	s := &stub{body: docResponse}
	a := newAdapter(t, s)
	req := parse(t, `{
		"model": "claude-3-5-sonnet-20241022",
		"messages": [
			{"role": "system", "content": "You are terse."},
			{"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
			{"role": "user", "content": [
				{"type": "text", "text": "Weather here and there?"},
				{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
				{"type": "image_url", "image_url": {"url": "https://example.com/sky.jpg"}}
			]},
			{"role": "assistant", "content": "Checking.", "tool_calls": [
				{"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}},
				{"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": "not json"}}
			]},
			{"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
			{"role": "tool", "tool_call_id": "toolu_2", "content": "25C"},
			{"role": "user", "content": "Thanks"}
		],
		"max_tokens": 300,
		"temperature": 1.6,
		"top_p": 0.9,
		"stop": ["END"],
		"user": "user-42",
		"tools": [{"type": "function", "function": {"name": "get_weather", "description": "Get the weather", "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}},
		          {"type": "function", "function": {"name": "now"}}],
		"tool_choice": "required",
		"parallel_tool_calls": false,
		"response_format": {"type": "json_object"}
	}`)
	if _, err := a.Complete(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if s.path != "/v1/messages" || s.got.Get("x-api-key") != "sk-ant-test" || s.got.Get("anthropic-version") != "2023-06-01" {
		t.Errorf("path %q headers %v", s.path, s.got)
	}
	var got map[string]any
	s.sent(t, &got)
	want := map[string]any{}
	json.Unmarshal([]byte(`{
		"model": "claude-3-5-sonnet-20241022",
		"max_tokens": 300,
		"system": "You are terse.\n\nUse metric units.\n\nRespond with a single valid JSON object and nothing else: no prose, no code fences.",
		"messages": [
			{"role": "user", "content": [
				{"type": "text", "text": "Weather here and there?"},
				{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
				{"type": "image", "source": {"type": "url", "url": "https://example.com/sky.jpg"}}
			]},
			{"role": "assistant", "content": [
				{"type": "text", "text": "Checking."},
				{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}},
				{"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}}
			]},
			{"role": "user", "content": [
				{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
				{"type": "tool_result", "tool_use_id": "toolu_2", "content": "25C"},
				{"type": "text", "text": "Thanks"}
			]}
		],
		"stop_sequences": ["END"],
		"temperature": 1,
		"top_p": 0.9,
		"tools": [
			{"name": "get_weather", "description": "Get the weather", "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}},
			{"name": "now", "input_schema": {"type": "object", "properties": {}}}
		],
		"tool_choice": {"type": "any", "disable_parallel_tool_use": true},
		"metadata": {"user_id": "user-42"}
	}`), &want)
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Errorf("sent\n%s\nwant\n%s", gb, wb)
	}
}

func TestRequestDefaultsAndToolChoice(t *testing.T) {
	tests := []struct {
		choice string
		want   string
	}{
		{``, `null`},
		{`,"tool_choice":"auto"`, `{"type":"auto"}`},
		{`,"tool_choice":"none"`, `{"type":"none"}`},
		{`,"tool_choice":"required"`, `{"type":"any"}`},
		{`,"tool_choice":{"type":"function","function":{"name":"f"}}`, `{"type":"tool","name":"f"}`},
	}
	for _, tt := range tests {
		s := &stub{body: docResponse}
		a := newAdapter(t, s)
		req := parse(t, `{"model":"claude-3-5-haiku-20241022","messages":[{"role":"user","content":"hi"}],
			"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{}}}}]`+tt.choice+`}`)
		if _, err := a.Complete(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		var got struct {
			MaxTokens  int             `json:"max_tokens"`
			ToolChoice json.RawMessage `json:"tool_choice"`
			Stream     *bool           `json:"stream"`
			System     *string         `json:"system"`
		}
		s.sent(t, &got)
		if got.MaxTokens != anthropic.DefaultMaxTokens || got.Stream != nil || got.System != nil {
			t.Errorf("defaults: %+v", got)
		}
		if tc := string(got.ToolChoice); tc != tt.want && !(tt.want == "null" && tc == "") {
			t.Errorf("tool_choice %s → %s, want %s", tt.choice, tc, tt.want)
		}
	}
}

func TestJSONSchemaInstruction(t *testing.T) {
	s := &stub{body: docResponse}
	a := newAdapter(t, s)
	req := parse(t, `{"model":"m","messages":[{"role":"user","content":"hi"}],
		"response_format":{"type":"json_schema","json_schema":{"name":"p","schema":{"type":"object","properties":{"n":{"type":"integer"}}}}}}`)
	if _, err := a.Complete(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	var got struct {
		System string `json:"system"`
	}
	s.sent(t, &got)
	if !strings.Contains(got.System, "JSON Schema") || !strings.Contains(got.System, `{"type":"object","properties":{"n":{"type":"integer"}}}`) {
		t.Errorf("system = %q", got.System)
	}
}

func TestResponses(t *testing.T) {
	tests := []struct {
		name, body                      string
		content, reasoning, finish      string
		toolCalls                       int
		prompt, completion, cached, tot int
	}{
		{"text", docResponse, "Hi! My name is Claude.", "", "stop", 0, 2095, 503, 0, 2598},
		{"tool use", `{
  "id": "msg_01Aq9w938a90dw8q",
  "type": "message",
  "model": "claude-3-5-sonnet-20241022",
  "stop_reason": "tool_use",
  "role": "assistant",
  "content": [
    {"type": "text", "text": "<thinking>I need to use the get_weather tool.</thinking>"},
    {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {"location": "San Francisco, CA", "unit": "celsius"}}
  ],
  "usage": {"input_tokens": 100, "cache_creation_input_tokens": 20, "cache_read_input_tokens": 50, "output_tokens": 30}
}`, "<thinking>I need to use the get_weather tool.</thinking>", "", "tool_calls", 1, 170, 30, 50, 200},
		{"thinking and max tokens", `{
  "id": "msg_x", "type": "message", "role": "assistant", "model": "claude-3-7-sonnet-20250219",
  "content": [
    {"type": "thinking", "thinking": "Let me analyze this step by step...", "signature": "WaUjzkypQ2mUEVM36O2TxuC06KN8xyfbJwyem2dw3URve/op91XWHOEBLLqIOMfFG/UvLEczmEsUjavL"},
    {"type": "text", "text": "Based on my analysis"}
  ],
  "stop_reason": "max_tokens", "stop_sequence": null,
  "usage": {"input_tokens": 10, "output_tokens": 40}
}`, "Based on my analysis", "Let me analyze this step by step...", "length", 0, 10, 40, 0, 50},
		{"stop sequence", `{"id":"m","type":"message","role":"assistant","model":"c","content":[{"type":"text","text":"a"}],"stop_reason":"stop_sequence","stop_sequence":"END","usage":{"input_tokens":1,"output_tokens":1}}`,
			"a", "", "stop", 0, 1, 1, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAdapter(t, &stub{body: tt.body})
			resp, err := a.Complete(context.Background(), parse(t, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
			if err != nil {
				t.Fatal(err)
			}
			c := resp.Choices[0]
			if c.Message.Content.Text() != tt.content || c.Message.ReasoningContent != tt.reasoning || c.FinishReason != tt.finish || len(c.Message.ToolCalls) != tt.toolCalls {
				t.Errorf("choice = %+v", c)
			}
			u := resp.Usage
			cached := 0
			if u.PromptTokensDetails != nil {
				cached = u.PromptTokensDetails.CachedTokens
			}
			if u.PromptTokens != tt.prompt || u.CompletionTokens != tt.completion || cached != tt.cached || u.TotalTokens != tt.tot {
				t.Errorf("usage = %+v", u)
			}
			if tt.toolCalls > 0 {
				tc := c.Message.ToolCalls[0]
				if tc.ID != "toolu_01A09q90qw90lq917835lq9" || tc.Type != "function" || tc.Function.Name != "get_weather" ||
					tc.Function.Arguments != `{"location": "San Francisco, CA", "unit": "celsius"}` {
					t.Errorf("tool call = %+v", tc)
				}
			}
		})
	}
}

func stream(t *testing.T, body string) ([]*chat.Chunk, error) {
	t.Helper()
	a := newAdapter(t, &stub{header: map[string]string{"Content-Type": "text/event-stream"}, body: body})
	s, err := a.Stream(context.Background(), parse(t, `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out []*chat.Chunk
	for {
		c, err := s.Recv()
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
}

// The streaming guide's basic example, verbatim.
const docTextStream = `event: message_start
data: {"type": "message_start", "message": {"id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [], "model": "claude-3-5-sonnet-20241022", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}

event: content_block_start
data: {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}}

event: content_block_stop
data: {"type": "content_block_stop", "index": 0}

event: message_delta
data: {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence":null}, "usage": {"output_tokens": 15}}

event: message_stop
data: {"type": "message_stop"}

`

func TestStreamText(t *testing.T) {
	chunks, err := stream(t, docTextStream)
	if err != io.EOF {
		t.Fatalf("end = %v", err)
	}
	// role, "Hello", "!", finish, usage
	if len(chunks) != 5 {
		t.Fatalf("%d chunks", len(chunks))
	}
	if d := chunks[0].Choices[0].Delta; d.Role != "assistant" || chunks[0].ID != "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY" || chunks[0].Model != "claude-3-5-sonnet-20241022" {
		t.Errorf("first chunk = %+v", chunks[0])
	}
	if *chunks[1].Choices[0].Delta.Content+*chunks[2].Choices[0].Delta.Content != "Hello!" {
		t.Error("text deltas lost")
	}
	if *chunks[3].Choices[0].FinishReason != "stop" {
		t.Errorf("finish chunk = %+v", chunks[3])
	}
	u := chunks[4].Usage
	if len(chunks[4].Choices) != 0 || u == nil || u.PromptTokens != 25 || u.CompletionTokens != 15 || u.TotalTokens != 40 {
		t.Errorf("usage chunk = %+v / %+v", chunks[4], u)
	}
}

// The tool-use streaming example: text, then a tool_use block whose input
// arrives as input_json_delta fragments.
func TestStreamToolUse(t *testing.T) {
	body := `event: message_start
data: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-3-haiku-20240307","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2,"cache_read_input_tokens":100},"content":[],"stop_reason":null}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Okay"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"location\":"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \"San Francisc"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"o, CA\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}

`
	chunks, err := stream(t, body)
	if err != io.EOF {
		t.Fatalf("end = %v", err)
	}
	var args, name, id, finish string
	for _, c := range chunks {
		for _, ch := range c.Choices {
			for _, tc := range ch.Delta.ToolCalls {
				if tc.Index == nil || *tc.Index != 0 {
					t.Errorf("tool call index = %v, want 0 (the first tool call, not block 1)", tc.Index)
				}
				args += tc.Function.Arguments
				name += tc.Function.Name
				id += tc.ID
			}
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
	}
	if args != `{"location": "San Francisco, CA"}` || name != "get_weather" || id != "toolu_01T1x1fJ34qAmk2tNTrN7Up6" || finish != "tool_calls" {
		t.Errorf("args %q name %q id %q finish %q", args, name, id, finish)
	}
	u := chunks[len(chunks)-1].Usage
	if u == nil || u.PromptTokens != 572 || u.PromptTokensDetails.CachedTokens != 100 || u.CompletionTokens != 89 {
		t.Errorf("usage = %+v", u)
	}
}

func TestStreamThinking(t *testing.T) {
	body := `event: message_start
data: {"type": "message_start", "message": {"id": "msg_01", "type": "message", "role": "assistant", "content": [], "model": "claude-3-7-sonnet-20250219", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 10, "output_tokens": 1}}}

event: content_block_start
data: {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me solve this step by step:\n\n1. First break down 27 * 453"}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds..."}}

event: content_block_stop
data: {"type": "content_block_stop", "index": 0}

event: content_block_start
data: {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "27 * 453 = 12,231"}}

event: content_block_stop
data: {"type": "content_block_stop", "index": 1}

event: message_delta
data: {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 100}}

event: message_stop
data: {"type": "message_stop"}

`
	chunks, err := stream(t, body)
	if err != io.EOF {
		t.Fatalf("end = %v", err)
	}
	var reasoning, content string
	for _, c := range chunks {
		for _, ch := range c.Choices {
			reasoning += ch.Delta.ReasoningContent
			if ch.Delta.Content != nil {
				content += *ch.Delta.Content
			}
		}
	}
	if reasoning != "Let me solve this step by step:\n\n1. First break down 27 * 453" || content != "27 * 453 = 12,231" {
		t.Errorf("reasoning %q content %q", reasoning, content)
	}
}

func TestStreamErrorEvent(t *testing.T) {
	body := `event: message_start
data: {"type": "message_start", "message": {"id": "msg_01", "type": "message", "role": "assistant", "content": [], "model": "claude-3-5-haiku-20241022", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 10, "output_tokens": 1}}}

event: content_block_start
data: {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}}

event: error
data: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}

`
	chunks, err := stream(t, body)
	var ue *upstream.Error
	if !errors.As(err, &ue) || ue.Status != 529 || ue.Message != "Overloaded" {
		t.Fatalf("err = %v", err)
	}
	if len(chunks) != 2 {
		t.Errorf("%d chunks before the error", len(chunks))
	}
}

// A stream ending without message_stop was cut.
func TestStreamCut(t *testing.T) {
	cut := docTextStream[:strings.Index(docTextStream, "event: content_block_stop")]
	chunks, err := stream(t, cut)
	var ue *upstream.Error
	if !errors.As(err, &ue) || len(chunks) != 3 {
		t.Fatalf("%d chunks, err %v", len(chunks), err)
	}
}

func TestErrorBodies(t *testing.T) {
	tests := []struct {
		status  int
		header  map[string]string
		body    string
		message string
		retry   time.Duration
	}{
		{400, nil, `{"type":"error","error":{"type":"invalid_request_error","message":"messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"user\" roles in a row"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}`,
			`messages: roles must alternate between "user" and "assistant", but found multiple "user" roles in a row`, 0},
		{401, nil, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`, "invalid x-api-key", 0},
		{429, map[string]string{"retry-after": "12"}, `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`,
			"Number of request tokens has exceeded your per-minute rate limit", 12 * time.Second},
		{500, nil, `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`, "Internal server error", 0},
		{529, nil, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, "Overloaded", 0},
	}
	for _, tt := range tests {
		a := newAdapter(t, &stub{status: tt.status, header: tt.header, body: tt.body})
		_, err := a.Complete(context.Background(), parse(t, `{"model":"m","messages":[{"role":"user","content":"x"}]}`))
		var ue *upstream.Error
		if !errors.As(err, &ue) || ue.Status != tt.status || ue.Message != tt.message || ue.RetryAfter != tt.retry {
			t.Errorf("%d: err = %+v", tt.status, err)
		}
	}
}

// Newer API versions repeat the cumulative input counts in message_delta;
// they must not be added twice.
func TestStreamCumulativeUsage(t *testing.T) {
	body := `event: message_start
data: {"type":"message_start","message":{"model":"claude-haiku-4-5-20251001","id":"msg_01K2JbSUMYhez5RHoK9ZCj9U","type":"message","role":"assistant","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":849,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":10,"service_tier":"standard"}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_01KFbKqPYSuAKujiL6mTfzYA","name":"json","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"elements\": []}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":849,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":47}}

event: message_stop
data: {"type":"message_stop"}

`
	chunks, err := stream(t, body)
	if err != io.EOF {
		t.Fatalf("end = %v", err)
	}
	u := chunks[len(chunks)-1].Usage
	if u == nil || u.PromptTokens != 849 || u.CompletionTokens != 47 || u.TotalTokens != 896 {
		t.Errorf("usage = %+v", u)
	}
}

// Usage before the end is mapped as the usage chunk is: cache writes and
// reads count as prompt tokens, cache reads are also cached tokens.
func TestStreamUsageSoFar(t *testing.T) {
	body := `event: message_start
data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":20,"cache_read_input_tokens":30,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}

`
	a := newAdapter(t, &stub{header: map[string]string{"Content-Type": "text/event-stream"}, body: body})
	s, err := a.Stream(context.Background(), parse(t, `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Usage() != nil {
		t.Errorf("usage before any event: %+v", s.Usage())
	}
	for {
		if _, err = s.Recv(); err != nil {
			break
		}
	}
	var ue *upstream.Error
	if !errors.As(err, &ue) {
		t.Fatalf("end = %v, want the cut", err)
	}
	u := s.Usage()
	if u == nil || u.PromptTokens != 60 || u.CompletionTokens != 1 || u.TotalTokens != 61 ||
		u.PromptTokensDetails == nil || u.PromptTokensDetails.CachedTokens != 30 {
		t.Errorf("usage = %+v", u)
	}
}
