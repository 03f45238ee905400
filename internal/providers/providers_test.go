package providers_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/chat"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
	"github.com/beaver-gateway/beaver/internal/tokens"
)

// The four wire formats, each with a catalog model, run through the same
// behaviour suite against the fake upstream. The Responses format is
// Perplexity's Agent API (the fake's /v1/responses), in Perplexity's
// configuration: every request offers web_search, so each answer ran one
// search.
var formats = []struct {
	name, format, model, baseSuffix string
}{
	{"openai", providers.FormatOpenAI, "gpt-4o-mini", "/v1"},
	{"anthropic", providers.FormatAnthropic, "claude-3-5-haiku-20241022", ""},
	{"google", providers.FormatGemini, "gemini-1.5-flash", ""},
	{"perplexity", providers.FormatResponses, "sonar", "/v1"},
}

type env struct {
	p    providers.Provider
	fake *fakeupstream.Server
	srv  *httptest.Server
}

func setup(t *testing.T, format string, opts fakeupstream.Options, mod func(*providers.Config)) env {
	t.Helper()
	fake := fakeupstream.New(opts)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return setupWith(t, format, fake, srv, srv.URL, mod)
}

func setupWith(t *testing.T, format string, fake *fakeupstream.Server, srv *httptest.Server, base string, mod func(*providers.Config)) env {
	t.Helper()
	for _, f := range formats {
		if f.format != format {
			continue
		}
		cfg := providers.Config{Name: f.name, Format: f.format, BaseURL: base + f.baseSuffix, APIKey: "test-key"}
		if mod != nil {
			mod(&cfg)
		}
		p, err := providers.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return env{p: p, fake: fake, srv: srv}
	}
	t.Fatalf("unknown format %q", format)
	return env{}
}

func request(model, text string) *chat.Request {
	return &chat.Request{Model: model, Messages: []chat.Message{{Role: chat.RoleUser, Content: chat.TextContent(text)}}}
}

// wantPrompt is the prompt the fake reports for request(f.model, text): an
// OpenAI model's counted as OpenAI does (o200k_base: 3 per message + its
// role + its text, 3 for the reply), the others' by words + 3.
func wantPrompt(t *testing.T, format, text string) int {
	t.Helper()
	if format != providers.FormatOpenAI {
		return len(strings.Fields(text)) + 3
	}
	n, err := tokens.Count(tokens.O200kBase, text)
	if err != nil {
		t.Fatal(err)
	}
	return 3 + 1 + n + 3
}

// drain reads a stream to its end and returns the chunks and the final error
// (io.EOF on a normal end).
func drain(s providers.Stream) ([]*chat.Chunk, error) {
	var out []*chat.Chunk
	for {
		c, err := s.Recv()
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
}

type streamSummary struct {
	content, args, toolName, finish string
	roleFirst                       bool
	usage                           *chat.Usage
	usageLast                       bool
}

func summarize(chunks []*chat.Chunk) streamSummary {
	var s streamSummary
	for i, c := range chunks {
		if c.Object != chat.ObjectChunk {
			s.finish = "bad object " + c.Object
		}
		if c.Usage != nil {
			s.usage = c.Usage
			s.usageLast = i == len(chunks)-1 && len(c.Choices) == 0
		}
		for _, ch := range c.Choices {
			if i == 0 && ch.Delta.Role == chat.RoleAssistant {
				s.roleFirst = true
			}
			if ch.Delta.Content != nil {
				s.content += *ch.Delta.Content
			}
			for _, tc := range ch.Delta.ToolCalls {
				s.args += tc.Function.Arguments
				s.toolName += tc.Function.Name
			}
			if ch.FinishReason != nil {
				s.finish = *ch.FinishReason
			}
		}
	}
	return s
}

func asError(t *testing.T, err error) *providers.Error {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error = %v (%T), want *providers.Error", err, err)
	}
	return pe
}

