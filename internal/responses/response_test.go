package responses_test

import (
	"encoding/json"
	"strings"
	"testing"

	oai "github.com/openai/openai-go/v3/responses"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/responses"
)

func charged(prompt, completion int, micros int64) *chat.Usage {
	cost := money.USD(micros)
	return &chat.Usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion,
		PromptTokensDetails:     &chat.PromptTokensDetails{CachedTokens: 2},
		CompletionTokensDetails: &chat.CompletionTokensDetails{ReasoningTokens: 1},
		Cost:                    &cost, CostMicros: &micros}
}

func completion(msg chat.Message, finish string) *chat.Response {
	return &chat.Response{ID: "chatcmpl-01gen", Object: chat.ObjectCompletion, Created: 1700000000, Model: "openai/gpt-4o-mini",
		Choices: []chat.Choice{{Message: msg, FinishReason: finish}}, Usage: charged(10, 5, 1234)}
}

// decode reads b as the SDK does and as a generic object.
func decode(t *testing.T, v any) (oai.Response, map[string]any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var sdk oai.Response
	if err := json.Unmarshal(b, &sdk); err != nil {
		t.Fatalf("SDK decode: %v\n%s", err, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return sdk, m
}

func TestResponsesFromChatText(t *testing.T) {
	req := parse(t, `{"model":"gpt-4o-mini","input":"hi","instructions":"Be brief.","max_output_tokens":64,"metadata":{"k":"v"}}`)
	resp := responses.FromChat(req, completion(chat.Message{Role: "assistant", Content: chat.TextContent("Hello there")}, chat.FinishStop))
	sdk, m := decode(t, resp)
	if sdk.ID != "resp_01gen" || sdk.Object != "response" || sdk.Status != "completed" || sdk.Model != "openai/gpt-4o-mini" ||
		sdk.CreatedAt != 1700000000 || sdk.OutputText() != "Hello there" {
		t.Fatalf("envelope: %+v", m)
	}
	if len(sdk.Output) != 1 {
		t.Fatalf("output %v", m["output"])
	}
	msg := sdk.Output[0].AsMessage()
	if msg.Type != "message" || msg.Role != "assistant" || msg.Status != "completed" || !strings.HasPrefix(msg.ID, "msg_") ||
		len(msg.Content) != 1 || msg.Content[0].Type != "output_text" || msg.Content[0].Text != "Hello there" {
		t.Fatalf("message %+v", m["output"])
	}
	u := sdk.Usage
	if u.InputTokens != 10 || u.OutputTokens != 5 || u.TotalTokens != 15 || u.InputTokensDetails.CachedTokens != 2 ||
		u.OutputTokensDetails.ReasoningTokens != 1 {
		t.Fatalf("usage %+v", m["usage"])
	}
	usage := m["usage"].(map[string]any)
	if usage["cost_micros"] != float64(1234) || usage["cost"] != 0.001234 {
		t.Fatalf("cost %v", usage)
	}
	// Echoed settings, and the keys OpenAI's schema requires, null when unset.
	if sdk.Instructions.OfString != "Be brief." || sdk.MaxOutputTokens != 64 || sdk.Metadata["k"] != "v" || !sdk.ParallelToolCalls ||
		sdk.ToolChoice.OfToolChoiceMode != "auto" || sdk.Text.Format.Type != "text" || m["store"] != false {
		t.Fatalf("echo %v", m)
	}
	for _, k := range []string{"error", "incomplete_details", "temperature", "top_p", "previous_response_id"} {
		if v, ok := m[k]; !ok || v != nil {
			t.Errorf("%s = %v, want null", k, v)
		}
	}
	// user is a string or absent in OpenAI's schema, never null.
	if v, ok := m["user"]; ok {
		t.Errorf("user = %v, want absent", v)
	}
	if content := m["output"].([]any)[0].(map[string]any)["content"].([]any)[0].(map[string]any); content["annotations"] == nil {
		t.Fatalf("output_text without annotations: %v", content)
	}
	if tools, ok := m["tools"].([]any); !ok || len(tools) != 0 {
		t.Fatalf("tools %v", m["tools"])
	}
}

func TestResponsesFromChatToolCalls(t *testing.T) {
	req := parse(t, `{"model":"m","input":"weather?","tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}]}`)
	msg := chat.Message{Role: "assistant", Content: chat.TextContent("Let me check."), ReasoningContent: "They want weather.",
		ToolCalls: []chat.ToolCall{
			{ID: "call_a", Type: "function", Function: chat.FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris"}`}},
			{ID: "call_b", Type: "function", Function: chat.FunctionCall{Name: "get_weather", Arguments: `{"city":"Rome"}`}},
		}}
	sdk, m := decode(t, responses.FromChat(req, completion(msg, chat.FinishToolCalls)))
	if sdk.Status != "completed" || len(sdk.Output) != 4 {
		t.Fatalf("output %v", m["output"])
	}
	if r := sdk.Output[0].AsReasoning(); r.Type != "reasoning" || !strings.HasPrefix(r.ID, "rs_") || len(r.Summary) != 1 ||
		r.Summary[0].Text != "They want weather." || r.Summary[0].Type != "summary_text" || r.EncryptedContent != "" {
		t.Fatalf("reasoning %v", m["output"])
	}
	if sdk.Output[1].Type != "message" || sdk.OutputText() != "Let me check." {
		t.Fatalf("message %v", m["output"])
	}
	for i, want := range []string{"call_a", "call_b"} {
		fc := sdk.Output[2+i].AsFunctionCall()
		if fc.Type != "function_call" || fc.CallID != want || fc.Name != "get_weather" || fc.Status != "completed" ||
			!strings.HasPrefix(fc.ID, "fc_") || !json.Valid([]byte(fc.Arguments)) {
			t.Fatalf("function call %d: %v", i, m["output"])
		}
	}
	if len(sdk.Tools) != 1 || sdk.Tools[0].Name != "get_weather" || sdk.Tools[0].Type != "function" {
		t.Fatalf("tools %v", m["tools"])
	}
	// Only tool calls: no message item.
	msg.Content, msg.ReasoningContent = chat.Content{}, ""
	sdk, m = decode(t, responses.FromChat(req, completion(msg, chat.FinishToolCalls)))
	if len(sdk.Output) != 2 || sdk.Output[0].Type != "function_call" {
		t.Fatalf("output %v", m["output"])
	}
}

func TestResponsesFromChatIncompleteAndRefusal(t *testing.T) {
	req := parse(t, `{"model":"m","input":"x","max_output_tokens":3}`)
	sdk, m := decode(t, responses.FromChat(req, completion(chat.Message{Role: "assistant", Content: chat.TextContent("one two three")}, chat.FinishLength)))
	if sdk.Status != "incomplete" || sdk.IncompleteDetails.Reason != "max_output_tokens" || sdk.Output[0].Status != "incomplete" {
		t.Fatalf("length: %v", m)
	}
	sdk, _ = decode(t, responses.FromChat(req, completion(chat.Message{Role: "assistant"}, chat.FinishContentFilter)))
	if sdk.Status != "incomplete" || sdk.IncompleteDetails.Reason != "content_filter" {
		t.Fatalf("content filter: %+v", sdk)
	}
	refusal := "I can't help with that."
	sdk, m = decode(t, responses.FromChat(req, completion(chat.Message{Role: "assistant", Refusal: &refusal}, chat.FinishStop)))
	if c := sdk.Output[0].AsMessage().Content; len(c) != 1 || c[0].Type != "refusal" || c[0].Refusal != refusal {
		t.Fatalf("refusal: %v", m["output"])
	}
	// An empty answer is one message with empty text, as OpenAI renders it.
	sdk, m = decode(t, responses.FromChat(req, completion(chat.Message{Role: "assistant"}, chat.FinishStop)))
	if len(sdk.Output) != 1 || len(sdk.Output[0].AsMessage().Content) != 1 || sdk.OutputText() != "" {
		t.Fatalf("empty: %v", m["output"])
	}
}
