package messages_test

import (
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/messages"
	"github.com/beaver-gateway/beaver/internal/money"
)

func usageWithCost(in, out, cached int, micros int64) *chat.Usage {
	cost := money.USD(micros)
	u := &chat.Usage{PromptTokens: in, CompletionTokens: out, TotalTokens: in + out, Cost: &cost, CostMicros: &micros}
	if cached > 0 {
		u.PromptTokensDetails = &chat.PromptTokensDetails{CachedTokens: cached}
	}
	return u
}

func TestMessageFromResponse(t *testing.T) {
	resp := &chat.Response{ID: "chatcmpl-abc", Object: chat.ObjectCompletion, Model: "openai/gpt-4o-mini",
		Choices: []chat.Choice{{Message: chat.Message{Role: chat.RoleAssistant, Content: chat.TextContent("Calling."),
			ReasoningContent: "think",
			ToolCalls: []chat.ToolCall{
				{ID: "call_1", Type: "function", Function: chat.FunctionCall{Name: "f", Arguments: `{"a":1}`}},
				{ID: "call_2", Type: "function", Function: chat.FunctionCall{Name: "g", Arguments: ""}},
				{Type: "function", Function: chat.FunctionCall{Name: "h", Arguments: `{"broken`}},
			}}, FinishReason: chat.FinishStop}}, // OpenAI says stop for a call forced by tool_choice
		Usage: usageWithCost(120, 30, 100, 1234567)}
	m := messages.FromResponse(resp)
	got := jsonOf(t, m)
	for _, want := range []string{
		`"id":"msg_abc","type":"message","role":"assistant","model":"openai/gpt-4o-mini"`,
		`{"type":"thinking","thinking":"think","signature":""}`,
		`{"type":"text","text":"Calling."}`,
		`{"type":"tool_use","id":"call_1","name":"f","input":{"a":1}}`,
		`{"type":"tool_use","id":"call_2","name":"g","input":{}}`,
		`"name":"h","input":"{\"broken"}`,
		`"stop_reason":"tool_use","stop_sequence":null`,
		`"usage":{"input_tokens":20,"output_tokens":30,"cache_read_input_tokens":100,"cache_creation_input_tokens":0,"cost":1.234567,"cost_micros":1234567}`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s in\n%s", want, got)
		}
	}
	if !strings.HasPrefix(m.Content[4].ID, "toolu_") {
		t.Errorf("generated tool id %q", m.Content[4].ID)
	}

	// An empty answer has content [], never null.
	m = messages.FromResponse(&chat.Response{ID: "chatcmpl-x", Choices: []chat.Choice{{FinishReason: chat.FinishLength}}})
	if got := jsonOf(t, m); !strings.Contains(got, `"content":[]`) || !strings.Contains(got, `"stop_reason":"max_tokens"`) {
		t.Errorf("empty answer %s", got)
	}
}

func TestMessageStopReason(t *testing.T) {
	for _, tc := range []struct {
		finish string
		tools  bool
		want   string
	}{
		{chat.FinishStop, false, messages.StopEndTurn},
		{"", false, messages.StopEndTurn},
		{chat.FinishLength, false, messages.StopMaxTokens},
		{chat.FinishLength, true, messages.StopMaxTokens},
		{chat.FinishToolCalls, true, messages.StopToolUse},
		{"function_call", false, messages.StopToolUse},
		{chat.FinishStop, true, messages.StopToolUse},
		{chat.FinishContentFilter, false, messages.StopRefusal},
	} {
		if got := messages.StopReason(tc.finish, tc.tools); got != tc.want {
			t.Errorf("StopReason(%q, %v) = %s, want %s", tc.finish, tc.tools, got, tc.want)
		}
	}
}

func TestMessageErrorShape(t *testing.T) {
	for status, want := range map[int]string{400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
		403: "permission_error", 404: "not_found_error", 405: "invalid_request_error", 409: "invalid_request_error",
		413: "request_too_large", 429: "rate_limit_error", 500: "api_error", 502: "api_error", 503: "api_error",
		504: "timeout_error", 529: "overloaded_error"} {
		if got := messages.ErrorType(status); got != want {
			t.Errorf("ErrorType(%d) = %s, want %s", status, got, want)
		}
	}
	body := messages.ErrorBody(apierr.InsufficientBalance("balance too low"), "req_1")
	got := jsonOf(t, body)
	want := `{"error":{"code":"insufficient_balance","limit_source":"balance","message":"balance too low","param":null,"type":"billing_error"},"request_id":"req_1","type":"error"}`
	if got != want {
		t.Errorf("error body\n got %s\nwant %s", got, want)
	}
	if got := jsonOf(t, messages.ErrorBody(apierr.Invalid("max_tokens is required").WithParam("max_tokens"), "")); got !=
		`{"error":{"code":"invalid_request","message":"max_tokens is required","param":"max_tokens","type":"invalid_request_error"},"type":"error"}` {
		t.Errorf("error body %s", got)
	}
}