func TestDefaultConfigsBuild(t *testing.T) {
	cfgs := providers.DefaultConfigs()
	want := map[string]string{
		"openai": "https://api.openai.com/v1", "deepseek": "https://api.deepseek.com",
		"perplexity": "https://api.perplexity.ai", "xai": "https://api.x.ai/v1",
		"anthropic": "https://api.anthropic.com", "google": "https://generativelanguage.googleapis.com",
	}
	if len(cfgs) != len(want) {
		t.Fatalf("%d configs, want %d", len(cfgs), len(want))
	}
	for name, base := range want {
		cfg, ok := cfgs[name]
		if !ok {
			t.Fatalf("no config for %s", name)
		}
		if cfg.Name != name || cfg.BaseURL != base {
			t.Errorf("%s: %+v", name, cfg)
		}
		if cfg.FirstByteTimeout != 60*time.Second || cfg.IdleTimeout != 60*time.Second || cfg.ConnectTimeout != 10*time.Second || cfg.MaxRetries != 2 ||
			cfg.RetryBudget != 10*time.Second || cfg.BreakerFailures != 5 {
			t.Errorf("%s: timeouts %+v", name, cfg)
		}
		if _, err := providers.New(cfg); err != nil {
			t.Errorf("%s: New: %v", name, err)
		}
	}
	if cfgs["anthropic"].Format != "anthropic" || cfgs["google"].Format != "gemini" || cfgs["xai"].Format != "openai" {
		t.Error("wrong formats")
	}
	// Perplexity speaks its Agent API: https://api.perplexity.ai/v1/responses.
	if p := cfgs["perplexity"]; p.Format != providers.FormatResponses || p.ResponsesPath != "/v1/responses" {
		t.Errorf("perplexity: format %q path %q", p.Format, p.ResponsesPath)
	}
	if _, err := providers.New(providers.Config{Name: "x", Format: "cohere", BaseURL: "https://x"}); err == nil {
		t.Error("unknown format accepted")
	}
	if _, err := providers.New(providers.Config{Name: "x", Format: "openai", BaseURL: "not a url"}); err == nil {
		t.Error("bad base URL accepted")
	}
}

func TestErrorHTTP(t *testing.T) {
	tests := []struct {
		err                    providers.Error
		status                 int
		errType, code, message string
		retryAfter             time.Duration
	}{
		{providers.Error{Status: 400, Message: "bad messages"}, 400, "invalid_request_error", "invalid_request", "bad messages", 0},
		{providers.Error{Status: 404, Message: "no model"}, 400, "invalid_request_error", "invalid_request", "no model", 0},
		{providers.Error{Status: 413, Message: "too big"}, 400, "invalid_request_error", "invalid_request", "too big", 0},
		{providers.Error{Status: 422, Message: "unprocessable"}, 400, "invalid_request_error", "invalid_request", "unprocessable", 0},
		{providers.Error{Status: 401, Message: "Incorrect API key provided: sk-abc"}, 502, "upstream_error", "upstream_error", "upstream rejected the gateway's credentials", 0},
		{providers.Error{Status: 403, Message: "sk-abc"}, 502, "upstream_error", "upstream_error", "upstream rejected the gateway's credentials", 0},
		{providers.Error{Status: 429, Message: "slow down", RetryAfter: 3 * time.Second}, 429, "rate_limit_error", "upstream_rate_limited", "", 3 * time.Second},
		{providers.Error{Status: 429}, 429, "rate_limit_error", "upstream_rate_limited", "", time.Second},
		{providers.Error{Status: 500, Message: "oops"}, 502, "upstream_error", "upstream_error", "", 0},
		{providers.Error{Status: 529, Message: "Overloaded"}, 502, "upstream_error", "upstream_error", "", 0},
		{providers.Error{Message: "connection refused"}, 502, "upstream_error", "upstream_error", "", 0},
		{providers.Error{Timeout: true}, 504, "upstream_error", "upstream_timeout", "", 0},
	}
	for _, tt := range tests {
		status, errType, code, msg, ra := tt.err.HTTP()
		if status != tt.status || errType != tt.errType || code != tt.code || ra != tt.retryAfter {
			t.Errorf("%+v → %d %s %s %v", tt.err, status, errType, code, ra)
		}
		if tt.message != "" && msg != tt.message {
			t.Errorf("%+v → message %q, want %q", tt.err, msg, tt.message)
		}
		if msg == "" || strings.Contains(msg, "sk-") {
			t.Errorf("%+v → message %q", tt.err, msg)
		}
	}
}

func TestCompleteText(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			e := setup(t, f.format, fakeupstream.Options{}, nil)
			resp, err := e.p.Complete(context.Background(), request(f.model, "Say hi"))
			if err != nil {
				t.Fatal(err)
			}
			want := "Hello from fake " + f.format + "! lorem ipsum dolor sit"
			if len(resp.Choices) != 1 || resp.Choices[0].Message.Content.Text() != want {
				t.Fatalf("choices = %+v", resp.Choices)
			}
			if resp.Object != chat.ObjectCompletion || resp.Choices[0].Message.Role != "assistant" || resp.Choices[0].FinishReason != "stop" {
				t.Errorf("response = %+v", resp)
			}
			// prompt: 2 words + 3 for the message (OpenAI's count for its
			// model); completion: 8 words
			p := wantPrompt(t, f.format, "Say hi")
			if u := resp.Usage; u == nil || u.PromptTokens != p || u.CompletionTokens != 8 || u.TotalTokens != p+8 {
				t.Errorf("usage = %+v", resp.Usage)
			}
		})
	}
}

