package openai_test

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
	"github.com/beaver-gateway/beaver/internal/providers/openai"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
)

// upstreamStub answers every request with a canned status, headers and body,
// and records what it received.
type upstreamStub struct {
	status int
	header map[string]string
	body   string

	mu     sync.Mutex
	path   string
	got    http.Header
	reqRaw []byte
}

func (u *upstreamStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.path, u.got, u.reqRaw = r.URL.Path, r.Header.Clone(), b
	u.mu.Unlock()
	for k, v := range u.header {
		w.Header().Set(k, v)
	}
	if u.status == 0 {
		u.status = 200
	}
	w.WriteHeader(u.status)
	io.WriteString(w, u.body)
}

func (u *upstreamStub) request(t *testing.T) map[string]any {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	var m map[string]any
	if err := json.Unmarshal(u.reqRaw, &m); err != nil {
		t.Fatalf("upstream got invalid JSON %s: %v", u.reqRaw, err)
	}
	return m
}

func newAdapter(t *testing.T, name string, stub http.Handler) *openai.Adapter {
	t.Helper()
	srv := httptest.NewServer(stub)
	t.Cleanup(srv.Close)
	a, err := openai.New(upstream.Config{Name: name, Format: "openai", BaseURL: srv.URL + "/v1/", APIKey: "sk-test", MaxRetries: -1})
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

// From the API reference's chat completion object.
const docResponse = `{
  "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
  "object": "chat.completion",
  "created": 1741569952,
  "model": "gpt-4.1-2025-04-14",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "Hello! How can I assist you today?",
        "refusal": null,
        "annotations": []
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {
      "cached_tokens": 12,
      "audio_tokens": 0
    },
    "completion_tokens_details": {
      "reasoning_tokens": 4,
      "audio_tokens": 0,
      "accepted_prediction_tokens": 0,
      "rejected_prediction_tokens": 0
    }
  },
  "service_tier": "default"
}`

func TestCompleteRequestAndResponse(t *testing.T) {
	stub := &upstreamStub{body: docResponse}
	a := newAdapter(t, "openai", stub)
	req := parse(t, `{"model":"gpt-4o-mini","messages":[{"role":"developer","content":"be brief"},{"role":"user","content":"Hello!"}],
		"max_tokens":50,"seed":7,"logit_bias":{"50256":-100},"stream_options":{"include_usage":true}}`)
	resp, err := a.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if stub.path != "/v1/chat/completions" {
		t.Errorf("path = %q", stub.path)
	}
	if got := stub.got.Get("Authorization"); got != "Bearer sk-test" {
		t.Errorf("Authorization = %q", got)
	}
	sent := stub.request(t)
	if sent["seed"] != float64(7) || sent["logit_bias"] == nil {
		t.Errorf("Extra fields not passed through: %v", sent)
	}
	if _, ok := sent["stream_options"]; ok {
		t.Error("stream_options sent on a non-streaming request")
	}
	if _, ok := sent["stream"]; ok {
		t.Error("stream sent on a non-streaming request")
	}
	if sent["max_tokens"] != float64(50) || sent["max_completion_tokens"] != nil {
		t.Errorf("max tokens fields: %v / %v", sent["max_tokens"], sent["max_completion_tokens"])
	}
	if msgs := sent["messages"].([]any); msgs[0].(map[string]any)["role"] != "developer" {
		t.Errorf("OpenAI should get the developer role as is: %v", msgs[0])
	}

	if resp.ID != "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT" || resp.Model != "gpt-4.1-2025-04-14" || resp.Object != "chat.completion" {
		t.Errorf("response = %+v", resp)
	}
	if c := resp.Choices[0]; c.Message.Content.Text() != "Hello! How can I assist you today?" || c.FinishReason != "stop" {
		t.Errorf("choice = %+v", c)
	}
	u := resp.Usage
	if u.PromptTokens != 19 || u.CompletionTokens != 10 || u.TotalTokens != 29 ||
		u.PromptTokensDetails.CachedTokens != 12 || u.CompletionTokensDetails.ReasoningTokens != 4 {
		t.Errorf("usage = %+v", u)
	}
}

func TestMaxTokensField(t *testing.T) {
	tests := []struct {
		provider, fields, want string
	}{
		{"openai", `,"max_tokens":5`, "max_tokens"},
		{"openai", `,"max_completion_tokens":5`, "max_completion_tokens"},
		{"openai", ``, "max_completion_tokens"}, // set by the gateway: OpenAI's current field
		{"deepseek", ``, "max_tokens"},
		{"xai", `,"max_completion_tokens":5`, "max_completion_tokens"},
	}
	for _, tt := range tests {
		stub := &upstreamStub{body: docResponse}
		a := newAdapter(t, tt.provider, stub)
		req := parse(t, `{"model":"m","messages":[{"role":"user","content":"x"}]`+tt.fields+`}`)
		if req.MaxTokens == nil {
			five := 5
			req.MaxTokens = &five // as the API's admission does
		}
		if _, err := a.Complete(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		sent := stub.request(t)
		other := map[string]string{"max_tokens": "max_completion_tokens", "max_completion_tokens": "max_tokens"}[tt.want]
		if sent[tt.want] != float64(5) || sent[other] != nil {
			t.Errorf("%s %q: sent %v", tt.provider, tt.fields, sent)
		}
	}
}

func TestCompatibleProviderMessages(t *testing.T) {
	stub := &upstreamStub{body: `{"id":"x","object":"chat.completion","created":1,"model":"deepseek-chat","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],
		"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"prompt_cache_hit_tokens":8,"prompt_cache_miss_tokens":2}}`}
	a := newAdapter(t, "deepseek", stub)
	req := parse(t, `{"model":"deepseek-chat","messages":[{"role":"developer","content":"sys"},{"role":"user","content":"q"},
		{"role":"assistant","content":"a","reasoning_content":"thought"},{"role":"user","content":"q2"}]}`)
	resp, err := a.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	msgs := stub.request(t)["messages"].([]any)
	if msgs[0].(map[string]any)["role"] != "system" {
		t.Errorf("developer not mapped to system for deepseek: %v", msgs[0])
	}
	if _, ok := msgs[2].(map[string]any)["reasoning_content"]; ok {
		t.Error("reasoning_content sent upstream")
	}
	if req.Messages[2].ReasoningContent != "thought" || req.Messages[0].Role != "developer" {
		t.Error("the caller's request was modified")
	}
	if d := resp.Usage.PromptTokensDetails; d == nil || d.CachedTokens != 8 {
		t.Errorf("prompt_cache_hit_tokens not mapped: %+v", resp.Usage)
	}
}

func TestCompleteToolCall(t *testing.T) {
	stub := &upstreamStub{body: `{
  "id": "chatcmpl-abc123",
  "object": "chat.completion",
  "created": 1699896916,
  "model": "gpt-4o-mini",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": null,
        "tool_calls": [
          {
            "id": "call_abc123",
            "type": "function",
            "function": {
              "name": "get_current_weather",
              "arguments": "{\n\"location\": \"Boston, MA\"\n}"
            }
          }
        ]
      },
      "logprobs": null,
      "finish_reason": "tool_calls"
    }
  ],
  "usage": {"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99}
}`}
	a := newAdapter(t, "openai", stub)
	resp, err := a.Complete(context.Background(), parse(t, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":[{"type":"text","text":"Weather?"},{"type":"image_url","image_url":{"url":"https://example.com/boston.jpg","detail":"low"}}]}],
		"tools":[{"type":"function","function":{"name":"get_current_weather","parameters":{"type":"object","properties":{"location":{"type":"string"}}}}}],"tool_choice":"auto"}`))
	if err != nil {
		t.Fatal(err)
	}
	m := resp.Choices[0].Message
	if !m.Content.IsNull() || len(m.ToolCalls) != 1 || m.ToolCalls[0].Function.Arguments != "{\n\"location\": \"Boston, MA\"\n}" || resp.Choices[0].FinishReason != "tool_calls" {
		t.Errorf("message = %+v", m)
	}
	sent := stub.request(t)
	content := sent["messages"].([]any)[0].(map[string]any)["content"].([]any)
	if img := content[1].(map[string]any)["image_url"].(map[string]any); img["url"] != "https://example.com/boston.jpg" || img["detail"] != "low" {
		t.Errorf("image part = %v", content[1])
	}
	if sent["tool_choice"] != "auto" || len(sent["tools"].([]any)) != 1 {
		t.Errorf("tools = %v / %v", sent["tools"], sent["tool_choice"])
	}
}

// A streamed answer as the API reference shows it, with include_usage.
const docStream = `data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":"!"},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}

data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}

data: [DONE]

`

func collect(t *testing.T, s upstream.Stream) ([]*chat.Chunk, error) {
	t.Helper()
	var out []*chat.Chunk
	for {
		c, err := s.Recv()
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
}

func TestStreamDocExample(t *testing.T) {
	stub := &upstreamStub{header: map[string]string{"Content-Type": "text/event-stream"}, body: docStream}
	a := newAdapter(t, "openai", stub)
	s, err := a.Stream(context.Background(), parse(t, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	chunks, err := collect(t, s)
	if err != io.EOF {
		t.Fatalf("end = %v", err)
	}
	sent := stub.request(t)
	if sent["stream"] != true || sent["stream_options"].(map[string]any)["include_usage"] != true {
		t.Errorf("stream options not set: %v", sent)
	}
	if stub.got.Get("Accept") != "text/event-stream" {
		t.Errorf("Accept = %q", stub.got.Get("Accept"))
	}
	if len(chunks) != 5 {
		t.Fatalf("%d chunks, want 5", len(chunks))
	}
	if chunks[0].Choices[0].Delta.Role != "assistant" || *chunks[1].Choices[0].Delta.Content != "Hello" {
		t.Errorf("first chunks = %+v %+v", chunks[0], chunks[1])
	}
	if *chunks[3].Choices[0].FinishReason != "stop" || chunks[3].Usage != nil {
		t.Errorf("finish chunk = %+v", chunks[3])
	}
	last := chunks[4]
	if len(last.Choices) != 0 || last.Usage == nil || last.Usage.TotalTokens != 11 || last.ID != "chatcmpl-123" {
		t.Errorf("usage chunk = %+v", last)
	}
}

// Streamed tool-call arguments arrive in fragments, keyed by index.
func TestStreamToolCallFragments(t *testing.T) {
	body := `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_DdmO9pD3xa9XTPNJ32zg2hcA","type":"function","function":{"name":"get_weather","arguments":""}}],"refusal":null},"logprobs":null,"finish_reason":null}]}

data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\""}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"location"}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\":\"Paris\"}"}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}

