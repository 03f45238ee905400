package chat_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/money"
)

func TestParseRequestValidation(t *testing.T) {
	const user = `{"role":"user","content":"hi"}`
	tests := []struct {
		name, body, wantErr string
	}{
		{"minimal", `{"model":"gpt-4o-mini","messages":[` + user + `]}`, ""},
		{"model may be empty", `{"messages":[` + user + `]}`, ""},
		{"not json", `{"messages":`, "invalid JSON body"},
		{"not an object", `[1,2]`, "must be a JSON object"},
		{"empty body", ``, "must be a JSON object"},
		{"missing messages", `{"model":"m"}`, "messages must be a non-empty array"},
		{"empty messages", `{"messages":[]}`, "messages must be a non-empty array"},
		{"messages not array", `{"messages":"hi"}`, "messages must be an array"},
		{"message not object", `{"messages":[1]}`, "messages[0] must be a message object"},
		{"unknown role", `{"messages":[{"role":"wizard","content":"x"}]}`, `messages[0].role "wizard" is not one of`},
		{"missing role", `{"messages":[{"content":"x"}]}`, "messages[0].role is required"},
		{"role wrong type", `{"messages":[{"role":1,"content":"x"}]}`, "messages[0].role has the wrong type"},
		{"missing content", `{"messages":[{"role":"user"}]}`, "messages[0].content is required"},
		{"content number", `{"messages":[{"role":"user","content":5}]}`, "content must be a string, an array of content parts, or null"},
		{"bad part type", `{"messages":[{"role":"user","content":[{"type":"input_audio"}]}]}`, `content part type "input_audio" is not supported`},
		{"part without type", `{"messages":[{"role":"user","content":[{"text":"x"}]}]}`, "messages[0].content[0].type is required"},
		{"part text wrong type", `{"messages":[{"role":"user","content":[{"type":"text","text":5}]}]}`, `content part field "text" has the wrong type`},
		{"image without url", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]}`, "image_url.url is required"},
		{"image bad scheme", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x"}}]}]}`, "must be an http(s) or data: URL"},
		{"image bad detail", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/a.png","detail":"ultra"}}]}]}`, "detail must be auto, low or high"},
		{"image in system", `{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/a.png"}}]}]}`, "images are only allowed in user messages"},
		{"assistant with only tool calls", `{"messages":[` + user + `,{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"ok"}]}`, ""},
		{"assistant without content", `{"messages":[{"role":"assistant"}]}`, "messages[0].content is required"},
		{"tool without id", `{"messages":[{"role":"tool","content":"x"}]}`, "tool_call_id is required"},
		{"tool call without id", `{"messages":[{"role":"assistant","tool_calls":[{"function":{"name":"f"}}]}]}`, "needs an id and a function name"},
		{"tool calls on user", `{"messages":[{"role":"user","content":"x","tool_calls":[{"id":"a","function":{"name":"f"}}]}]}`, "only assistant messages may have tool_calls"},
		{"max_tokens zero", `{"max_tokens":0,"messages":[` + user + `]}`, "max_tokens must be at least 1"},
		{"max_completion_tokens negative", `{"max_completion_tokens":-3,"messages":[` + user + `]}`, "max_completion_tokens must be at least 1"},
		{"max_tokens fraction", `{"max_tokens":1.5,"messages":[` + user + `]}`, "max_tokens must be an integer"},
		{"max_tokens string", `{"max_tokens":"10","messages":[` + user + `]}`, "max_tokens must be an integer"},
		{"temperature high", `{"temperature":2.5,"messages":[` + user + `]}`, "temperature must be between 0 and 2"},
		{"temperature negative", `{"temperature":-0.1,"messages":[` + user + `]}`, "temperature must be between 0 and 2"},
		{"temperature edge", `{"temperature":2,"top_p":1,"messages":[` + user + `]}`, ""},
		{"top_p high", `{"top_p":1.5,"messages":[` + user + `]}`, "top_p must be between 0 and 1"},
		{"stream not bool", `{"stream":"yes","messages":[` + user + `]}`, "stream must be a boolean"},
		{"stop number", `{"stop":5,"messages":[` + user + `]}`, "stop must be a string or an array of strings"},
		{"nulls are absent", `{"temperature":null,"stop":null,"tools":null,"max_tokens":null,"messages":[` + user + `]}`, ""},
		{"tool bad type", `{"tools":[{"type":"retrieval","function":{"name":"f"}}],"messages":[` + user + `]}`, `tools[0].type must be "function"`},
		{"tool bad name", `{"tools":[{"type":"function","function":{"name":"a b"}}],"messages":[` + user + `]}`, "tools[0].function.name must be"},
		{"tool bad params", `{"tools":[{"type":"function","function":{"name":"f","parameters":[1]}}],"messages":[` + user + `]}`, "parameters must be a JSON Schema object"},
		{"tool_choice bad", `{"tool_choice":"sometimes","tools":[{"type":"function","function":{"name":"f"}}],"messages":[` + user + `]}`, "tool_choice must be"},
		{"tool_choice without tools", `{"tool_choice":{"type":"function","function":{"name":"f"}},"messages":[` + user + `]}`, "no tools were given"},
		{"tool_choice named", `{"tool_choice":{"type":"function","function":{"name":"f"}},"tools":[{"type":"function","function":{"name":"f"}}],"messages":[` + user + `]}`, ""},
		{"response_format bad", `{"response_format":{"type":"xml"},"messages":[` + user + `]}`, "response_format.type must be"},
		{"response_format schema missing", `{"response_format":{"type":"json_schema"},"messages":[` + user + `]}`, "response_format.json_schema must be an object"},
		{"response_format ok", `{"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}},"messages":[` + user + `]}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := chat.ParseRequest([]byte(tt.body))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var ie *chat.InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("error = %v (%T), want *chat.InvalidError", err, err)
			}
			if !strings.Contains(ie.Message, tt.wantErr) {
				t.Fatalf("error = %q, want it to contain %q", ie.Message, tt.wantErr)
			}
		})
	}
}

func TestParseRequestFields(t *testing.T) {
	body := `{
		"model": "gpt-4o",
		"messages": [{"role": "user", "content": "hi"}],
		"stream": true,
		"max_tokens": 10,
		"max_completion_tokens": 20,
		"temperature": 0.5,
		"top_p": 0.9,
		"stop": "END",
		"user": "u-1",
		"tool_choice": "auto",
		"response_format": {"type": "json_object"},
		"stream_options": {"include_usage": false},
		"seed": 42,
		"logit_bias": {"50256": -100},
		"parallel_tool_calls": false
	}`
	r, err := chat.ParseRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if r.Model != "gpt-4o" || !r.Stream || r.User != "u-1" {
		t.Errorf("model/stream/user = %q %v %q", r.Model, r.Stream, r.User)
	}
	if r.MaxTokens == nil || *r.MaxTokens != 20 || r.MaxTokensParam != "max_completion_tokens" {
		t.Errorf("max tokens = %v %q, want 20 from max_completion_tokens", r.MaxTokens, r.MaxTokensParam)
	}
	if *r.Temperature != 0.5 || *r.TopP != 0.9 {
		t.Errorf("temperature/top_p = %v %v", *r.Temperature, *r.TopP)
	}
	if len(r.Stop) != 1 || r.Stop[0] != "END" {
		t.Errorf("stop = %v", r.Stop)
	}
	if string(r.ToolChoice) != `"auto"` || r.ResponseFormatType() != "json_object" {
		t.Errorf("tool_choice/response_format = %s %q", r.ToolChoice, r.ResponseFormatType())
	}
	if _, ok := r.Extra["stream_options"]; ok {
		t.Error("stream_options kept in Extra")
	}
	for _, k := range []string{"seed", "logit_bias", "parallel_tool_calls"} {
		if _, ok := r.Extra[k]; !ok {
			t.Errorf("Extra lacks %q", k)
		}
	}
	if len(r.Extra) != 3 {
		t.Errorf("Extra = %v", r.Extra)
	}

	r2, err := chat.ParseRequest([]byte(`{"messages":[{"role":"user","content":"x"}],"max_tokens":7,"stop":["a","b"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if *r2.MaxTokens != 7 || r2.MaxTokensParam != "max_tokens" || len(r2.Stop) != 2 {
		t.Errorf("got %v %q %v", *r2.MaxTokens, r2.MaxTokensParam, r2.Stop)
	}
}

// The request marshals back to OpenAI JSON with content in the form it came
// in and Extra fields merged.
func TestRequestRoundTrip(t *testing.T) {
	in := `{"model":"gpt-4o","messages":[` +
		`{"role":"system","content":"be brief"},` +
		`{"role":"user","content":[{"type":"text","text":""},{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"low"}}]},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"look","arguments":"{\"x\":1}"}}]},` +
		`{"role":"tool","content":"a cat","tool_call_id":"call_1"},` +
		`{"role":"assistant","content":"","name":"bot"}],` +
		`"max_completion_tokens":100,"temperature":0,"stop":["x"],` +
		`"tools":[{"type":"function","function":{"name":"look","description":"Look.","parameters":{"type":"object","properties":{}},"strict":true}}],` +
		`"tool_choice":"auto","response_format":{"type":"json_object"},"user":"u","logit_bias":{"1":-100},"seed":7}`
	r, err := chat.ParseRequest([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Fatalf("round trip differs:\n in: %s\nout: %s", in, out)
	}
}

func TestContentForms(t *testing.T) {
	tests := []struct {
		json     string
		null     bool
		parts    bool
		text     string
		nParts   int
		marshals string
	}{
		{`"hello"`, false, false, "hello", 1, `"hello"`},
		{`""`, false, false, "", 1, `""`},
		{`null`, true, false, "", 0, `null`},
		{`[]`, false, true, "", 0, `[]`},
		{`[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"https://x/y.png"}},{"type":"text","text":"b"}]`, false, true, "ab", 3,
			`[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"https://x/y.png"}},{"type":"text","text":"b"}]`},
	}
	for _, tt := range tests {
		var c chat.Content
		if err := json.Unmarshal([]byte(tt.json), &c); err != nil {
			t.Fatalf("%s: %v", tt.json, err)
		}
		if c.IsNull() != tt.null || c.IsParts() != tt.parts || c.Text() != tt.text || len(c.Parts()) != tt.nParts {
			t.Errorf("%s: null=%v parts=%v text=%q nParts=%d", tt.json, c.IsNull(), c.IsParts(), c.Text(), len(c.Parts()))
		}
		b, _ := json.Marshal(c)
		if string(b) != tt.marshals {
			t.Errorf("%s marshals to %s", tt.json, b)
		}
	}
	b, _ := json.Marshal(chat.Message{Role: "assistant", Content: chat.TextContent("hi")})
	if string(b) != `{"role":"assistant","content":"hi"}` {
		t.Errorf("message = %s", b)
	}
}

func TestChunkJSON(t *testing.T) {
	stop := "stop"
	c := chat.Chunk{ID: "x", Object: chat.ObjectChunk, Created: 1, Model: "m"}
	b, _ := json.Marshal(c)
	if string(b) != `{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[]}` {
		t.Errorf("empty chunk = %s", b)
	}
	c.Choices = []chat.ChunkChoice{{Delta: chat.Delta{Content: new(string)}}, {Index: 1, FinishReason: &stop}}
	b, _ = json.Marshal(&c)
	want := `{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":""},"finish_reason":null},{"index":1,"delta":{},"finish_reason":"stop"}]}`
	if string(b) != want {
		t.Errorf("chunk = %s\nwant  %s", b, want)
	}
	cost := money.USD(5)
	micros := int64(5)
	c = chat.Chunk{ID: "x", Object: chat.ObjectChunk, Model: "m",
		Usage: &chat.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3, Cost: &cost, CostMicros: &micros,
			PromptTokensDetails: &chat.PromptTokensDetails{CachedTokens: 0}},
		Error: &chat.ErrorBody{Message: "boom", Type: "upstream_error", Code: "upstream_error"}}
	b, _ = json.Marshal(c)
	want = `{"id":"x","object":"chat.completion.chunk","created":0,"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3,"prompt_tokens_details":{"cached_tokens":0},"cost":0.000005,"cost_micros":5},"error":{"message":"boom","type":"upstream_error","param":null,"code":"upstream_error"}}`
	if string(b) != want {
		t.Errorf("usage chunk = %s\nwant         %s", b, want)
	}
	// OpenAI's in-stream error event.
	param := "model"
	b, _ = json.Marshal(chat.ErrorEvent{Error: chat.ErrorBody{Message: "m", Type: "t", Param: &param, Code: "c"}})
	if want := `{"error":{"message":"m","type":"t","param":"model","code":"c"}}`; string(b) != want {
		t.Errorf("error event = %s\nwant          %s", b, want)
	}
	// A chunk passes an upstream's logprobs and refusal through and leaves
	// them out otherwise (both optional in OpenAI's chunk schema).
	refusal := "I can't help with that."
	c = chat.Chunk{ID: "x", Object: chat.ObjectChunk, Model: "m", Choices: []chat.ChunkChoice{
		{Delta: chat.Delta{Refusal: &refusal}, Logprobs: json.RawMessage(`{"content":null,"refusal":[]}`)}}}
	b, _ = json.Marshal(c)
	want = `{"id":"x","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":{"refusal":"I can't help with that."},"logprobs":{"content":null,"refusal":[]},"finish_reason":null}]}`
	if string(b) != want {
		t.Errorf("refusal chunk = %s\nwant           %s", b, want)
	}
	if got := c.Text(); got != refusal {
		t.Errorf("refusal chunk Text = %q", got)
	}
}

func TestChunkText(t *testing.T) {
	hello := "Hello"
	c := chat.Chunk{Choices: []chat.ChunkChoice{{Delta: chat.Delta{
		Content: &hello, ReasoningContent: " think",
		ToolCalls: []chat.ToolCall{{Function: chat.FunctionCall{Name: "f", Arguments: `{"a"`}}},
	}}}}
	if got := c.Text(); got != `Hello thinkf{"a"` {
		t.Errorf("Text = %q", got)
	}
	if got := (&chat.Chunk{}).Text(); got != "" {
		t.Errorf("empty Text = %q", got)
	}
}

func TestEstimateTokens(t *testing.T) {
	tests := []struct {
		text string
		want int
	}{
		{"", 0},
		{"a", 1},
		{"abcd", 1},
		{"abcde", 2},
		{"Hello, world!", 4},
		{"你好", 2},
		{"héllo", 2}, // 4 ASCII bytes → 1, é → 1
		{"🙂🙂", 2},
	}
	for _, tt := range tests {
		if got := chat.EstimateTokens(tt.text); got != tt.want {
			t.Errorf("EstimateTokens(%q) = %d, want %d", tt.text, got, tt.want)
		}
	}
}

func TestPromptTokenBound(t *testing.T) {
	tests := []struct {
		name string
		body string
		want int
	}{
		// 2 bytes, + 8 per message + 8
		{"one short message", `{"messages":[{"role":"user","content":"hi"}]}`, 2 + 8 + 8},
		// "abcdefg" (7) + "xy" (2) = 9 bytes; 2 messages → 16; + 8
		{"two messages", `{"messages":[{"role":"system","content":"abcdefg"},{"role":"user","content":"xy"}]}`, 9 + 16 + 8},
		// text "look" 4 bytes; one image 1600
		{"image", `{"messages":[{"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"https://x/a.png"}}]}]}`, 4 + 8 + 8 + 1600},
		// "q" 1 + tool "f"(1) + "d"(1) + params {"type":"object"} (17) = 20 bytes; + 512 preamble + 16 per tool
		{"tools", `{"messages":[{"role":"user","content":"q"}],"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object"}}}]}`, 20 + 8 + 8 + 512 + 16},
		// stop strings and response_format count as prompt bytes: "hi" 2 + "END" 3 + {"type":"json_object"} 22
		{"stop and format", `{"messages":[{"role":"user","content":"hi"}],"stop":"END","response_format":{"type":"json_object"}}`, 2 + 3 + 22 + 8 + 8},
		// a tool result: its call id counts too ("c1" 2 + "ok" 2; the assistant's call: id 2 + name 1 + args 2)
		{"tool round trip", `{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"ok"}]}`, 5 + 4 + 16 + 8},
		// reasoning sent back (DeepSeek reads it as prompt: "think" 5) and a
		// call's extra_content ({"google":{"thought_signature":"s"}} 36) count too
		{"reasoning round trip", `{"messages":[{"role":"assistant","content":null,"reasoning_content":"think","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"},"extra_content":{"google":{"thought_signature":"s"}}}]},{"role":"tool","tool_call_id":"c1","content":"ok"}]}`, 5 + 36 + 5 + 4 + 16 + 8},
	}
	for _, tt := range tests {
		r, err := chat.ParseRequest([]byte(tt.body))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := r.PromptTokenBound(); got != tt.want {
			t.Errorf("%s: PromptTokenBound = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// The bound holds for the worst tokenization: one token per byte. The
// review's prompt, 30,000 × "a ", tokenizes to 30,000 tokens (one per "a ")
// in real tokenizers; the old bytes/3 estimate said 20,000.
func TestPromptTokenBoundIsAnUpperBound(t *testing.T) {
	for _, text := range []string{strings.Repeat("a ", 30000), strings.Repeat("🙂", 5000), strings.Repeat("x", 10000)} {
		body, _ := json.Marshal(map[string]any{"messages": []any{map[string]any{"role": "user", "content": text}}})
		r, err := chat.ParseRequest(body)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.PromptTokenBound(); got < len(text) {
			t.Errorf("bound %d is below the %d bytes of the prompt", got, len(text))
		}
	}
}

// Every top-level field is either modelled, a known pass-through that
// cannot cost more than the hold, or refused with 400 naming it.
func TestRequestFieldPolicy(t *testing.T) {
	base := `"messages":[{"role":"user","content":"x"}]`
	accepted := []string{
		`"seed":1`, `"frequency_penalty":0.5`, `"presence_penalty":0`, `"logit_bias":{"1":-100}`,
		`"logprobs":true,"top_logprobs":2`, `"parallel_tool_calls":false`, `"reasoning_effort":"low"`,
		`"metadata":{"a":"b"}`, `"store":false`, `"service_tier":"auto"`, `"modalities":["text"]`,
		`"n":3`, `"prompt_cache_key":"k"`, `"functions":null`,
	}
	for _, f := range accepted {
		if _, err := chat.ParseRequest([]byte(`{` + base + `,` + f + `}`)); err != nil {
			t.Errorf("%s refused: %v", f, err)
		}
	}
	refused := map[string]string{
		`"functions":[{"name":"f"}]`:                    "functions",
		`"function_call":"auto"`:                        "function_call",
		`"prediction":{"type":"content","content":"x"}`: "prediction",
		`"audio":{"voice":"alloy"}`:                     "audio",
		`"modalities":["text","audio"]`:                 "modalities",
		`"search_parameters":{"mode":"on"}`:             "search_parameters",
		`"service_tier":"priority"`:                     "service_tier",
		`"frobnicate":1`:                                "frobnicate",
		`"n":0`:                                         "n",
		`"n":129`:                                       "n",
	}
	for f, param := range refused {
		_, err := chat.ParseRequest([]byte(`{` + base + `,` + f + `}`))
		var ie *chat.InvalidError
		if !errors.As(err, &ie) {
			t.Errorf("%s: err = %v, want InvalidError", f, err)
			continue
		}
		if ie.Param != param || !strings.Contains(ie.Message, param) {
			t.Errorf("%s: param %q message %q, want the field %q named", f, ie.Param, ie.Message, param)
		}
	}
	r, _ := chat.ParseRequest([]byte(`{` + base + `,"n":3}`))
	if r.ChoiceCount() != 3 {
		t.Errorf("ChoiceCount = %d", r.ChoiceCount())
	}
	b, _ := json.Marshal(r)
	if !strings.Contains(string(b), `"n":3`) {
		t.Errorf("n not forwarded: %s", b)
	}
}

// Perplexity's options are accepted by the parser, kept apart from the
// pass-through fields (never sent to OpenAI-format upstreams as they are),
// and refused for a model of another provider, naming the field.
func TestProviderOptions(t *testing.T) {
	base := `"messages":[{"role":"user","content":"x"}]`
	r, err := chat.ParseRequest([]byte(`{` + base + `,"preset":"pro-search","web_search_options":{"search_context_size":"low"},"max_tool_calls":3}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.ProviderOptions) != 3 || string(r.ProviderOptions["preset"]) != `"pro-search"` || r.Extra != nil {
		t.Fatalf("options %v, extra %v", r.ProviderOptions, r.Extra)
	}
	if ie := r.CheckProviderOptions("perplexity"); ie != nil {
		t.Errorf("perplexity: %v", ie)
	}
	ie := r.CheckProviderOptions("openai")
	if ie == nil || ie.Param != "max_tool_calls" || !strings.Contains(ie.Message, "max_tool_calls") || !strings.Contains(ie.Message, "perplexity") {
		t.Errorf("openai: %+v", ie)
	}
	if b, _ := json.Marshal(r); strings.Contains(string(b), "preset") {
		t.Errorf("marshalled for Chat Completions: %s", b)
	}
	plain, _ := chat.ParseRequest([]byte(`{` + base + `}`))
	if ie := plain.CheckProviderOptions("openai"); ie != nil {
		t.Errorf("no options: %v", ie)
	}
	for f, param := range map[string]string{
		`"preset":""`: "preset", `"preset":7`: "preset", `"web_search_options":"high"`: "web_search_options",
		`"max_tool_calls":-1`: "max_tool_calls", `"max_tool_calls":"3"`: "max_tool_calls",
	} {
		_, err := chat.ParseRequest([]byte(`{` + base + `,` + f + `}`))
		var ie *chat.InvalidError
		if !errors.As(err, &ie) || ie.Param != param {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestResponseJSON(t *testing.T) {
	resp := chat.Response{ID: "r", Object: chat.ObjectCompletion, Created: 2, Model: "m",
		Choices: []chat.Choice{{Message: chat.Message{Role: "assistant", ToolCalls: []chat.ToolCall{{ID: "c", Type: "function", Function: chat.FunctionCall{Name: "f", Arguments: "{}"}}}}, FinishReason: "tool_calls"}},
		Usage:   &chat.Usage{PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2}}
	b, _ := json.Marshal(resp)
	// OpenAI's schema requires message.refusal and logprobs on every choice:
	// null unless the upstream gave them.
	want := `{"id":"r","object":"chat.completion","created":2,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}],"refusal":null},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`
	if string(b) != want {
		t.Errorf("response = %s\nwant       %s", b, want)
	}
}

// An OpenAI-format upstream's refusal and logprobs survive the round trip
// through Choice; absent or null ones render as null.
func TestChoiceRefusalAndLogprobs(t *testing.T) {
	in := `{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"logprobs":{"content":null,"refusal":[{"token":"I","logprob":-0.1,"bytes":[73],"top_logprobs":[]}]},"finish_reason":"stop"}`
	var c chat.Choice
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	if c.Message.Refusal == nil || *c.Message.Refusal != "I can't help with that." || c.Message.Role != "assistant" || c.FinishReason != "stop" {
		t.Fatalf("choice = %+v", c)
	}
	b, _ := json.Marshal(c)
	if string(b) != in {
		t.Errorf("round trip = %s\nwant         %s", b, in)
	}
	for _, plain := range []string{
		`{"index":1,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}`,
		`{"index":1,"message":{"role":"assistant","content":"hi","refusal":null},"logprobs":null,"finish_reason":"stop"}`,
	} {
		var c chat.Choice
		if err := json.Unmarshal([]byte(plain), &c); err != nil {
			t.Fatal(err)
		}
		if c.Message.Refusal != nil || c.Logprobs != nil || c.Message.Content.Text() != "hi" {
			t.Fatalf("%s: %+v", plain, c)
		}
		b, _ := json.Marshal(c)
		if want := `{"index":1,"message":{"role":"assistant","content":"hi","refusal":null},"logprobs":null,"finish_reason":"stop"}`; string(b) != want {
			t.Errorf("%s renders %s", plain, b)
		}
	}
	// Refusal is a response field: a request's messages neither keep nor forward it.
	r, err := chat.ParseRequest([]byte(`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":"no","refusal":"no"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(r); strings.Contains(string(b), "refusal") {
		t.Errorf("request forwards refusal: %s", b)
	}
}

// A refused request names the top-level field at fault (the API's
// error.param); a body that is not a JSON object names none.
func TestInvalidErrorsNameTheField(t *testing.T) {
	const m = `"messages":[{"role":"user","content":"x"}]`
	for body, param := range map[string]string{
		`{` + m + `,"max_tokens":0}`:                                 "max_tokens",
		`{` + m + `,"max_completion_tokens":"9"}`:                    "max_completion_tokens",
		`{` + m + `,"temperature":3}`:                                "temperature",
		`{` + m + `,"top_p":2}`:                                      "top_p",
		`{` + m + `,"stream":"yes"}`:                                 "stream",
		`{` + m + `,"model":1}`:                                      "model",
		`{` + m + `,"stop":5}`:                                       "stop",
		`{` + m + `,"tool_choice":"required"}`:                       "tool_choice",
		`{` + m + `,"response_format":{"type":"yaml"}}`:              "response_format",
		`{` + m + `,"tools":[{"type":"x","function":{"name":"f"}}]}`: "tools",
		`{"messages":[]}`:                                            "messages",
		`{"messages":[{"role":"wizard","content":"x"}]}`:             "messages",
		`{"messages":[{"role":"tool","content":"x"}]}`:               "messages",
		`[1]`:          "",
		`{"messages":`: "",
	} {
		_, err := chat.ParseRequest([]byte(body))
		var ie *chat.InvalidError
		if !errors.As(err, &ie) {
			t.Errorf("%s: err = %v, want InvalidError", body, err)
			continue
		}
		if ie.Param != param {
			t.Errorf("%s: param %q, want %q (%s)", body, ie.Param, param, ie.Message)
		}
	}
}