func TestStreamText(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			e := setup(t, f.format, fakeupstream.Options{}, nil)
			s, err := e.p.Stream(context.Background(), request(f.model, "Say hi [[words:5]]"))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			chunks, err := drain(s)
			if err != io.EOF {
				t.Fatalf("end = %v, want io.EOF", err)
			}
			sum := summarize(chunks)
			if sum.content != "Hello from fake "+f.format+"! lorem" {
				t.Errorf("content = %q", sum.content)
			}
			if !sum.roleFirst || sum.finish != "stop" {
				t.Errorf("roleFirst=%v finish=%q", sum.roleFirst, sum.finish)
			}
			p := wantPrompt(t, f.format, "Say hi [[words:5]]")
			if !sum.usageLast || sum.usage.PromptTokens != p || sum.usage.CompletionTokens != 5 || sum.usage.TotalTokens != p+5 {
				t.Errorf("usage = %+v (last: %v)", sum.usage, sum.usageLast)
			}
			if n := len(chunks); n < 5 {
				t.Errorf("%d chunks, want one per word at least", n)
			}
		})
	}
}

// Chunks leave as their events arrive: the first word comes through while
// the upstream still holds the rest of its answer (a buffering reader would
// wait for an end that never comes, and fail at the deadline).
func TestStreamIsNotBuffered(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			e := setup(t, f.format, fakeupstream.Options{}, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := e.p.Stream(ctx, request(f.model, "[[words:6]] [[stall:1]]"))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for {
				c, err := s.Recv()
				if err != nil {
					t.Fatalf("before the first word: %v; the stream is buffered", err)
				}
				if len(c.Choices) > 0 && c.Choices[0].Delta.Content != nil && *c.Choices[0].Delta.Content != "" {
					break
				}
			}
		})
	}
}

func TestMaxTokensCap(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			e := setup(t, f.format, fakeupstream.Options{}, nil)
			r := request(f.model, "[[words:10]]")
			three := 3
			r.MaxTokens = &three
			resp, err := e.p.Complete(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Choices[0].FinishReason != "length" || resp.Usage.CompletionTokens != 3 {
				t.Errorf("finish %q usage %+v", resp.Choices[0].FinishReason, resp.Usage)
			}
			r.Stream = true
			s, err := e.p.Stream(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			chunks, err := drain(s)
			sum := summarize(chunks)
			if err != io.EOF || sum.finish != "length" || sum.content != "Hello from fake" || sum.usage.CompletionTokens != 3 {
				t.Errorf("err %v summary %+v", err, sum)
			}
		})
	}
}

func toolRequest(model string) *chat.Request {
	r := request(model, "What is the weather? [[tool]]")
	r.Tools = []chat.Tool{{Type: "function", Function: chat.FunctionDef{
		Name: "get_weather", Description: "Weather of a city",
		Parameters: []byte(`{"type":"object","properties":{"input":{"type":"string"}},"required":["input"]}`),
	}}}
	return r
}

func TestToolCalls(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			e := setup(t, f.format, fakeupstream.Options{}, nil)
			resp, err := e.p.Complete(context.Background(), toolRequest(f.model))
			if err != nil {
				t.Fatal(err)
			}
			msg := resp.Choices[0].Message
			if resp.Choices[0].FinishReason != "tool_calls" || len(msg.ToolCalls) != 1 {
				t.Fatalf("choice = %+v", resp.Choices[0])
			}
			tc := msg.ToolCalls[0]
			if tc.ID == "" || tc.Type != "function" || tc.Function.Name != "get_weather" || tc.Function.Arguments != `{"input":"fake"}` {
				t.Errorf("tool call = %+v", tc)
			}
			if resp.Usage.CompletionTokens != 3 {
				t.Errorf("usage = %+v", resp.Usage)
			}

			s, err := e.p.Stream(context.Background(), toolRequest(f.model))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			chunks, err := drain(s)
			sum := summarize(chunks)
			if err != io.EOF || sum.finish != "tool_calls" || sum.toolName != "get_weather" || sum.args != `{"input":"fake"}` {
				t.Errorf("err %v summary %+v", err, sum)
			}
			for _, c := range chunks {
				for _, ch := range c.Choices {
					for _, tc := range ch.Delta.ToolCalls {
						if tc.Index == nil || *tc.Index != 0 {
							t.Errorf("tool call delta without index 0: %+v", tc)
						}
					}
				}
			}
		})
	}
}

