package messages_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/messages"
)

func parse(t *testing.T, body string) *chat.Request {
	t.Helper()
	req, err := messages.Parse([]byte(body))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, body)
	}
	return req
}

func TestMessageParseRequest(t *testing.T) {
	req := parse(t, `{
		"model": "anthropic/claude-3-5-haiku-20241022",
		"max_tokens": 300,
		"system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
		"messages": [
			{"role": "user", "content": [
				{"type": "text", "text": "What is in these?"},
				{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
				{"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
			]},
			{"role": "assistant", "content": [
				{"type": "thinking", "thinking": "hmm", "signature": "sig"},
				{"type": "text", "text": "Let me look."},
				{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "cat",  "n": 2}}
			]},
			{"role": "user", "content": [
				{"type": "tool_result", "tool_use_id": "toolu_1", "content": [
					{"type": "text", "text": "a cat"},
					{"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}}
				]},
				{"type": "text", "text": "Thanks."}
			]},
			{"role": "assistant", "content": "You're welcome."}
		],
		"tools": [{"name": "lookup", "description": "Look up", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}],
		"tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
		"stop_sequences": ["END"],
		"temperature": 0.5,
		"top_p": 0.9,
		"top_k": 40,
		"metadata": {"user_id": "u-42"},
		"thinking": {"type": "disabled"},
		"service_tier": "auto",
		"stream": true
	}`)
	if req.Model != "anthropic/claude-3-5-haiku-20241022" || req.MaxTokens == nil || *req.MaxTokens != 300 ||
		req.MaxTokensParam != "" || !req.Stream || req.User != "u-42" || *req.Temperature != 0.5 || *req.TopP != 0.9 ||
		len(req.Stop) != 1 || req.Stop[0] != "END" {
		t.Fatalf("scalars: %+v", req)
	}
	roles := []string{}
	for _, m := range req.Messages {
		roles = append(roles, m.Role)
	}
	if got := strings.Join(roles, ","); got != "system,user,assistant,tool,user,assistant" {
		t.Fatalf("roles %s", got)
	}
	m := req.Messages
	if m[0].Content.Text() != "Be brief." {
		t.Errorf("system %q", m[0].Content.Text())
	}
	parts := m[1].Content.Parts()
	if len(parts) != 3 || parts[0].Text != "What is in these?" || parts[1].ImageURL.URL != "data:image/png;base64,iVBORw0KGgo=" ||
		parts[2].ImageURL.URL != "https://example.com/cat.jpg" {
		t.Errorf("user parts %+v", parts)
	}
	if m[2].Content.Text() != "Let me look." || len(m[2].ToolCalls) != 1 {
		t.Fatalf("assistant %+v", m[2])
	}
	if tc := m[2].ToolCalls[0]; tc.ID != "toolu_1" || tc.Type != "function" || tc.Function.Name != "lookup" ||
		tc.Function.Arguments != `{"q":"cat","n":2}` {
		t.Errorf("tool call %+v", tc)
	}
	if m[3].ToolCallID != "toolu_1" || m[3].Content.Text() != "a cat" {
		t.Errorf("tool message %+v", m[3])
	}
	// The tool result's image follows it in the user message, before the text.
	parts = m[4].Content.Parts()
	if len(parts) != 2 || parts[0].ImageURL == nil || parts[0].ImageURL.URL != "data:image/jpeg;base64,/9j/" || parts[1].Text != "Thanks." {
		t.Errorf("user after tool result %+v", parts)
	}
	if m[5].Content.Text() != "You're welcome." || m[5].Content.IsParts() {
		t.Errorf("string content %+v", m[5])
	}
	if len(req.Tools) != 1 || req.Tools[0].Type != "function" || req.Tools[0].Function.Name != "lookup" ||
		req.Tools[0].Function.Description != "Look up" || !strings.Contains(string(req.Tools[0].Function.Parameters), `"q"`) {
		t.Errorf("tools %+v", req.Tools)
	}
	if string(req.ToolChoice) != `"auto"` || string(req.Extra["parallel_tool_calls"]) != "false" {
		t.Errorf("tool choice %s, extra %v", req.ToolChoice, req.Extra)
	}
	// The admission bound counts both images.
	if b := req.PromptTokenBound(); b < 3*1600 {
		t.Errorf("prompt bound %d does not count the images", b)
	}
}

