package responses_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/responses"
)

func parse(t *testing.T, body string) *responses.Request {
	t.Helper()
	r, err := responses.ParseRequest([]byte(body))
	if err != nil {
		t.Fatalf("ParseRequest(%s): %v", body, err)
	}
	return r
}

// wire is the chat request as an OpenAI-format upstream would get it.
func wire(t *testing.T, r *responses.Request) map[string]any {
	t.Helper()
	b, err := json.Marshal(r.Chat)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestResponsesRequestToChat(t *testing.T) {
	cases := []struct {
		name string
		body string
		want map[string]string // chat field → its JSON
	}{
		{
			name: "string input, instructions and sampling",
			body: `{"model":"openai/gpt-4o-mini","input":"Hello","instructions":"Be brief.","max_output_tokens":50,
				"temperature":0.5,"top_p":0.9,"user":"u1","store":false,"metadata":{"k":"v"},"stream":true,"previous_response_id":null}`,
			want: map[string]string{
				"model":      `"openai/gpt-4o-mini"`,
				"messages":   `[{"content":"Be brief.","role":"system"},{"content":"Hello","role":"user"}]`,
				"max_tokens": `50`, "temperature": `0.5`, "top_p": `0.9`, "user": `"u1"`, "stream": `true`,
				"metadata": ``, "store": ``, // Beaver's to answer: never forwarded
			},
		},
		{
			name: "message items with parts",
			body: `{"model":"m","input":[
				{"role":"developer","content":"Rules."},
				{"type":"message","role":"user","content":[{"type":"input_text","text":"What is this?"},
					{"type":"input_image","image_url":"https://example.com/a.png","detail":"low"}]},
				{"type":"message","id":"msg_1","status":"completed","role":"assistant",
					"content":[{"type":"output_text","text":"A cat.","annotations":[]}]},
				{"role":"user","content":"Thanks"}]}`,
			want: map[string]string{
				"messages": `[{"content":"Rules.","role":"developer"},` +
					`{"content":[{"text":"What is this?","type":"text"},{"image_url":{"detail":"low","url":"https://example.com/a.png"},"type":"image_url"}],"role":"user"},` +
					`{"content":"A cat.","role":"assistant"},{"content":"Thanks","role":"user"}]`,
			},
		},
		{
			name: "tools round trip",
			body: `{"model":"m","tools":[{"type":"function","name":"get_weather","description":"Weather.",
					"parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":true}],
				"tool_choice":{"type":"function","name":"get_weather"},"parallel_tool_calls":false,
				"input":[{"role":"user","content":"Weather in Paris and Rome?"},
					{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Checking."}]},
					{"type":"function_call","id":"fc_1","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}","status":"completed"},
					{"type":"function_call","call_id":"call_2","name":"get_weather","arguments":"{\"city\":\"Rome\"}"},
					{"type":"function_call_output","call_id":"call_1","output":"18C"},
					{"type":"function_call_output","call_id":"call_2","output":[{"type":"input_text","text":"21C"}]},
					{"type":"reasoning","id":"rs_1","summary":[]}]}`,
			want: map[string]string{
				"messages": `[{"content":"Weather in Paris and Rome?","role":"user"},` +
					`{"content":"Checking.","role":"assistant","tool_calls":[` +
					`{"function":{"arguments":"{\"city\":\"Paris\"}","name":"get_weather"},"id":"call_1","type":"function"},` +
					`{"function":{"arguments":"{\"city\":\"Rome\"}","name":"get_weather"},"id":"call_2","type":"function"}]},` +
					`{"content":"18C","role":"tool","tool_call_id":"call_1"},` +
					`{"content":[{"text":"21C","type":"text"}],"role":"tool","tool_call_id":"call_2"}]`,
				"tools":               `[{"function":{"description":"Weather.","name":"get_weather","parameters":{"properties":{"city":{"type":"string"}},"type":"object"},"strict":true},"type":"function"}]`,
				"tool_choice":         `{"function":{"name":"get_weather"},"type":"function"}`,
				"parallel_tool_calls": `false`,
			},
		},
		{
			name: "function call without a message before it",
			body: `{"model":"m","input":[{"role":"user","content":"x"},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},
				{"type":"function_call_output","call_id":"c","output":"ok"}]}`,
			want: map[string]string{
				"messages": `[{"content":"x","role":"user"},{"content":null,"role":"assistant","tool_calls":[{"function":{"arguments":"{}","name":"f"},"id":"c","type":"function"}]},` +
					`{"content":"ok","role":"tool","tool_call_id":"c"}]`,
			},
		},
		{
			name: "json_schema format, reasoning and pass-through",
			body: `{"model":"m","input":"x","text":{"format":{"type":"json_schema","name":"out","schema":{"type":"object"},"strict":true},"verbosity":"low"},
				"reasoning":{"effort":"low","summary":"auto"},"service_tier":"auto","prompt_cache_key":"pk","safety_identifier":"s",
				"parallel_tool_calls":true,"truncation":"disabled","include":[],"background":false,"stream_options":{"include_obfuscation":false}}`,
			want: map[string]string{
				"response_format":  `{"json_schema":{"name":"out","schema":{"type":"object"},"strict":true},"type":"json_schema"}`,
				"reasoning_effort": `"low"`, "verbosity": `"low"`, "service_tier": `"auto"`, "prompt_cache_key": `"pk"`,
				"safety_identifier": `"s"`, "parallel_tool_calls": ``, // not without tools
				"reasoning": ``, "text": ``, "truncation": ``, "include": ``, "stream_options": ``,
			},
		},
		{
			name: "json_object format",
			body: `{"model":"m","input":"x","text":{"format":{"type":"json_object"}}}`,
			want: map[string]string{"response_format": `{"type":"json_object"}`},
		},
		{
			name: "text format",
			body: `{"model":"m","input":"x","text":{"format":{"type":"text"}}}`,
			want: map[string]string{"response_format": ``},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := wire(t, parse(t, c.body))
			for field, want := range c.want {
				v, ok := got[field]
				switch {
				case want == "" && ok:
					t.Errorf("%s sent upstream: %s", field, jsonString(t, v))
				case want != "" && !ok:
					t.Errorf("%s missing; request %s", field, jsonString(t, got))
				case want != "" && jsonString(t, v) != want:
					t.Errorf("%s =\n %s\nwant\n %s", field, jsonString(t, v), want)
				}
			}
		})
	}
}