func TestUpstreamErrors(t *testing.T) {
	tests := []struct {
		status     int
		httpStatus int
		code       string
		retryAfter time.Duration
		attempts   int
		formats    string // "" = all
	}{
		// One retry, within a 1s budget: the request's faults, a key that
		// is the only one and a quick 500 (likely the request's too) are
		// not retried; other 5xx are; a 429 whose Retry-After (2s) would
		// outlast the budget is returned at once.
		{400, 400, "invalid_request", 0, 1, ""},
		{401, 502, "upstream_error", 0, 1, ""},
		{403, 502, "upstream_error", 0, 1, ""},
		{404, 400, "invalid_request", 0, 1, ""},
		{429, 429, "upstream_rate_limited", 2 * time.Second, 1, ""},
		{500, 502, "upstream_error", 0, 1, ""},
		{503, 502, "upstream_error", 0, 2, ""},
		{529, 502, "upstream_error", 0, 2, "anthropic"},
	}
	for _, f := range formats {
		for _, tt := range tests {
			if tt.formats != "" && tt.formats != f.format {
				continue
			}
			for _, stream := range []bool{false, true} {
				name := f.name + "/" + http.StatusText(tt.status)
				if stream {
					name += "/stream"
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					e := setup(t, f.format, fakeupstream.Options{}, func(c *providers.Config) {
						c.MaxRetries, c.RetryBudget = 1, time.Second
					})
					r := request(f.model, "fail please [[error:"+strconv.Itoa(tt.status)+"]]")
					var err error
					if stream {
						var s providers.Stream
						s, err = e.p.Stream(context.Background(), r)
						if s != nil {
							s.Close()
						}
					} else {
						_, err = e.p.Complete(context.Background(), r)
					}
					pe := asError(t, err)
					if pe.Status != tt.status || pe.Message == "" || pe.Timeout {
						t.Errorf("error = %+v", pe)
					}
					status, _, code, msg, ra := pe.HTTP()
					if status != tt.httpStatus || code != tt.code || ra != tt.retryAfter {
						t.Errorf("HTTP() = %d %s %q %v", status, code, msg, ra)
					}
					if tt.status == 400 && !strings.Contains(msg, "fake error requested") {
						t.Errorf("400 message %q lost the upstream's", msg)
					}
					if strings.Contains(msg, "sk-fake") {
						t.Errorf("message leaks a key: %q", msg)
					}
					if n := len(e.fake.Requests()); n != tt.attempts {
						t.Errorf("%d upstream attempts, want %d", n, tt.attempts)
					}
				})
			}
		}
	}
}

func TestStreamCut(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			e := setup(t, f.format, fakeupstream.Options{}, nil)
			s, err := e.p.Stream(context.Background(), request(f.model, "[[words:8]] [[cut:3]]"))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			chunks, err := drain(s)
			if err == io.EOF {
				t.Fatal("a cut stream ended with io.EOF")
			}
			pe := asError(t, err)
			if pe.Timeout {
				t.Errorf("cut reported as timeout: %+v", pe)
			}
			sum := summarize(chunks)
			if sum.content != "Hello from fake" || sum.usage != nil || sum.finish != "" {
				t.Errorf("summary %+v", sum)
			}
			if status, _, code, _, _ := pe.HTTP(); status != 502 || code != "upstream_error" {
				t.Errorf("HTTP() = %d %s", status, code)
			}
			if n := len(e.fake.Requests()); n != 1 {
				t.Errorf("%d attempts: a stream that already delivered must not be retried", n)
			}
		})
	}
}

func TestMidStreamError(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			e := setup(t, f.format, fakeupstream.Options{}, nil)
			s, err := e.p.Stream(context.Background(), request(f.model, "[[midstream-error:2]]"))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			chunks, err := drain(s)
			pe := asError(t, err)
			if pe.Message == "" || pe.Status < 500 {
				t.Errorf("error = %+v", pe)
			}
			if sum := summarize(chunks); sum.content != "Hello from" {
				t.Errorf("content = %q", sum.content)
			}
		})
	}
}

// usageWant compares a stream's Usage with the counts expected (nil: none).
func usageWant(t *testing.T, got, want *chat.Usage) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Usage() = %s, want %s", usageString(got), usageString(want))
	}
}

func usageString(u *chat.Usage) string {
	if u == nil {
		return "nil"
	}
	b, _ := json.Marshal(u)
	return string(b)
}

