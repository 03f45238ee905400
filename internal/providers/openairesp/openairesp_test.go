package openairesp_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/chat"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/providers/openairesp"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
)

// perplexity is the adapter in Perplexity's configuration against the fake
// Agent API (its /v1/responses).
func perplexity(t *testing.T) (*openairesp.Adapter, *fakeupstream.Server) {
	t.Helper()
	fake := fakeupstream.New(fakeupstream.Options{})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	a, err := openairesp.New(upstream.Config{Name: "perplexity", Format: "openai-responses", BaseURL: srv.URL,
		ResponsesPath: "/v1/responses", APIKey: "pplx-test", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return a, fake
}

// parse reads a chat request as the API does; model is the catalog's
// provider_model.
func parse(t *testing.T, body string) *chat.Request {
	t.Helper()
	r, err := chat.ParseRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func user(model, text string) *chat.Request {
	return &chat.Request{Model: model, Messages: []chat.Message{{Role: chat.RoleUser, Content: chat.TextContent(text)}}}
}

// sent is the JSON body of the last request the fake received.
func sent(t *testing.T, fake *fakeupstream.Server) map[string]any {
	t.Helper()
	reqs := fake.Requests()
	if len(reqs) == 0 {
		t.Fatal("no upstream request")
	}
	var m map[string]any
	if err := json.Unmarshal(reqs[len(reqs)-1].Body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// drain reads a stream to its end: its chunks and the final error.
func drain(s upstream.Stream) ([]*chat.Chunk, error) {
	var out []*chat.Chunk
	for {
		c, err := s.Recv()
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
}

// A chat request reaches the Agent API in its own shape: the catalog's
// "sonar" as perplexity/sonar, the system prompt as instructions, the
// web_search tool with the client's web_search_options on it, tool calls
// bounded by chat.MaxServerToolCalls, store off, reasoning_effort as
// reasoning.effort, and none of the fields the strict API would refuse
// (the fake answers 400 to an unknown field).
func TestPerplexityRequest(t *testing.T) {
	a, fake := perplexity(t)
	req := parse(t, `{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"population of SF"}],
		"web_search_options":{"search_context_size":"high"},"reasoning_effort":"low","seed":3,"stop":"x","user":"u1",
		"temperature":0.2,"max_tokens":50,"metadata":{"k":"v"}}`)
	req.Model = "sonar"
	if _, err := a.Complete(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	got := sent(t, fake)
	want := map[string]any{
		"model": "perplexity/sonar", "instructions": "be brief",
		"input":          []any{map[string]any{"type": "message", "role": "user", "content": "population of SF"}},
		"tools":          []any{map[string]any{"type": "web_search", "search_context_size": "high"}},
		"max_tool_calls": float64(chat.MaxServerToolCalls), "max_output_tokens": float64(50), "temperature": 0.2,
		"reasoning": map[string]any{"effort": "low"}, "metadata": map[string]any{"k": "v"}, "store": false,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sent %s\nwant %s", jsonOf(got), jsonOf(want))
	}
	if p := fake.Requests()[0]; p.Path != "/v1/responses" || p.Header.Get("Authorization") != "Bearer pplx-test" {
		t.Errorf("sent to %s with %q", p.Path, p.Header.Get("Authorization"))
	}

	// A preset brings its own search: the tool goes only with options. A
	// client's lower max_tool_calls wins; a higher one is capped.
	for _, tt := range []struct {
		opts  string
		calls float64
		tools string
	}{
		{`"preset":"pro-search"`, 10, `null`},
		{`"preset":"pro-search","max_tool_calls":3`, 3, `null`},
		{`"max_tool_calls":50,"web_search_options":{"user_location":{"country":"FR"}}`, 10,
			`[{"type":"web_search","user_location":{"country":"FR"}}]`},
	} {
		req := parse(t, `{"model":"sonar","messages":[{"role":"user","content":"hi"}],`+tt.opts+`}`)
		if _, err := a.Complete(context.Background(), req); err != nil {
			t.Fatalf("%s: %v", tt.opts, err)
		}
		got := sent(t, fake)
		if got["max_tool_calls"] != tt.calls || jsonOf(got["tools"]) != tt.tools {
			t.Errorf("%s: sent %s", tt.opts, jsonOf(got))
		}
		if strings.Contains(tt.opts, "preset") && (got["preset"] != "pro-search" || got["model"] != "perplexity/sonar") {
			// The catalog's model stays: the answer is billed at its price.
			t.Errorf("%s: sent %s", tt.opts, jsonOf(got))
		}
	}
}

// What the Agent API cannot carry is refused before any call, naming the
// field.
func TestPerplexityRefusals(t *testing.T) {
	a, fake := perplexity(t)
	for body, param := range map[string]string{
		`"web_search_options":{"search_type":"pro"}`:          "web_search_options",
		`"web_search_options":{"search_context_size":"huge"}`: "web_search_options",
		`"response_format":{"type":"json_object"}`:            "response_format",
		`"n":2`: "n",
	} {
		req := parse(t, `{"model":"sonar","messages":[{"role":"user","content":"hi"}],`+body+`}`)
		_, err := a.Complete(context.Background(), req)
		var ie *chat.InvalidError
		if !errors.As(err, &ie) || ie.Param != param {
			t.Errorf("%s: err = %v, want InvalidError on %s", body, err, param)
		}
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("%d refused requests reached the upstream", n)
	}
}

// The answer: text, usage in chat's convention, each search as a
// server-run tool call, and its results as the Sonar API's citations and
// search_results.
func TestPerplexityComplete(t *testing.T) {
	a, _ := perplexity(t)
	resp, err := a.Complete(context.Background(), user("sonar", "population of SF [[words:4]] [[web-search:2]] [[cached:2]]"))
	if err != nil {
		t.Fatal(err)
	}
	c := resp.Choices[0]
	if c.Message.Content.Text() != "Hello from fake openai-responses!" || c.FinishReason != "stop" || c.Message.Role != "assistant" {
		t.Errorf("choice %+v", c)
	}
	// prompt: 6 words + 3 for the message
	want := &chat.Usage{PromptTokens: 9, CompletionTokens: 4, TotalTokens: 13,
		PromptTokensDetails: &chat.PromptTokensDetails{CachedTokens: 2}, CompletionTokensDetails: &chat.CompletionTokensDetails{},
		ServerToolUse: map[string]int{"web_search": 2}}
	if !reflect.DeepEqual(resp.Usage, want) {
		t.Errorf("usage %s, want %s", jsonOf(resp.Usage), jsonOf(want))
	}
	var citations []string
	var results []map[string]any
	if json.Unmarshal(resp.Citations, &citations) != nil || json.Unmarshal(resp.SearchResults, &results) != nil ||
		len(citations) != 4 || len(results) != 4 || citations[0] != "https://en.wikipedia.org/wiki/San_Francisco" ||
		results[2]["url"] != citations[2] || results[0]["snippet"] == nil {
		t.Errorf("citations %s search_results %s", resp.Citations, resp.SearchResults)
	}

	// No search, no extras and no server tool use.
	resp, err = a.Complete(context.Background(), user("sonar", "hi [[web-search:0]]"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Citations != nil || resp.SearchResults != nil || resp.Usage.ServerToolUse != nil {
		t.Errorf("without a search: %s", jsonOf(resp))
	}
}

// A preset bundles web_search and fetch_url: a page fetch is counted as
// fetch_url beside the search, under chat's names for Perplexity's billing
// names (search_web is web_search).
func TestPerplexityFetchURL(t *testing.T) {
	a, _ := perplexity(t)
	req := parse(t, `{"model":"sonar","messages":[{"role":"user","content":"read it [[fetch-url:2]]"}],"preset":"fast"}`)
	resp, err := a.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Usage.ServerToolUse; !reflect.DeepEqual(got, map[string]int{"web_search": 1, "fetch_url": 2}) {
		t.Errorf("server tool use %v", got)
	}
}

// The upstream runs at most chat.MaxServerToolCalls tool calls, the most
// Beaver holds money for.
func TestPerplexityToolCallsCapped(t *testing.T) {
	a, _ := perplexity(t)
	resp, err := a.Complete(context.Background(), user("sonar", "dig deep [[web-search:25]]"))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Usage.ServerToolUse["web_search"]; got != chat.MaxServerToolCalls {
		t.Errorf("%d searches ran", got)
	}
}

var weather = chat.Tool{Type: "function", Function: chat.FunctionDef{Name: "get_weather", Description: "Weather of a city",
	Parameters: json.RawMessage(`{"type":"object","properties":{"input":{"type":"string"}}}`)}}

// A function call comes back as a tool call (its id the call_id); the
// next turn sends the call and its output back as function_call and
// function_call_output items, and the search the provider ran on the way
// (a search_web function call in its stream) is never taken for the
// client's.
func TestPerplexityToolRoundTrip(t *testing.T) {
	a, fake := perplexity(t)
	req := user("sonar", "weather in Paris? [[tool]]")
	req.Tools = []chat.Tool{weather}
	resp, err := a.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	msg := resp.Choices[0].Message
	if resp.Choices[0].FinishReason != "tool_calls" || len(msg.ToolCalls) != 1 || !msg.Content.IsNull() {
		t.Fatalf("choice %s", jsonOf(resp.Choices[0]))
	}
	tc := msg.ToolCalls[0]
	if tc.ID == "" || tc.Type != "function" || tc.Function.Name != "get_weather" || tc.Function.Arguments != `{"input":"fake"}` {
		t.Errorf("tool call %+v", tc)
	}
	if tools := jsonOf(sent(t, fake)["tools"]); tools != `[{"description":"Weather of a city","name":"get_weather","parameters":{"properties":{"input":{"type":"string"}},"type":"object"},"strict":false,"type":"function"},{"type":"web_search"}]` {
		t.Errorf("tools sent %s", tools)
	}

	s, err := a.Stream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	chunks, err := drain(s)
	if err != io.EOF {
		t.Fatal(err)
	}
	var calls []chat.ToolCall
	finish := ""
	for _, c := range chunks {
		for _, ch := range c.Choices {
			calls = append(calls, ch.Delta.ToolCalls...)
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
	}
	if len(calls) != 1 || calls[0].Function.Name != "get_weather" || *calls[0].Index != 0 || finish != "tool_calls" {
		t.Errorf("streamed calls %s, finish %q", jsonOf(calls), finish)
	}

	history := []chat.Message{req.Messages[0], msg,
		{Role: chat.RoleTool, ToolCallID: tc.ID, Content: chat.TextContent(`{"temp_c": 21}`)}}
	next := &chat.Request{Model: "sonar", Messages: history, Tools: []chat.Tool{weather}}
	if _, err = a.Complete(context.Background(), next); err != nil {
		t.Fatal(err) // the strict fake refuses malformed items
	}
	input := jsonOf(sent(t, fake)["input"])
	wantInput := `[{"content":"weather in Paris? [[tool]]","role":"user","type":"message"},` +
		`{"arguments":"{\"input\":\"fake\"}","call_id":"` + tc.ID + `","name":"get_weather","type":"function_call"},` +
		`{"call_id":"` + tc.ID + `","name":"get_weather","output":"{\"temp_c\": 21}","type":"function_call_output"}]`
	if input != wantInput {
		t.Errorf("input %s\nwant  %s", input, wantInput)
	}
}

// A stream: content as it arrives (the first chunk with the role and the
// search's sources, once), one finish chunk, then the usage chunk without
// choices; Usage reports the same.
func TestPerplexityStream(t *testing.T) {
	a, _ := perplexity(t)
	s, err := a.Stream(context.Background(), user("sonar", "population of SF [[words:5]] [[web-search:2]]"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Usage() != nil {
		t.Error("usage before any event")
	}
	chunks, err := drain(s)
	if err != io.EOF {
		t.Fatalf("end %v", err)
	}
	var content strings.Builder
	var finishes, carrying int
	for i, c := range chunks {
		if c.Citations != nil || c.SearchResults != nil {
			carrying++
			if i != 0 || !strings.Contains(string(c.Citations), "https://example.com/search-2/b") {
				t.Errorf("chunk %d carries %s", i, jsonOf(c))
			}
		}
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil {
				content.WriteString(*ch.Delta.Content)
			}
			if ch.FinishReason != nil {
				finishes++
				if *ch.FinishReason != "stop" || i != len(chunks)-2 {
					t.Errorf("finish chunk %d: %s", i, jsonOf(c))
				}
			}
		}
	}
	if content.String() != "Hello from fake openai-responses! lorem" || finishes != 1 || carrying != 1 ||
		chunks[0].Choices[0].Delta.Role != "assistant" {
		t.Errorf("content %q, %d finishes, %d chunks with sources", content.String(), finishes, carrying)
	}
	last := chunks[len(chunks)-1]
	want := &chat.Usage{PromptTokens: 8, CompletionTokens: 5, TotalTokens: 13, // 5 words + 3
		PromptTokensDetails: &chat.PromptTokensDetails{}, CompletionTokensDetails: &chat.CompletionTokensDetails{},
		ServerToolUse: map[string]int{"web_search": 2}}
	if len(last.Choices) != 0 || !reflect.DeepEqual(last.Usage, want) || !reflect.DeepEqual(s.Usage(), want) {
		t.Errorf("usage chunk %s, Usage() %s", jsonOf(last), jsonOf(s.Usage()))
	}
	last.Usage.ServerToolUse["web_search"] = 7 // the API fills in the chunk's usage: Usage is a copy
	if s.Usage().ServerToolUse["web_search"] != 2 {
		t.Error("Usage shares its map with the chunk")
	}
}

// max_output_tokens reached: status incomplete, finish_reason length,
// complete and streamed.
func TestPerplexityIncomplete(t *testing.T) {
	a, _ := perplexity(t)
	req := user("sonar", "[[words:10]]")
	req.MaxTokens = upstream.Ptr(3)
	resp, err := a.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].FinishReason != "length" || resp.Usage.CompletionTokens != 3 {
		t.Errorf("complete: %s", jsonOf(resp))
	}
	s, err := a.Stream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	chunks, err := drain(s)
	if err != io.EOF {
		t.Fatal(err)
	}
	if f := chunks[len(chunks)-2].Choices[0].FinishReason; f == nil || *f != "length" {
		t.Errorf("stream: %s", jsonOf(chunks))
	}
}

// Errors: an error answer keeps its status, message and Retry-After; a
// response.failed event mid-stream is an *upstream.Error after the text
// that came.
func TestPerplexityErrors(t *testing.T) {
	a, _ := perplexity(t)
	_, err := a.Complete(context.Background(), user("sonar", "[[error:429]]"))
	var ue *upstream.Error
	if !errors.As(err, &ue) || ue.Status != 429 || ue.RetryAfter != 2*time.Second || ue.Message == "" {
		t.Errorf("429: %v", err)
	}
	_, err = a.Stream(context.Background(), user("sonar", "[[error:400]]"))
	if !errors.As(err, &ue) || ue.Status != 400 || !strings.Contains(ue.Message, "fake error requested") {
		t.Errorf("400: %v", err)
	}
	s, err := a.Stream(context.Background(), user("sonar", "[[midstream-error:2]]"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	chunks, err := drain(s)
	if !errors.As(err, &ue) || ue.Status != 500 || ue.Message == "" || len(chunks) != 2 {
		t.Errorf("mid-stream: %v after %s", err, jsonOf(chunks))
	}
}

// stub answers every request with one canned body and records what came.
type stub struct {
	status int
	body   string
	mu     sync.Mutex
	got    []byte
	path   string
}

func (s *stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.got, s.path = b, r.URL.Path
	s.mu.Unlock()
	if strings.HasPrefix(s.body, "data:") {
		w.Header().Set("Content-Type", "text/event-stream")
	}
	if s.status != 0 {
		w.WriteHeader(s.status)
	}
	io.WriteString(w, s.body)
}

func openAI(t *testing.T, st *stub) *openairesp.Adapter {
	t.Helper()
	srv := httptest.NewServer(st)
	t.Cleanup(srv.Close)
	a, err := openairesp.New(upstream.Config{Name: "openai", Format: "openai-responses", BaseURL: srv.URL + "/v1", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// OpenAI's own Responses API: the structured output goes in text.format
// (json_schema flattened), a forced function is {"type":"function",
// "name"}, images carry their detail, user is sent, and there is neither a
// web_search tool nor a tool-call bound.
func TestOpenAIRequest(t *testing.T) {
	st := &stub{body: `{"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"gpt-5","output":[]}`}
	a := openAI(t, st)
	req := parse(t, `{"model":"gpt-5","user":"u1","verbosity":"low","messages":[
		{"role":"developer","content":"be brief"},
		{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}],
		"tools":[{"type":"function","function":{"name":"f","strict":true,"parameters":{"type":"object"}}}],
		"tool_choice":{"type":"function","function":{"name":"f"}},
		"response_format":{"type":"json_schema","json_schema":{"name":"answer","schema":{"type":"object"},"strict":true}}}`)
	if _, err := a.Complete(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	_ = json.Unmarshal(st.got, &got)
	want := map[string]any{
		"model": "gpt-5", "instructions": "be brief", "user": "u1", "store": false,
		"input": []any{map[string]any{"type": "message", "role": "user", "content": []any{
			map[string]any{"type": "input_text", "text": "what is this?"},
			map[string]any{"type": "input_image", "image_url": "https://example.com/a.png", "detail": "auto"}}}},
		"tools":       []any{map[string]any{"type": "function", "name": "f", "strict": true, "parameters": map[string]any{"type": "object"}}},
		"tool_choice": map[string]any{"type": "function", "name": "f"},
		"text": map[string]any{"verbosity": "low",
			"format": map[string]any{"type": "json_schema", "name": "answer", "schema": map[string]any{"type": "object"}, "strict": true}},
	}
	if !reflect.DeepEqual(got, want) || st.path != "/v1/responses" {
		t.Errorf("sent to %s: %s\nwant %s", st.path, jsonOf(got), jsonOf(want))
	}
}

// OpenAI's answer: reasoning summaries as reasoning_content, a refusal, a
// web_search_call counted as a server-run search, url_citation
// annotations as citations, and cached and reasoning tokens.
func TestOpenAIResponse(t *testing.T) {
	st := &stub{body: `{"id":"resp_1","object":"response","created_at":1700000000,"status":"completed","model":"gpt-5",
		"output":[
		{"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"Thinking it over."}]},
		{"type":"web_search_call","id":"ws_1","status":"completed","action":{"type":"search","query":"x"}},
		{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[
			{"type":"output_text","text":"It is 42.","annotations":[{"type":"url_citation","url":"https://example.com/42","start_index":0,"end_index":5,"title":"42"}]}]}],
		"usage":{"input_tokens":100,"input_tokens_details":{"cached_tokens":60},"output_tokens":30,"output_tokens_details":{"reasoning_tokens":20},"total_tokens":130}}`}
	a := openAI(t, st)
	resp, err := a.Complete(context.Background(), user("gpt-5", "hi"))
	if err != nil {
		t.Fatal(err)
	}
	m := resp.Choices[0].Message
	if m.Content.Text() != "It is 42." || m.ReasoningContent != "Thinking it over." || resp.Created != 1700000000 ||
		string(resp.Citations) != `["https://example.com/42"]` || resp.SearchResults != nil {
		t.Errorf("response %s", jsonOf(resp))
	}
	want := &chat.Usage{PromptTokens: 100, CompletionTokens: 30, TotalTokens: 130,
		PromptTokensDetails: &chat.PromptTokensDetails{CachedTokens: 60}, CompletionTokensDetails: &chat.CompletionTokensDetails{ReasoningTokens: 20},
		ServerToolUse: map[string]int{"web_search": 1}}
	if !reflect.DeepEqual(resp.Usage, want) {
		t.Errorf("usage %s", jsonOf(resp.Usage))
	}
}

// A 200 whose response failed is an error (the Agent API answers failed
// and cancelled runs so); a content filter stops an incomplete answer.
func TestFailedAndFilteredResponses(t *testing.T) {
	st := &stub{body: `{"id":"r","object":"response","status":"failed","model":"m","output":[],
		"error":{"message":"the model failed","type":"internal_error","code":500}}`}
	_, err := openAI(t, st).Complete(context.Background(), user("m", "hi"))
	var ue *upstream.Error
	if !errors.As(err, &ue) || ue.Status != 500 || ue.Message != "the model failed" {
		t.Errorf("failed: %v", err)
	}
	st = &stub{body: `{"id":"r","object":"response","status":"incomplete","incomplete_details":{"reason":"content_filter"},
		"model":"m","output":[{"type":"message","content":[{"type":"output_text","text":"I"}]}]}`}
	resp, err := openAI(t, st).Complete(context.Background(), user("m", "hi"))
	if err != nil || resp.Choices[0].FinishReason != "content_filter" {
		t.Errorf("filtered: %v %s", err, jsonOf(resp))
	}
}

// OpenAI's stream: the arguments of a call come as deltas after its item,
// reasoning summaries and refusals as deltas; an error event is the
// stream's *upstream.Error.
func TestOpenAIStream(t *testing.T) {
	events := []string{
		`{"type":"response.created","sequence_number":0,"response":{"id":"resp_9","created_at":1700000000,"model":"gpt-5","status":"in_progress","output":[]}}`,
		`{"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"type":"reasoning","id":"rs_1","summary":[]}}`,
		`{"type":"response.reasoning_summary_text.delta","sequence_number":2,"output_index":0,"summary_index":0,"delta":"Hmm."}`,
		`{"type":"response.output_item.added","sequence_number":3,"output_index":1,"item":{"type":"function_call","id":"fc_1","call_id":"call_1","name":"f","arguments":"","status":"in_progress"}}`,
		`{"type":"response.function_call_arguments.delta","sequence_number":4,"output_index":1,"item_id":"fc_1","delta":"{\"a\":"}`,
		`{"type":"response.function_call_arguments.delta","sequence_number":5,"output_index":1,"item_id":"fc_1","delta":"1}"}`,
		`{"type":"response.output_item.done","sequence_number":6,"output_index":1,"item":{"type":"function_call","id":"fc_1","call_id":"call_1","name":"f","arguments":"{\"a\":1}","status":"completed"}}`,
		`{"type":"response.completed","sequence_number":7,"response":{"id":"resp_9","created_at":1700000000,"model":"gpt-5","status":"completed",` +
			`"output":[{"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"Hmm."}]},` +
			`{"type":"function_call","id":"fc_1","call_id":"call_1","name":"f","arguments":"{\"a\":1}"}],` +
			`"usage":{"input_tokens":10,"output_tokens":5,"total_tokens":15}}}`,
	}
	st := &stub{body: "data: " + strings.Join(events, "\n\ndata: ") + "\n\n"}
	req := user("gpt-5", "hi")
	req.Tools = []chat.Tool{{Type: "function", Function: chat.FunctionDef{Name: "f"}}}
	s, err := openAI(t, st).Stream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	chunks, err := drain(s)
	if err != io.EOF {
		t.Fatal(err)
	}
	var reasoning, args string
	for _, c := range chunks {
		for _, ch := range c.Choices {
			reasoning += ch.Delta.ReasoningContent
			for _, tc := range ch.Delta.ToolCalls {
				args += tc.Function.Arguments
			}
		}
	}
	finish := chunks[len(chunks)-2].Choices[0].FinishReason
	if reasoning != "Hmm." || args != `{"a":1}` || finish == nil || *finish != "tool_calls" || chunks[0].ID != "resp_9" ||
		chunks[len(chunks)-1].Usage.TotalTokens != 15 {
		t.Errorf("chunks %s", jsonOf(chunks))
	}

	st = &stub{body: "data: " + events[0] + "\n\ndata: " +
		`{"type":"error","sequence_number":1,"code":"rate_limit_exceeded","message":"slow down","param":null}` + "\n\n"}
	s, err = openAI(t, st).Stream(context.Background(), user("gpt-5", "hi"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = drain(s)
	var ue *upstream.Error
	if !errors.As(err, &ue) || ue.Status != 429 || ue.Message != "slow down" {
		t.Errorf("error event: %v", err)
	}
}
