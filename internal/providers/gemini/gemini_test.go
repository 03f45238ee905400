package gemini_test

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
	"github.com/beaver-gateway/beaver/internal/providers/gemini"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
)

type stub struct {
	status int
	body   string

	mu  sync.Mutex
	uri string
	got http.Header
	raw []byte
}

func (s *stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.uri, s.got, s.raw = r.URL.RequestURI(), r.Header.Clone(), b
	s.mu.Unlock()
	if s.status == 0 {
		s.status = 200
	}
	w.WriteHeader(s.status)
	io.WriteString(w, s.body)
}

func newAdapter(t *testing.T, h http.Handler) *gemini.Adapter {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	a, err := gemini.New(upstream.Config{Name: "google", Format: "gemini", BaseURL: srv.URL, APIKey: "AIza-test", MaxRetries: -1})
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

func canonical(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

const docResponse = `{
  "candidates": [
    {
      "content": {
        "parts": [
          {
            "text": "The opposite of hot is cold."
          }
        ],
        "role": "model"
      },
      "finishReason": "STOP",
      "avgLogprobs": -0.0212
    }
  ],
  "usageMetadata": {
    "promptTokenCount": 8,
    "candidatesTokenCount": 7,
    "totalTokenCount": 15,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}]
  },
  "modelVersion": "gemini-2.0-flash",
  "responseId": "k3RmaJ7oOpm8qtsP58ex4QM"
}`

func TestRequestTranslation(t *testing.T) {
	s := &stub{body: docResponse}
	a := newAdapter(t, s)
	req := parse(t, `{
		"model": "gemini-1.5-flash",
		"messages": [
			{"role": "system", "content": "You are terse."},
			{"role": "user", "content": [
				{"type": "text", "text": "Which theaters in Mountain View show the Barbie movie?"},
				{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
				{"type": "image_url", "image_url": {"url": "https://example.com/poster.PNG?size=large"}}
			]},
			{"role": "assistant", "content": null, "tool_calls": [
				{"id": "call_1", "type": "function", "function": {"name": "find_theaters", "arguments": "{\"location\":\"Mountain View, CA\",\"movie\":\"Barbie\"}"}}
			]},
			{"role": "tool", "tool_call_id": "call_1", "content": "{\"theaters\":[\"AMC Mountain View 16\"]}"},
			{"role": "assistant", "content": "AMC Mountain View 16.", "tool_calls": [
				{"id": "call_2", "type": "function", "function": {"name": "get_showtimes", "arguments": "{}"}}
			]},
			{"role": "tool", "tool_call_id": "call_2", "content": "7pm"}
		],
		"max_tokens": 256,
		"temperature": 0,
		"top_p": 0.5,
		"stop": ["END"],
		"tools": [
			{"type": "function", "function": {"name": "find_theaters", "description": "find theaters", "parameters": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": false, "properties": {"location": {"type": "string"}, "movie": {"type": "string"}}, "required": ["location"]}}},
			{"type": "function", "function": {"name": "get_showtimes", "parameters": {"type": "object", "properties": {}}}}
		],
		"tool_choice": {"type": "function", "function": {"name": "find_theaters"}},
		"response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object", "additionalProperties": false, "properties": {"theater": {"type": "string"}}}}}
	}`)
	if _, err := a.Complete(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if s.uri != "/v1beta/models/gemini-1.5-flash:generateContent" || s.got.Get("x-goog-api-key") != "AIza-test" {
		t.Errorf("uri %q, key %q", s.uri, s.got.Get("x-goog-api-key"))
	}
	want := `{
		"contents": [
			{"role": "user", "parts": [
				{"text": "Which theaters in Mountain View show the Barbie movie?"},
				{"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
				{"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/poster.PNG?size=large"}}
			]},
			{"role": "model", "parts": [{"functionCall": {"name": "find_theaters", "args": {"location": "Mountain View, CA", "movie": "Barbie"}}}]},
			{"role": "user", "parts": [{"functionResponse": {"name": "find_theaters", "response": {"theaters": ["AMC Mountain View 16"]}}}]},
			{"role": "model", "parts": [{"text": "AMC Mountain View 16."}, {"functionCall": {"name": "get_showtimes", "args": {}}}]},
			{"role": "user", "parts": [{"functionResponse": {"name": "get_showtimes", "response": {"content": "7pm"}}}]}
		],
		"systemInstruction": {"parts": [{"text": "You are terse."}]},
		"tools": [{"functionDeclarations": [
			{"name": "find_theaters", "description": "find theaters", "parameters": {"type": "object", "properties": {"location": {"type": "string"}, "movie": {"type": "string"}}, "required": ["location"]}},
			{"name": "get_showtimes"}
		]}],
		"toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["find_theaters"]}},
		"generationConfig": {"temperature": 0, "topP": 0.5, "maxOutputTokens": 256, "stopSequences": ["END"],
			"responseMimeType": "application/json", "responseSchema": {"type": "object", "properties": {"theater": {"type": "string"}}}}
	}`
	if got := canonical(t, s.raw); got != canonical(t, []byte(want)) {
		t.Errorf("sent\n%s\nwant\n%s", got, canonical(t, []byte(want)))
	}
}

func TestToolChoiceAndJSONMode(t *testing.T) {
	tests := []struct{ choice, want string }{
		{`"auto"`, `{"functionCallingConfig":{"mode":"AUTO"}}`},
		{`"none"`, `{"functionCallingConfig":{"mode":"NONE"}}`},
		{`"required"`, `{"functionCallingConfig":{"mode":"ANY"}}`},
	}
	for _, tt := range tests {
		s := &stub{body: docResponse}
		a := newAdapter(t, s)
		req := parse(t, `{"model":"gemini-2.0-flash","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"},
			"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":`+tt.choice+`}`)
		if _, err := a.Complete(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		var got struct {
			ToolConfig       json.RawMessage `json:"toolConfig"`
			GenerationConfig map[string]any  `json:"generationConfig"`
		}
		json.Unmarshal(s.raw, &got)
		if string(got.ToolConfig) != tt.want || got.GenerationConfig["responseMimeType"] != "application/json" {
			t.Errorf("%s: toolConfig %s generationConfig %v", tt.choice, got.ToolConfig, got.GenerationConfig)
		}
	}
}

func TestUnknownToolCallID(t *testing.T) {
	a := newAdapter(t, &stub{body: docResponse})
	_, err := a.Complete(context.Background(), parse(t, `{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"tool","tool_call_id":"nope","content":"x"}]}`))
	var ie *chat.InvalidError
	if !errors.As(err, &ie) || !strings.Contains(ie.Message, "nope") {
		t.Fatalf("err = %v", err)
	}
}

func TestResponses(t *testing.T) {
	tests := []struct {
		name, body                        string
		content, reasoning, finish        string
		toolCalls                         int
		prompt, completion, cached, think int
	}{
		{"text", docResponse, "The opposite of hot is cold.", "", "stop", 0, 8, 7, 0, 0},
		{"function call", `{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"find_theaters","args":{"movie":"Barbie","location":"Mountain View, CA"}}}]},"finishReason":"STOP","safetyRatings":[{"category":"HARM_CATEGORY_HATE_SPEECH","probability":"NEGLIGIBLE"}]}],
			"usageMetadata":{"promptTokenCount":100,"candidatesTokenCount":20,"totalTokenCount":120,"cachedContentTokenCount":64}}`,
			"", "", "tool_calls", 1, 100, 20, 64, 0},
		{"thoughts and max tokens", `{"candidates":[{"content":{"role":"model","parts":[{"text":"Thinking about it","thought":true},{"text":"Answer"}]},"finishReason":"MAX_TOKENS"}],
			"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":5,"thoughtsTokenCount":30,"totalTokenCount":45}}`,
			"Answer", "Thinking about it", "length", 0, 10, 35, 0, 30},
		{"safety", `{"candidates":[{"content":{"role":"model","parts":[{"text":""}]},"finishReason":"SAFETY"}],"usageMetadata":{"promptTokenCount":3,"totalTokenCount":3}}`,
			"", "", "content_filter", 0, 3, 0, 0, 0},
		{"blocked prompt", `{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":3,"totalTokenCount":3}}`,
			"", "", "content_filter", 0, 3, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAdapter(t, &stub{body: tt.body})
			resp, err := a.Complete(context.Background(), parse(t, `{"model":"gemini-1.5-pro","messages":[{"role":"user","content":"hi"}]}`))
			if err != nil {
				t.Fatal(err)
			}
			c := resp.Choices[0]
			if c.Message.Content.Text() != tt.content || c.Message.ReasoningContent != tt.reasoning || c.FinishReason != tt.finish || len(c.Message.ToolCalls) != tt.toolCalls {
				t.Errorf("choice = %+v", c)
			}
			u := resp.Usage
			var cached, think int
			if u.PromptTokensDetails != nil {
				cached = u.PromptTokensDetails.CachedTokens
			}
			if u.CompletionTokensDetails != nil {
				think = u.CompletionTokensDetails.ReasoningTokens
			}
			if u.PromptTokens != tt.prompt || u.CompletionTokens != tt.completion || cached != tt.cached || think != tt.think || u.TotalTokens != tt.prompt+tt.completion {
				t.Errorf("usage = %+v", u)
			}
			if tt.toolCalls > 0 {
				tc := c.Message.ToolCalls[0]
				if tc.ID == "" || tc.Function.Name != "find_theaters" || tc.Function.Arguments != `{"movie":"Barbie","location":"Mountain View, CA"}` {
					t.Errorf("tool call = %+v", tc)
				}
			}
			if resp.Model == "" || resp.ID == "" {
				t.Errorf("id %q model %q", resp.ID, resp.Model)
			}
		})
	}
}

func stream(t *testing.T, body string) ([]*chat.Chunk, *stub, error) {
	t.Helper()
	s := &stub{body: body}
	a := newAdapter(t, s)
	st, err := a.Stream(context.Background(), parse(t, `{"model":"gemini-2.0-flash","messages":[{"role":"user","content":"hi"}],"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out []*chat.Chunk
	for {
		c, err := st.Recv()
		if err != nil {
			return out, s, err
		}
		out = append(out, c)
	}
}

// The streaming example from the API reference (SSE, \r\n line ends).
const docStream = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"The\"}],\"role\": \"model\"}}],\"usageMetadata\": {\"promptTokenCount\": 8,\"totalTokenCount\": 8},\"modelVersion\": \"gemini-2.0-flash\"}\r\n\r\n" +
	"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" opposite of hot is cold.\"}],\"role\": \"model\"},\"finishReason\": \"STOP\"}],\"usageMetadata\": {\"promptTokenCount\": 8,\"candidatesTokenCount\": 7,\"totalTokenCount\": 15,\"cachedContentTokenCount\": 4,\"thoughtsTokenCount\": 3},\"modelVersion\": \"gemini-2.0-flash\"}\r\n\r\n"

func TestStreamText(t *testing.T) {
	chunks, s, err := stream(t, docStream)
	if err != io.EOF {
		t.Fatalf("end = %v", err)
	}
	if s.uri != "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse" {
		t.Errorf("uri = %q", s.uri)
	}
	if len(chunks) != 4 {
		t.Fatalf("%d chunks", len(chunks))
	}
	if d := chunks[0].Choices[0].Delta; d.Role != "assistant" || *d.Content != "The" {
		t.Errorf("first = %+v", d)
	}
	// The last event's text and its finishReason become two chunks, as
	// OpenAI sends them: the content, then an empty delta with the reason.
	if c := chunks[1].Choices[0]; *c.Delta.Content != " opposite of hot is cold." || c.FinishReason != nil {
		t.Errorf("second = %+v", c)
	}
	wantFinishChunk(t, chunks[2], "stop")
	u := chunks[3].Usage
	if len(chunks[3].Choices) != 0 || u == nil || u.PromptTokens != 8 || u.CompletionTokens != 10 ||
		u.PromptTokensDetails.CachedTokens != 4 || u.CompletionTokensDetails.ReasoningTokens != 3 {
		t.Errorf("usage chunk = %+v / %+v", chunks[3], u)
	}
}

// wantFinishChunk checks that c is a finish chunk as OpenAI sends one: one
// choice, an empty delta, the reason.
func wantFinishChunk(t *testing.T, c *chat.Chunk, reason string) {
	t.Helper()
	if len(c.Choices) != 1 {
		t.Fatalf("finish chunk has %d choices", len(c.Choices))
	}
	ch := c.Choices[0]
	if ch.FinishReason == nil || *ch.FinishReason != reason {
		t.Fatalf("finish chunk reason = %v, want %q", ch.FinishReason, reason)
	}
	if d := ch.Delta; d.Role != "" || d.Content != nil || d.ReasoningContent != "" || d.ToolCalls != nil {
		t.Fatalf("finish chunk delta = %+v, want empty", d)
	}
	if b, _ := json.Marshal(ch.Delta); string(b) != "{}" {
		t.Fatalf("finish chunk delta renders %s", b)
	}
}

func TestStreamFunctionCall(t *testing.T) {
	body := "data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"get_weather\",\"args\": {\"city\": \"Paris\"}}}, {\"functionCall\": {\"name\": \"get_time\",\"args\": {}}}],\"role\": \"model\"},\"finishReason\": \"STOP\"}],\"usageMetadata\": {\"promptTokenCount\": 20,\"candidatesTokenCount\": 9,\"totalTokenCount\": 29}}\r\n\r\n"
	chunks, _, err := stream(t, body)
	if err != io.EOF || len(chunks) != 3 {
		t.Fatalf("%d chunks, end %v", len(chunks), err)
	}
	c := chunks[0].Choices[0]
	if len(c.Delta.ToolCalls) != 2 || c.FinishReason != nil {
		t.Fatalf("choice = %+v", c)
	}
	// The calls are closed by a finish chunk of their own (openai-go's
	// JustFinishedToolCall and the npm client's arguments.done wait for it).
	wantFinishChunk(t, chunks[1], "tool_calls")
	if u := chunks[2].Usage; u == nil || len(chunks[2].Choices) != 0 {
		t.Fatalf("usage chunk = %+v", chunks[2])
	}
	for i, tc := range c.Delta.ToolCalls {
		if tc.Index == nil || *tc.Index != i || tc.ID == "" || tc.Type != "function" {
			t.Errorf("tool call %d = %+v", i, tc)
		}
	}
	if c.Delta.ToolCalls[0].Function.Arguments != `{"city": "Paris"}` {
		t.Errorf("args = %q", c.Delta.ToolCalls[0].Function.Arguments)
	}
}

// Without a finishReason the end of the body means the stream was cut.
func TestStreamCut(t *testing.T) {
	chunks, _, err := stream(t, docStream[:strings.Index(docStream, "\r\n\r\n")+4])
	var ue *upstream.Error
	if !errors.As(err, &ue) || len(chunks) != 1 {
		t.Fatalf("%d chunks, err %v", len(chunks), err)
	}
}

func TestStreamErrorEvent(t *testing.T) {
	body := docStream[:strings.Index(docStream, "\r\n\r\n")+4] +
		"data: {\"error\": {\"code\": 503, \"message\": \"The model is overloaded. Please try again later.\", \"status\": \"UNAVAILABLE\"}}\r\n\r\n"
	_, _, err := stream(t, body)
	var ue *upstream.Error
	if !errors.As(err, &ue) || ue.Status != 503 || ue.Message != "The model is overloaded. Please try again later." {
		t.Fatalf("err = %v", err)
	}
}

func TestErrorBodies(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		want    int
		message string
		retry   time.Duration
	}{
		{"quota with RetryInfo", 429, `{
  "error": {
    "code": 429,
    "message": "You exceeded your current quota, please check your plan and billing details.",
    "status": "RESOURCE_EXHAUSTED",
    "details": [
      {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests", "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},
      {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
      {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "22s"}
    ]
  }
}`, 429, "You exceeded your current quota, please check your plan and billing details.", 22 * time.Second},
		{"invalid key", 400, `{
  "error": {
    "code": 400,
    "message": "API key not valid. Please pass a valid API key.",
    "status": "INVALID_ARGUMENT",
    "details": [
      {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}},
      {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": "API key not valid. Please pass a valid API key."}
    ]
  }
}`, 401, "API key not valid. Please pass a valid API key.", 0},
		{"bad request", 400, `{"error": {"code": 400, "message": "* GenerateContentRequest.contents: contents is not specified\n", "status": "INVALID_ARGUMENT"}}`,
			400, "* GenerateContentRequest.contents: contents is not specified\n", 0},
		{"not found in an array", 404, `[{"error": {"code": 404, "message": "models/gemini-9 is not found for API version v1beta.", "status": "NOT_FOUND"}}]`,
			404, "models/gemini-9 is not found for API version v1beta.", 0},
		{"internal", 500, `{"error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}}`, 500, "An internal error has occurred.", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAdapter(t, &stub{status: tt.status, body: tt.body})
			_, err := a.Complete(context.Background(), parse(t, `{"model":"gemini-1.5-flash","messages":[{"role":"user","content":"x"}]}`))
			var ue *upstream.Error
			if !errors.As(err, &ue) || ue.Status != tt.want || ue.Message != tt.message || ue.RetryAfter != tt.retry {
				t.Fatalf("err = %+v", err)
			}
			if tt.want == 401 {
				if status, _, _, msg, _ := ue.HTTP(); status != 502 || strings.Contains(msg, "API key not valid") {
					t.Errorf("invalid key maps to %d %q", status, msg)
				}
			}
		})
	}
}

// Usage before the end is the latest usageMetadata, mapped as the usage
// chunk is: thoughts are completion (and reasoning) tokens, cached content
// is part of the prompt.
func TestStreamUsageSoFar(t *testing.T) {
	body := docStream[:strings.Index(docStream, "\r\n\r\n")+4] +
		"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" opposite\"}],\"role\": \"model\"}}],\"usageMetadata\": {\"promptTokenCount\": 8,\"candidatesTokenCount\": 2,\"totalTokenCount\": 13,\"cachedContentTokenCount\": 4,\"thoughtsTokenCount\": 3}}\r\n\r\n"
	a := newAdapter(t, &stub{body: body})
	st, err := a.Stream(context.Background(), parse(t, `{"model":"gemini-2.0-flash","messages":[{"role":"user","content":"hi"}],"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	if u := st.Usage(); u == nil || u.PromptTokens != 8 || u.CompletionTokens != 0 || u.TotalTokens != 8 {
		t.Errorf("usage after the first chunk = %+v", u)
	}
	for {
		if _, err = st.Recv(); err != nil {
			break
		}
	}
	var ue *upstream.Error
	if !errors.As(err, &ue) {
		t.Fatalf("end = %v, want the cut", err)
	}
	u := st.Usage()
	if u == nil || u.PromptTokens != 8 || u.CompletionTokens != 5 || u.TotalTokens != 13 ||
		u.PromptTokensDetails == nil || u.PromptTokensDetails.CachedTokens != 4 ||
		u.CompletionTokensDetails == nil || u.CompletionTokensDetails.ReasoningTokens != 3 {
		t.Errorf("usage = %+v", u)
	}
}

// Whatever event carries Gemini's finishReason, the reason comes on a chunk
// of its own with an empty delta, after the event's content, and once.
func TestStreamFinishChunkIsSeparate(t *testing.T) {
	ev := func(json string) string { return "data: " + json + "\r\n\r\n" }
	tests := []struct {
		name    string
		body    string
		reason  string
		content []string // content deltas before the finish chunk, in order
		calls   int
	}{
		{"one event with text and reason", ev(`{"candidates":[{"content":{"role":"model","parts":[{"text":"Hi"}]},"finishReason":"STOP"}]}`),
			"stop", []string{"Hi"}, 0},
		{"reason on an empty last event", ev(`{"candidates":[{"content":{"role":"model","parts":[{"text":"Hi"}]}}]}`) +
			ev(`{"candidates":[{"content":{"role":"model","parts":[{"text":""}]},"finishReason":"STOP"}]}`),
			"stop", []string{"Hi"}, 0},
		{"max tokens", ev(`{"candidates":[{"content":{"role":"model","parts":[{"text":"a"}]}}]}`) +
			ev(`{"candidates":[{"content":{"role":"model","parts":[{"text":" b"}]},"finishReason":"MAX_TOKENS"}]}`),
			"length", []string{"a", " b"}, 0},
		{"safety", ev(`{"candidates":[{"content":{"role":"model","parts":[{"text":"x"}]}}]}`) +
			ev(`{"candidates":[{"finishReason":"SAFETY"}]}`),
			"content_filter", []string{"x"}, 0},
		{"blocked prompt", ev(`{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":3,"totalTokenCount":3}}`),
			"content_filter", nil, 0},
		{"text then a call", ev(`{"candidates":[{"content":{"role":"model","parts":[{"text":"Let me look."}]}}]}`) +
			ev(`{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"f","args":{"a":1}}}]},"finishReason":"STOP"}]}`),
			"tool_calls", []string{"Let me look."}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks, _, err := stream(t, tt.body)
			if err != io.EOF {
				t.Fatalf("end = %v", err)
			}
			var content []string
			calls, finishes := 0, 0
			for i, c := range chunks {
				if len(c.Choices) == 0 {
					if i != len(chunks)-1 || c.Usage == nil {
						t.Fatalf("chunk %d has no choice and is not the final usage chunk: %+v", i, c)
					}
					continue
				}
				ch := c.Choices[0]
				if ch.FinishReason != nil {
					finishes++
					wantFinishChunk(t, c, tt.reason)
					continue
				}
				if finishes > 0 {
					t.Fatalf("chunk %d comes after the finish chunk: %+v", i, ch)
				}
				if ch.Delta.Content != nil && *ch.Delta.Content != "" {
					content = append(content, *ch.Delta.Content)
				}
				calls += len(ch.Delta.ToolCalls)
			}
			if finishes != 1 || calls != tt.calls || strings.Join(content, "|") != strings.Join(tt.content, "|") {
				t.Fatalf("finish chunks %d, calls %d, content %q; want 1, %d, %q", finishes, calls, content, tt.calls, tt.content)
			}
			if d := chunks[0].Choices; len(d) == 0 || d[0].Delta.Role != "assistant" {
				t.Fatalf("first chunk %+v does not open the assistant message", chunks[0])
			}
		})
	}
}