// A cut stream keeps the usage the upstream sent before the cut: Anthropic's
// message_start (prompt, and 1 output token), Gemini's usageMetadata of the
// chunks that arrived. OpenAI reports usage only at the end.
func TestStreamUsageAfterCut(t *testing.T) {
	// prompt: 2 words + 3 for the message
	tests := map[string]struct {
		text, content string
		usage         *chat.Usage
	}{
		"openai":    {"[[words:8]] [[cut:2]]", "Hello from", nil},
		"anthropic": {"[[words:8]] [[cut:2]]", "Hello from", &chat.Usage{PromptTokens: 5, CompletionTokens: 1, TotalTokens: 6}},
		"google":    {"[[words:8]] [[cut:1]]", "Hello", &chat.Usage{PromptTokens: 5, CompletionTokens: 1, TotalTokens: 6}},
		// usage only in the terminal event; the search that streamed by is kept
		"perplexity": {"[[words:8]] [[cut:2]]", "Hello from", &chat.Usage{ServerToolUse: map[string]int{"web_search": 1}}},
	}
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			tt := tests[f.name]
			e := setup(t, f.format, fakeupstream.Options{}, nil)
			s, err := e.p.Stream(context.Background(), request(f.model, tt.text))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			chunks, err := drain(s)
			if pe := asError(t, err); pe.Timeout || pe.Status != 0 {
				t.Errorf("error = %+v, want the cut", pe)
			}
			if sum := summarize(chunks); sum.content != tt.content || sum.usage != nil {
				t.Errorf("summary %+v", sum)
			}
			usageWant(t, s.Usage(), tt.usage)
		})
	}
}

// An error event mid-stream leaves the usage reported before it.
func TestStreamUsageAfterMidStreamError(t *testing.T) {
	// prompt: 1 word + 3 for the message
	tests := map[string]struct {
		status int
		usage  *chat.Usage
	}{
		"openai":     {500, nil},
		"anthropic":  {529, &chat.Usage{PromptTokens: 4, CompletionTokens: 1, TotalTokens: 5}},                           // overloaded_error
		"google":     {http.StatusServiceUnavailable, &chat.Usage{PromptTokens: 4, CompletionTokens: 2, TotalTokens: 6}}, // UNAVAILABLE
		"perplexity": {500, &chat.Usage{ServerToolUse: map[string]int{"web_search": 1}}},                                 // response.failed carries no usage; the search ran
	}
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			tt := tests[f.name]
			e := setup(t, f.format, fakeupstream.Options{}, nil)
			s, err := e.p.Stream(context.Background(), request(f.model, "[[midstream-error:2]]"))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			chunks, err := drain(s)
			if pe := asError(t, err); pe.Status != tt.status {
				t.Errorf("error = %+v, want status %d", pe, tt.status)
			}
			if sum := summarize(chunks); sum.content != "Hello from" || sum.usage != nil {
				t.Errorf("summary %+v", sum)
			}
			usageWant(t, s.Usage(), tt.usage)
		})
	}
}

// After a normal end Usage is the usage chunk's usage, in a value of its
// own: filling in the chunk's cost, as the API does, leaves it alone.
func TestStreamUsageAtEnd(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			e := setup(t, f.format, fakeupstream.Options{}, nil)
			s, err := e.p.Stream(context.Background(), request(f.model, "Say hi [[words:5]]"))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			usageWant(t, s.Usage(), nil) // nothing read yet
			chunks, err := drain(s)
			if err != io.EOF {
				t.Fatalf("end = %v, want io.EOF", err)
			}
			sum := summarize(chunks)
			if !sum.usageLast {
				t.Fatalf("no usage chunk: %+v", sum)
			}
			usageWant(t, s.Usage(), sum.usage)
			p := wantPrompt(t, f.format, "Say hi [[words:5]]")
			if u := s.Usage(); u.PromptTokens != p || u.CompletionTokens != 5 || u.TotalTokens != p+5 {
				t.Errorf("Usage() = %s", usageString(u))
			}
			want := usageString(sum.usage)
			sum.usage.Cost, sum.usage.PromptTokens = upstream.Ptr(money.USD(7)), 0
			if d := sum.usage.PromptTokensDetails; d != nil {
				d.CachedTokens = 9
			}
			s.Usage().CompletionTokens = 0
			if got := usageString(s.Usage()); got != want {
				t.Errorf("Usage() = %s after changing the chunk's usage, want %s", got, want)
			}
		})
	}
}