func TestMessageParseToolChoice(t *testing.T) {
	const tools = `"tools": [{"name": "f", "input_schema": {"type": "object"}}]`
	for _, tc := range []struct{ choice, want string }{
		{`{"type": "auto"}`, `"auto"`},
		{`{"type": "any"}`, `"required"`},
		{`{"type": "none"}`, `"none"`},
		{`{"type": "tool", "name": "f"}`, `{"type":"function","function":{"name":"f"}}`},
	} {
		req := parse(t, `{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], `+tools+`, "tool_choice": `+tc.choice+`}`)
		if string(req.ToolChoice) != tc.want || req.Extra != nil {
			t.Errorf("%s → %s (extra %v), want %s", tc.choice, req.ToolChoice, req.Extra, tc.want)
		}
	}
	// Without tools, auto and none are dropped (OpenAI refuses tool_choice without tools).
	req := parse(t, `{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "tool_choice": {"type": "auto"}}`)
	if req.ToolChoice != nil {
		t.Errorf("tool_choice without tools kept: %s", req.ToolChoice)
	}
	// A system string, and an assistant turn of thinking only, which is dropped.
	req = parse(t, `{"model": "m", "max_tokens": 5, "system": "S", "messages": [{"role": "user", "content": "hi"},
		{"role": "assistant", "content": [{"type": "redacted_thinking", "data": "x"}]}, {"role": "user", "content": "again"}]}`)
	if len(req.Messages) != 3 || req.Messages[0].Role != chat.RoleSystem || req.Messages[0].Content.Text() != "S" ||
		req.Messages[2].Content.Text() != "again" {
		t.Errorf("messages %+v", req.Messages)
	}
	// A tool_use without input, and a tool_result with string and no content.
	req = parse(t, `{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"},
		{"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f"}, {"type": "tool_use", "id": "t2", "name": "f", "input": {}}]},
		{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok", "is_error": true}, {"type": "tool_result", "tool_use_id": "t2"}]}]}`)
	if len(req.Messages) != 4 || !req.Messages[1].Content.IsNull() || req.Messages[1].ToolCalls[0].Function.Arguments != "{}" ||
		req.Messages[2].Content.Text() != "ok" || req.Messages[3].ToolCallID != "t2" || req.Messages[3].Content.IsNull() {
		t.Errorf("tool round trip %+v", req.Messages)
	}
}

func TestMessageParseErrors(t *testing.T) {
	const ok = `"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]`
	for _, tc := range []struct{ body, param, msg string }{
		{`[]`, "", "JSON object"},
		{`{"model": "m", "messages": [{"role": "user", "content": "hi"}]}`, "max_tokens", "max_tokens is required"},
		{`{"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}`, "model", "model is required"},
		{`{"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "hi"}]}`, "max_tokens", "at least 1"},
		{`{"model": "m", "max_tokens": "ten", "messages": [{"role": "user", "content": "hi"}]}`, "max_tokens", "an integer"},
		{`{"model": "m", "max_tokens": 10, "messages": []}`, "messages", "non-empty"},
		{`{` + ok + `, "frequency_penalty": 1}`, "frequency_penalty", "unknown field"},
		{`{` + ok + `, "container": "c"}`, "container", "not supported"},
		{`{` + ok + `, "temperature": 1.5}`, "temperature", "between 0 and 1"},
		{`{` + ok + `, "top_p": 2}`, "top_p", "top_p"},
		{`{` + ok + `, "thinking": {"type": "sometimes"}}`, "thinking", "thinking.type"},
		{`{` + ok + `, "service_tier": "priority"}`, "service_tier", "service_tier"},
		{`{` + ok + `, "tools": [{"type": "web_search_20250305", "name": "web_search"}]}`, "tools", "server tools"},
		// chat's own validation applies after the translation.
		{`{` + ok + `, "tools": [{"name": "bad name!", "input_schema": {}}]}`, "tools", "tools[0]"},
		{`{` + ok + `, "tool_choice": {"type": "any"}}`, "tool_choice", "needs tools"},
		{`{` + ok + `, "tool_choice": {"type": "sometimes"}}`, "tool_choice", "tool_choice.type"},
		{`{"model": "m", "max_tokens": 10, "messages": [{"role": "system", "content": "hi"}]}`, "messages", `"user" or "assistant"`},
		{`{"model": "m", "max_tokens": 10, "messages": [{"role": "user"}]}`, "messages", "content is required"},
		{`{"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": []}]}`, "messages", "must not be empty"},
		{`{"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": 5}]}`, "messages", "string or an array"},
		{`{"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]}`, "messages", `"document" is not supported`},
		{`{"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/tiff", "data": "x"}}]}]}`, "messages", "media_type"},
		{`{"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]}`, "messages", "Files API"},
		{`{"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]}`, "messages", "assistant messages"},
		{`{"model": "m", "max_tokens": 10, "messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": [1]}]}]}`, "messages", "must be an object"},
		{`{"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}]}`, "messages", "tool_use_id is required"},
		{`{"model": "m", "max_tokens": 10, "system": 3, "messages": [{"role": "user", "content": "hi"}]}`, "system", "system must be"},
	} {
		_, err := messages.Parse([]byte(tc.body))
		var ie *chat.InvalidError
		if !errors.As(err, &ie) {
			t.Errorf("%s: error %v, want *chat.InvalidError", tc.body, err)
			continue
		}
		if ie.Param != tc.param || !strings.Contains(ie.Message, tc.msg) {
			t.Errorf("%s: param %q message %q, want param %q containing %q", tc.body, ie.Param, ie.Message, tc.param, tc.msg)
		}
	}
}

func TestMessageIDs(t *testing.T) {
	gen := "chatcmpl-01jabcdefghjkmnpqrstvwxyz0"
	id := messages.MessageID(gen)
	if id != "msg_01jabcdefghjkmnpqrstvwxyz0" || messages.GenerationID(id) != gen {
		t.Errorf("%s ↔ %s ↔ %s", gen, id, messages.GenerationID(id))
	}
	for _, other := range []string{gen, "msg_", "resp_x", ""} {
		if messages.GenerationID(other) != other {
			t.Errorf("GenerationID(%q) = %q", other, messages.GenerationID(other))
		}
	}
}

// jsonOf marshals v for comparisons.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