func TestResponsesRequestEchoes(t *testing.T) {
	r := parse(t, `{"model":"m","input":"x","tools":[{"type":"function","name":"f","parameters":null}],"metadata":{"a":"b"}}`)
	if string(r.ToolChoice) != `"auto"` || string(r.TextFormat) != `{"type":"text"}` || !r.ParallelToolCalls {
		t.Fatalf("defaults: tool_choice %s, text.format %s, parallel %v", r.ToolChoice, r.TextFormat, r.ParallelToolCalls)
	}
	if len(r.Tools) != 1 || string(r.Tools[0].Parameters) != "null" || r.Tools[0].Strict != nil || r.Metadata["a"] != "b" {
		t.Fatalf("echo: %+v %v", r.Tools, r.Metadata)
	}
	if r.Chat.Tools[0].Function.Parameters != nil || r.Chat.Tools[0].Function.Strict != nil {
		t.Fatalf("chat tool %+v", r.Chat.Tools[0])
	}
	if r.Chat.Model != "m" || r.Chat.MaxTokens != nil || r.Chat.Stream {
		t.Fatalf("chat %+v", r.Chat)
	}
}

func TestResponsesRequestRefusals(t *testing.T) {
	cases := []struct {
		body, param, message string
	}{
		{`[]`, "", "JSON object"},
		{`{"model":"m","input":"x","store":"yes"}`, "store", "a boolean"},
		{`{"model":"m","input":"x","previous_response_id":""}`, "previous_response_id", "not be empty"},
		{`{"model":"m","input":"x","conversation":"conv_1"}`, "conversation", "does not store conversations"},
		{`{"model":"m","input":"x","background":"yes"}`, "background", "a boolean"},
		{`{"model":"m","input":"x","include":["reasoning.encrypted_content","message.output_text.logprobs"]}`, "include", "not supported"},
		{`{"model":"m","input":"x","truncation":"auto"}`, "truncation", "disabled"},
		{`{"model":"m","input":"x","prompt":{"id":"p"}}`, "prompt", "not supported"},
		{`{"model":"m","input":"x","top_logprobs":2}`, "top_logprobs", "not supported"},
		{`{"model":"m","input":"x","frobnicate":1}`, "frobnicate", "unknown field"},
		{`{"model":"m","input":"x","messages":[]}`, "messages", "unknown field"},
		{`{"model":"m","input":"x","service_tier":"flex"}`, "service_tier", "auto"},
		{`{"model":"m","input":"x","metadata":{"a":1}}`, "metadata", "string values"},
		{`{"model":"m","input":"x","max_output_tokens":0}`, "max_output_tokens", "at least 1"},
		{`{"model":"m","input":"x","max_output_tokens":"ten"}`, "max_output_tokens", "an integer"},
		{`{"model":"m","input":"x","temperature":3}`, "temperature", "between 0 and 2"},
		{`{"model":"m","input":"x","top_p":2}`, "top_p", "between 0 and 1"},
		{`{"model":"m","input":"x","reasoning":{"effort":"extreme"}}`, "reasoning.effort", "reasoning.effort"},
		{`{"model":"m","input":"x","text":{"format":{"type":"json_schema","schema":{}}}}`, "text.format.name", "name"},
		{`{"model":"m","input":"x","text":{"format":{"type":"json_schema","name":"n","schema":[]}}}`, "text.format.schema", "schema"},
		{`{"model":"m","input":"x","text":{"format":{"type":"yaml"}}}`, "text.format.type", "json_schema"},
		{`{"model":"m","input":"x","text":{"verbosity":"loud"}}`, "text.verbosity", "low"},
		{`{"model":"m","input":"x","text":{"colour":"red"}}`, "text.colour", "unknown"},
		{`{"model":"m","input":"x","tools":[{"type":"web_search"}]}`, "tools", "only function tools"},
		{`{"model":"m","input":"x","tools":[{"type":"function","name":"bad name"}]}`, "tools", "letters, digits"},
		{`{"model":"m","input":"x","tools":[{"type":"function","name":"f","parameters":"x"}]}`, "tools", "JSON Schema"},
		{`{"model":"m","input":"x","tool_choice":{"type":"file_search"}}`, "tool_choice", "no hosted tools"},
		{`{"model":"m","input":"x","tool_choice":"required"}`, "tool_choice", "needs tools"},
		{`{"model":"m","input":"x","tool_choice":{"type":"function","name":"f"}}`, "tool_choice", "no tools"},
		{`{"model":"m"}`, "input", "input is required"},
		{`{"model":"m","input":[]}`, "input", "not be empty"},
		{`{"model":"m","input":3}`, "input", "string or an array"},
		{`{"model":"m","input":[{"type":"reasoning","summary":[]}]}`, "input", "no message"},
		{`{"model":"m","input":[{"type":"item_reference","id":"msg_1"}]}`, "input", "does not store conversations or items"},
		{`{"model":"m","input":[{"type":"web_search_call","id":"ws"}]}`, "input", "not supported"},
		{`{"model":"m","input":[{"role":"robot","content":"x"}]}`, "input", "not one of"},
		{`{"model":"m","input":[{"content":"x"}]}`, "input", "role is required"},
		{`{"model":"m","input":[{"role":"user"}]}`, "input", "content is required"},
		{`{"model":"m","input":[{"role":"user","content":[{"type":"input_image","file_id":"file_1"}]}]}`, "input", "file_id"},
		{`{"model":"m","input":[{"role":"user","content":[{"type":"input_image"}]}]}`, "input", "image_url is required"},
		{`{"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"ftp://x"}]}]}`, "input", "http(s) or data: URL"},
		{`{"model":"m","input":[{"role":"assistant","content":[{"type":"input_image","image_url":"https://x"}]}]}`, "input", "only allowed in user"},
		{`{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]}`, "input", "not supported"},
		{`{"model":"m","input":[{"role":"user","content":[{"type":"output_text","text":"x"}]}]}`, "input", "assistant"},
		{`{"model":"m","input":[{"role":"user","content":[{"type":"input_text"}]}]}`, "input", "text is required"},
		{`{"model":"m","input":[{"type":"function_call","name":"f"}]}`, "input", "call_id and name"},
		{`{"model":"m","input":[{"type":"function_call_output","output":"x"}]}`, "input", "needs call_id"},
		{`{"model":"m","input":[{"type":"function_call_output","call_id":"c"}]}`, "input", "output is required"},
		{`{"model":"m","input":[{"type":"function_call_output","call_id":"c","output":[{"type":"input_image","image_url":"https://x"}]}]}`, "input", "only input_text"},
		{`{"model":"m","input":[{"type":"function_call","call_id":7,"name":"f"}]}`, "input", "right types"},
	}
	for _, c := range cases {
		_, err := responses.ParseRequest([]byte(c.body))
		var ie *chat.InvalidError
		if !errors.As(err, &ie) {
			t.Errorf("%s: error %v, want *chat.InvalidError", c.body, err)
			continue
		}
		if ie.Param != c.param || !strings.Contains(ie.Message, c.message) {
			t.Errorf("%s: param %q message %q; want param %q, message containing %q", c.body, ie.Param, ie.Message, c.param, c.message)
		}
	}
}

func TestResponsesParamMapsChatFields(t *testing.T) {
	for chatParam, want := range map[string]string{"messages": "input", "max_tokens": "max_output_tokens",
		"max_completion_tokens": "max_output_tokens", "response_format": "text.format", "model": "model", "tools": "tools"} {
		if got := responses.Param(chatParam); got != want {
			t.Errorf("Param(%q) = %q, want %q", chatParam, got, want)
		}
	}
}

func TestResponsesIDs(t *testing.T) {
	if got := responses.ResponseID("chatcmpl-01abc"); got != "resp_01abc" {
		t.Fatalf("ResponseID = %q", got)
	}
	for in, want := range map[string]string{"resp_01abc": "chatcmpl-01abc", "chatcmpl-01abc": "chatcmpl-01abc", "resp_": "resp_", "msg_1": "msg_1"} {
		if got := responses.GenerationID(in); got != want {
			t.Errorf("GenerationID(%q) = %q, want %q", in, got, want)
		}
	}
}