func TestNoUsage(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			e := setup(t, f.format, fakeupstream.Options{}, nil)
			resp, err := e.p.Complete(context.Background(), request(f.model, "[[nousage]]"))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Usage != nil {
				t.Errorf("usage = %+v", resp.Usage)
			}
			s, err := e.p.Stream(context.Background(), request(f.model, "[[nousage]]"))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			chunks, err := drain(s)
			sum := summarize(chunks)
			if err != io.EOF || sum.usage != nil || sum.finish != "stop" || sum.content == "" {
				t.Errorf("err %v summary %+v", err, sum)
			}
			var want *chat.Usage
			if f.format == providers.FormatResponses {
				// The search the Agent API ran streamed by: it is billed
				// even without a usage report.
				want = &chat.Usage{ServerToolUse: map[string]int{"web_search": 1}}
			}
			usageWant(t, s.Usage(), want)
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	short := func(c *providers.Config) { c.IdleTimeout = 150 * time.Millisecond }
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, f.format, fakeupstream.Options{}, short)
			s, err := e.p.Stream(context.Background(), request(f.model, "[[hang]]"))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// [[hang]] never ends on its own: only the idle timer can end drain.
			_, err = drain(s)
			pe := asError(t, err)
			if !pe.Timeout {
				t.Fatalf("error = %+v, want a timeout", pe)
			}
			if status, _, code, _, _ := pe.HTTP(); status != 504 || code != "upstream_timeout" {
				t.Errorf("HTTP() = %d %s", status, code)
			}

			_, err = e.p.Complete(context.Background(), request(f.model, "[[hang]]"))
			if pe := asError(t, err); !pe.Timeout {
				t.Errorf("Complete error = %+v, want a timeout", pe)
			}
		})
	}
}

func TestFirstByteTimeout(t *testing.T) {
	short := func(c *providers.Config) { c.FirstByteTimeout = 150 * time.Millisecond }
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, f.format, fakeupstream.Options{}, short)
			// Without the timer the answer would come, after 3 s: a timeout
			// error is the timer's.
			_, err := e.p.Stream(context.Background(), request(f.model, "[[slow:3000]]"))
			pe := asError(t, err)
			if !pe.Timeout || pe.Status != 0 {
				t.Fatalf("error = %+v, want a timeout", pe)
			}
			if n := len(e.fake.Requests()); n != 1 {
				t.Errorf("%d attempts; timeouts are not retried", n)
			}
			_, err = e.p.Complete(context.Background(), request(f.model, "[[slow:3000]]"))
			if pe := asError(t, err); !pe.Timeout {
				t.Errorf("Complete error = %+v", pe)
			}
		})
	}
}

// Cancelling the caller's context aborts the upstream request at once, and
// the upstream sees the client go away.
func TestCancelAbortsUpstream(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			e := setup(t, f.format, fakeupstream.Options{ChunkDelay: 20 * time.Millisecond}, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s, err := e.p.Stream(ctx, request(f.model, "[[words:500]]"))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for range 3 {
				if _, err := s.Recv(); err != nil {
					t.Fatal(err)
				}
			}
			cancel()
			_, err = drain(s)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Recv after cancel = %v, want context.Canceled inside", err)
			}
			// 500 words at 20 ms would take 10 s: the upstream seeing the
			// client leave before that is the abort.
			waitFor(t, func() bool { return e.fake.Cancelled() == 1 })
		})
	}
}