data: [DONE]

`
	a := newAdapter(t, "openai", &upstreamStub{body: body})
	s, err := a.Stream(context.Background(), parse(t, `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	chunks, err := collect(t, s)
	if err != io.EOF || len(chunks) != 5 {
		t.Fatalf("%d chunks, end %v", len(chunks), err)
	}
	var args string
	for _, c := range chunks {
		for _, tc := range c.Choices[0].Delta.ToolCalls {
			if tc.Index == nil || *tc.Index != 0 {
				t.Errorf("fragment without index: %+v", tc)
			}
			args += tc.Function.Arguments
		}
	}
	if args != `{"location":"Paris"}` || chunks[0].Choices[0].Delta.ToolCalls[0].Function.Name != "get_weather" {
		t.Errorf("args = %q", args)
	}
}

// DeepSeek's reasoner streams reasoning_content and puts usage (with
// prompt_cache_hit_tokens) on its last content chunk; usage is moved to a
// chunk of its own.
func TestStreamDeepSeekReasoning(t *testing.T) {
	body := `data: {"id":"d","object":"chat.completion.chunk","created":1737000000,"model":"deepseek-reasoner","system_fingerprint":"fp_7e73fd9a08","choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":""},"logprobs":null,"finish_reason":null}]}

data: {"id":"d","object":"chat.completion.chunk","created":1737000000,"model":"deepseek-reasoner","system_fingerprint":"fp_7e73fd9a08","choices":[{"index":0,"delta":{"content":null,"reasoning_content":"Okay"},"logprobs":null,"finish_reason":null}]}

data: {"id":"d","object":"chat.completion.chunk","created":1737000000,"model":"deepseek-reasoner","system_fingerprint":"fp_7e73fd9a08","choices":[{"index":0,"delta":{"content":"Hi","reasoning_content":null},"logprobs":null,"finish_reason":null}]}

data: {"id":"d","object":"chat.completion.chunk","created":1737000000,"model":"deepseek-reasoner","system_fingerprint":"fp_7e73fd9a08","choices":[{"index":0,"delta":{"content":"","reasoning_content":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":13,"completion_tokens":20,"total_tokens":33,"completion_tokens_details":{"reasoning_tokens":15},"prompt_cache_hit_tokens":8,"prompt_cache_miss_tokens":5}}

data: [DONE]

`
	a := newAdapter(t, "deepseek", &upstreamStub{body: body})
	s, err := a.Stream(context.Background(), parse(t, `{"model":"deepseek-reasoner","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	chunks, err := collect(t, s)
	if err != io.EOF || len(chunks) != 5 {
		t.Fatalf("%d chunks, end %v", len(chunks), err)
	}
	if chunks[1].Choices[0].Delta.ReasoningContent != "Okay" || chunks[1].Text() != "Okay" {
		t.Errorf("reasoning chunk = %+v", chunks[1].Choices[0].Delta)
	}
	if chunks[3].Usage != nil || *chunks[3].Choices[0].FinishReason != "stop" {
		t.Errorf("finish chunk = %+v", chunks[3])
	}
	u := chunks[4].Usage
	if len(chunks[4].Choices) != 0 || u == nil || u.PromptTokensDetails.CachedTokens != 8 || u.CompletionTokensDetails.ReasoningTokens != 15 {
		t.Errorf("usage chunk = %+v", chunks[4])
	}
}

func TestStreamErrorEvent(t *testing.T) {
	body := `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}

data: {"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}

`
	a := newAdapter(t, "openai", &upstreamStub{body: body})
	s, err := a.Stream(context.Background(), parse(t, `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	chunks, err := collect(t, s)
	var ue *upstream.Error
	if !errors.As(err, &ue) || ue.Status != 500 || !strings.Contains(ue.Message, "Sorry about that") || len(chunks) != 1 {
		t.Fatalf("chunks %d, err %v", len(chunks), err)
	}
}

// The body ends without [DONE]: the stream was cut.
func TestStreamWithoutDone(t *testing.T) {
	body := `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}

`
	a := newAdapter(t, "openai", &upstreamStub{body: body})
	s, err := a.Stream(context.Background(), parse(t, `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = collect(t, s)
	var ue *upstream.Error
	if !errors.As(err, &ue) || err == io.EOF {
		t.Fatalf("err = %v", err)
	}
}

func TestErrorBodies(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		header  map[string]string
		body    string
		message string
		retry   time.Duration
	}{
		{"openai 400", 400, nil, `{"error":{"message":"Invalid 'messages[0].content': string too long.","type":"invalid_request_error","param":"messages[0].content","code":"string_above_max_length"}}`,
			"Invalid 'messages[0].content': string too long.", 0},
		{"openai 401", 401, nil, `{"error":{"message":"Incorrect API key provided: sk-abc. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`,
			"Incorrect API key provided: sk-abc. You can find your API key at https://platform.openai.com/account/api-keys.", 0},
		{"openai 429 retry-after-ms", 429, map[string]string{"retry-after-ms": "1500", "retry-after": "2"}, `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			"Rate limit reached", 1500 * time.Millisecond},
		{"openai 429 retry-after", 429, map[string]string{"retry-after": "7"}, `{"error":{"message":"Rate limit reached","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`,
			"Rate limit reached", 7 * time.Second},
		{"openai 500", 500, nil, `{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}`,
			"The server had an error while processing your request. Sorry about that!", 0},
		{"string error", 400, nil, `{"error":"model is required"}`, "model is required", 0},
		{"message only", 422, nil, `{"message":"bad temperature"}`, "bad temperature", 0},
		{"html", 502, nil, `<html><body>Bad Gateway</body></html>`, "Bad Gateway", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAdapter(t, "openai", &upstreamStub{status: tt.status, header: tt.header, body: tt.body})
			_, err := a.Complete(context.Background(), parse(t, `{"model":"m","messages":[{"role":"user","content":"x"}]}`))
			var ue *upstream.Error
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v", err)
			}
			if ue.Status != tt.status || ue.Message != tt.message || ue.RetryAfter != tt.retry {
				t.Errorf("error = %+v", ue)
			}
		})
	}
}

// OpenAI reports usage only at the end, so a cut stream has none; a
// provider that puts usage on its content chunks has the latest.
func TestStreamUsageSoFar(t *testing.T) {
	tests := []struct {
		name, provider, body string
		prompt               int // -1: no usage
	}{
		{"openai", "openai", `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}],"usage":null}

`, -1},
		{"usage on content chunks", "deepseek", `data: {"id":"d","object":"chat.completion.chunk","created":1,"model":"deepseek-chat","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}],"usage":{"prompt_tokens":13,"completion_tokens":1,"total_tokens":14,"prompt_cache_hit_tokens":8}}

`, 13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAdapter(t, tt.provider, &upstreamStub{body: tt.body})
			s, err := a.Stream(context.Background(), parse(t, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			_, err = collect(t, s)
			var ue *upstream.Error
			if !errors.As(err, &ue) {
				t.Fatalf("end = %v, want the cut", err)
			}
			u := s.Usage()
			switch {
			case tt.prompt < 0 && u != nil:
				t.Errorf("usage = %+v, want none", u)
			case tt.prompt >= 0 && (u == nil || u.PromptTokens != tt.prompt || u.CompletionTokens != 1 ||
				u.PromptTokensDetails == nil || u.PromptTokensDetails.CachedTokens != 8):
				t.Errorf("usage = %+v", u)
			}
		})
	}
}

// An OpenAI answer's refusal and logprobs are passed through; answers
// without them get null for both once rendered (OpenAI's schema requires
// the keys).
func TestCompleteRefusalAndLogprobs(t *testing.T) {
	stub := &upstreamStub{body: `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[
		{"index":0,"message":{"role":"assistant","content":null,"refusal":"I'm sorry, I can't help with that."},
		 "logprobs":{"content":null,"refusal":[{"token":"I","logprob":-0.01,"bytes":[73],"top_logprobs":[]}]},"finish_reason":"stop"}],
		"usage":{"prompt_tokens":5,"completion_tokens":9,"total_tokens":14}}`}
	a := newAdapter(t, "openai", stub)
	resp, err := a.Complete(context.Background(), parse(t, `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"logprobs":true}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(resp.Choices[0])
	if want := `{"index":0,"message":{"role":"assistant","content":null,"refusal":"I'm sorry, I can't help with that."},"logprobs":{"content":null,"refusal":[{"token":"I","logprob":-0.01,"bytes":[73],"top_logprobs":[]}]},"finish_reason":"stop"}`; string(b) != want {
		t.Errorf("choice = %s\nwant     %s", b, want)
	}
	stub.body = docResponse
	resp, err = a.Complete(context.Background(), parse(t, `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(resp.Choices[0])
	if !strings.Contains(string(b), `"refusal":null`) || !strings.Contains(string(b), `"logprobs":null`) {
		t.Errorf("choice without refusal or logprobs = %s", b)
	}
}

// finish_reason values outside OpenAI's enum, which strict clients reject,
// are mapped into it; a stream's "" (some providers' "not yet") is null.
func TestFinishReasonsStayInTheEnum(t *testing.T) {
	for upstreamReason, want := range map[string]string{
		"stop": "stop", "length": "length", "tool_calls": "tool_calls", "content_filter": "content_filter",
		"function_call": "function_call", "insufficient_system_resource": "length", "error": "length",
		"eos": "stop", "": "stop",
	} {
		stub := &upstreamStub{body: `{"id":"x","object":"chat.completion","created":1,"model":"deepseek-chat","choices":[{"index":0,"message":{"content":"ok"},"finish_reason":"` + upstreamReason + `"}]}`}
		a := newAdapter(t, "deepseek", stub)
		resp, err := a.Complete(context.Background(), parse(t, `{"model":"deepseek-chat","messages":[{"role":"user","content":"hi"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		if c := resp.Choices[0]; c.FinishReason != want || c.Message.Role != "assistant" {
			t.Errorf("%q: finish_reason %q role %q, want %q assistant", upstreamReason, c.FinishReason, c.Message.Role, want)
		}
	}
	body := `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"deepseek-chat","choices":[{"index":0,"delta":{"role":"assistant","content":"a"},"finish_reason":""}]}

data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"deepseek-chat","choices":[{"index":0,"delta":{},"finish_reason":"insufficient_system_resource"}]}

data: [DONE]

`
	stub := &upstreamStub{header: map[string]string{"Content-Type": "text/event-stream"}, body: body}
	s, err := newAdapter(t, "deepseek", stub).Stream(context.Background(), parse(t, `{"model":"deepseek-chat","messages":[{"role":"user","content":"hi"}],"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	chunks, err := collect(t, s)
	if err != io.EOF || len(chunks) != 2 {
		t.Fatalf("%d chunks, end %v", len(chunks), err)
	}
	if f := chunks[0].Choices[0].FinishReason; f != nil {
		t.Errorf(`"" finish_reason = %q, want null`, *f)
	}
	if f := chunks[1].Choices[0].FinishReason; f == nil || *f != "length" {
		t.Errorf("insufficient_system_resource = %v, want length", f)
	}
}