// Closing a stream early also aborts the upstream request.
func TestCloseAbortsUpstream(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			e := setup(t, f.format, fakeupstream.Options{ChunkDelay: 20 * time.Millisecond}, nil)
			s, err := e.p.Stream(context.Background(), request(f.model, "[[words:500]]"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Recv(); err != nil {
				t.Fatal(err)
			}
			s.Close()
			waitFor(t, func() bool { return e.fake.Cancelled() == 1 })
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(8 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 8s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// flaky answers the first n requests with a failure, then passes requests to
// the fake.
func flaky(fake http.Handler, n int64, fail func(w http.ResponseWriter)) (http.Handler, *atomic.Int64) {
	var count atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if count.Add(1) <= n {
			fail(w)
			return
		}
		fake.ServeHTTP(w, r)
	}), &count
}

func TestRetriesBeforeOutput(t *testing.T) {
	fail503 := func(w http.ResponseWriter) {
		http.Error(w, `{"error":{"message":"busy"}}`, http.StatusServiceUnavailable)
	}
	failConn := func(w http.ResponseWriter) { panic(http.ErrAbortHandler) } // connection dropped before any answer
	fail429 := func(w http.ResponseWriter) {
		http.Error(w, `{"error":{"message":"slow down"}}`, http.StatusTooManyRequests)
	}
	fail400 := func(w http.ResponseWriter) {
		http.Error(w, `{"error":{"message":"bad"}}`, http.StatusBadRequest)
	}
	tests := []struct {
		name       string
		fail       func(http.ResponseWriter)
		failures   int64
		maxRetries int
		ok         bool
		attempts   int64
	}{
		{"503 then success", fail503, 1, 0, true, 2},
		{"network error then success", failConn, 1, 0, true, 2},
		{"503 twice, default two retries", fail503, 2, 0, true, 3},
		{"503 three times, default two retries", fail503, 3, 0, false, 3},
		{"503 three times, three retries", fail503, 3, 3, true, 4},
		{"retries disabled", fail503, 1, -1, false, 1},
		{"429 without Retry-After is retried", fail429, 1, 3, true, 2},
		{"400 is not retried", fail400, 1, 3, false, 1},
	}
	for _, f := range formats {
		for _, tt := range tests {
			for _, stream := range []bool{false, true} {
				name := f.name + "/" + tt.name
				if stream {
					name += "/stream"
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					fake := fakeupstream.New(fakeupstream.Options{})
					h, count := flaky(fake, tt.failures, tt.fail)
					srv := httptest.NewServer(h)
					defer srv.Close()
					e := setupWith(t, f.format, fake, srv, srv.URL, func(c *providers.Config) { c.MaxRetries = tt.maxRetries })
					var err error
					if stream {
						var s providers.Stream
						if s, err = e.p.Stream(context.Background(), request(f.model, "hi")); err == nil {
							_, err = drain(s)
							if err == io.EOF {
								err = nil
							}
							s.Close()
						}
					} else {
						_, err = e.p.Complete(context.Background(), request(f.model, "hi"))
					}
					if (err == nil) != tt.ok {
						t.Errorf("err = %v, want ok=%v", err, tt.ok)
					}
					if got := count.Load(); got != tt.attempts {
						t.Errorf("%d attempts, want %d", got, tt.attempts)
					}
				})
			}
		}
	}
}

// A request the provider's format cannot carry fails before any call.
func TestInvalidForFormat(t *testing.T) {
	for _, f := range formats[1:] { // anthropic and gemini translate images; the Responses adapter checks data URLs
		t.Run(f.name, func(t *testing.T) {
			e := setup(t, f.format, fakeupstream.Options{}, nil)
			r := &chat.Request{Model: f.model, Messages: []chat.Message{{Role: "user", Content: chat.PartsContent(
				chat.Part{Type: chat.PartImageURL, ImageURL: &chat.ImageURL{URL: "data:image/png,notbase64"}})}}}
			_, err := e.p.Complete(context.Background(), r)
			var ie *chat.InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want *chat.InvalidError", err)
			}
			if n := len(e.fake.Requests()); n != 0 {
				t.Errorf("%d upstream calls", n)
			}
		})
	}
}

// A non-streaming answer whose connection drops midway is an upstream error.
func TestCompleteCut(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			e := setup(t, f.format, fakeupstream.Options{}, nil)
			_, err := e.p.Complete(context.Background(), request(f.model, "[[cut:2]]"))
			if pe := asError(t, err); pe.Timeout || pe.Status != 0 {
				t.Errorf("error = %+v", pe)
			}
		})
	}
}

// Streams read to their end, and complete answers, give their connection
// back to the pool: a run of requests uses one connection.
func TestConnectionReuse(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			fake := fakeupstream.New(fakeupstream.Options{})
			srv := httptest.NewUnstartedServer(fake)
			var conns atomic.Int64
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			srv.Start()
			defer srv.Close()
			e := setupWith(t, f.format, fake, srv, srv.URL, nil)
			for range 5 {
				s, err := e.p.Stream(context.Background(), request(f.model, "hi"))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := drain(s); err != io.EOF {
					t.Fatal(err)
				}
				s.Close()
				if _, err := e.p.Complete(context.Background(), request(f.model, "hi")); err != nil {
					t.Fatal(err)
				}
			}
			if n := conns.Load(); n != 1 {
				t.Errorf("%d connections for 10 sequential requests, want 1", n)
			}
		})
	}
}

// BenchmarkStream measures a whole 8-word streamed request through adapter
// and fake upstream (both in process).
func BenchmarkStream(b *testing.B) {
	for _, f := range formats {
		b.Run(f.name, func(b *testing.B) {
			fake := fakeupstream.New(fakeupstream.Options{DisableRecording: true})
			srv := httptest.NewServer(fake)
			defer srv.Close()
			p, err := providers.New(providers.Config{Name: f.name, Format: f.format, BaseURL: srv.URL + f.baseSuffix})
			if err != nil {
				b.Fatal(err)
			}
			req := request(f.model, "Say hi")
			b.ReportAllocs()
			for b.Loop() {
				s, err := p.Stream(context.Background(), req)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := drain(s); err != io.EOF {
					b.Fatal(err)
				}
				s.Close()
			}
		})
	}
}

// How each provider's usage relates to OpenAI's convention is part of its
// configuration, and the adapter hands on OpenAI's convention whatever the
// provider's: xAI's reasoning tokens, outside its completion_tokens, are
// added in, on complete and stream alike.
func TestUsageConventions(t *testing.T) {
	for name, c := range providers.DefaultConfigs() {
		if got, want := c.Usage.ReasoningOutsideCompletion, name == "xai"; got != want {
			t.Errorf("%s: ReasoningOutsideCompletion = %v, want %v", name, got, want)
		}
	}
	xai := func(c *providers.Config) { c.Usage = providers.DefaultConfigs()["xai"].Usage }
	e := setup(t, providers.FormatOpenAI, fakeupstream.Options{}, xai)
	r, err := e.p.Complete(context.Background(), request("grok-3-mini", "[[words:1]] [[reasoning:228]]"))
	if err != nil {
		t.Fatal(err)
	}
	if u := r.Usage; u.CompletionTokens != 229 || u.TotalTokens != u.PromptTokens+229 || u.CompletionTokensDetails.ReasoningTokens != 228 {
		t.Errorf("complete: %+v", u)
	}
	s, err := e.p.Stream(context.Background(), request("grok-3-mini", "[[words:1]] [[reasoning:228]]"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := drain(s); !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if u := s.Usage(); u == nil || u.CompletionTokens != 229 || u.CompletionTokensDetails.ReasoningTokens != 228 {
		t.Errorf("stream: %+v", u)
	}
	// A provider in OpenAI's convention is passed through as it is.
	plain := setup(t, providers.FormatOpenAI, fakeupstream.Options{}, nil)
	r, err = plain.p.Complete(context.Background(), request("gpt-4o-mini", "[[words:1]] [[reasoning:228]]"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Usage.CompletionTokens != 229 {
		t.Errorf("openai: %+v", r.Usage)
	}
	// What xAI sends (the fake, like grok-3-mini): 1 completion token.
	r, err = plain.p.Complete(context.Background(), request("grok-3-mini", "[[words:1]] [[reasoning:228]]"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Usage.CompletionTokens != 1 || r.Usage.TotalTokens != r.Usage.PromptTokens+229 {
		t.Errorf("xAI's wire: %+v", r.Usage)
	}
}

// Gemini 3's function calls carry a thoughtSignature that must come back
// with them (400 otherwise). The adapter hands it to the client in
// tool_calls[].extra_content.google.thought_signature, complete and
// streamed, and puts it back on the call it sends on the next turn.
func TestGeminiThoughtSignatureRoundTrip(t *testing.T) {
	e := setup(t, providers.FormatGemini, fakeupstream.Options{}, nil)
	tools := []chat.Tool{{Type: "function", Function: chat.FunctionDef{Name: "get_weather", Parameters: json.RawMessage(`{"type":"object"}`)}}}
	ask := func(model string) *chat.Request {
		r := request(model, "weather? [[tool]]")
		r.Tools = tools
		return r
	}
	const model = "gemini-3-pro-preview"
	r, err := e.p.Complete(context.Background(), ask(model))
	if err != nil {
		t.Fatal(err)
	}
	calls := r.Choices[0].Message.ToolCalls
	if len(calls) != 1 || calls[0].ThoughtSignature() == "" {
		t.Fatalf("complete: tool calls %+v", calls)
	}
	s, err := e.p.Stream(context.Background(), ask(model))
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := drain(s)
	s.Close()
	if !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	var streamed string
	for _, c := range chunks {
		for _, ch := range c.Choices {
			for _, tc := range ch.Delta.ToolCalls {
				streamed += tc.ThoughtSignature()
			}
		}
	}
	if streamed != calls[0].ThoughtSignature() {
		t.Fatalf("stream: signature %q, complete gave %q", streamed, calls[0].ThoughtSignature())
	}

	next := func(tc chat.ToolCall) *chat.Request {
		r := ask(model)
		r.Messages = append(r.Messages,
			chat.Message{Role: chat.RoleAssistant, ToolCalls: []chat.ToolCall{tc}},
			chat.Message{Role: chat.RoleTool, ToolCallID: tc.ID, Content: chat.TextContent(`{"temp_c":21}`)})
		return r
	}
	if _, err := e.p.Complete(context.Background(), next(calls[0])); err != nil {
		t.Fatalf("the next turn with the signature: %v", err)
	}
	bare := calls[0]
	bare.ExtraContent = nil
	if _, err := e.p.Complete(context.Background(), next(bare)); err == nil || !strings.Contains(err.Error(), "thought_signature") {
		t.Fatalf("the fake must refuse a call without its signature, as Gemini 3 does: %v", err)
	}
	// Client JSON keeps extra_content from one turn to the next.
	var tc chat.ToolCall
	if err := json.Unmarshal([]byte(`{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"},"extra_content":{"google":{"thought_signature":"sig"}}}`), &tc); err != nil || tc.ThoughtSignature() != "sig" {
		t.Fatalf("decoded %+v, %v", tc, err)
	}
}
