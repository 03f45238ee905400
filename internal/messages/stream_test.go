package messages_test

import (
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/messages"
)

func ptr[T any](v T) *T { return &v }

func content(s string) *chat.Chunk {
	return &chat.Chunk{Model: "m", Choices: []chat.ChunkChoice{{Delta: chat.Delta{Content: &s}}}}
}

func finish(reason string) *chat.Chunk {
	return &chat.Chunk{Model: "m", Choices: []chat.ChunkChoice{{FinishReason: &reason}}}
}

func toolDelta(index int, id, name, args string) *chat.Chunk {
	return &chat.Chunk{Model: "m", Choices: []chat.ChunkChoice{{Delta: chat.Delta{ToolCalls: []chat.ToolCall{
		{Index: ptr(index), ID: id, Function: chat.FunctionCall{Name: name, Arguments: args}}}}}}}
}

func usageChunk(in, out int, micros int64) *chat.Chunk {
	return &chat.Chunk{Model: "m", Choices: []chat.ChunkChoice{}, Usage: usageWithCost(in, out, 0, micros)}
}

// run feeds chunks (then Done) through a Stream and renders the SSE.
func run(t *testing.T, st *messages.Stream, chunks []*chat.Chunk, done bool) (names []string, sse string) {
	t.Helper()
	var buf []byte
	add := func(evs []messages.Event) {
		for _, e := range evs {
			names = append(names, e.Name)
			var err error
			if buf, err = e.AppendSSE(buf); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range chunks {
		add(st.Chunk(c))
	}
	if done {
		add(st.Done())
	}
	return names, string(buf)
}

func TestMessageStreamText(t *testing.T) {
	role := &chat.Chunk{Model: "openai/gpt-4o-mini", Choices: []chat.ChunkChoice{{Delta: chat.Delta{Role: "assistant", Content: ptr("")}}}}
	names, sse := run(t, messages.NewStream("chatcmpl-s1"), []*chat.Chunk{
		role, content("Hello"), content(" world"), finish(chat.FinishStop), usageChunk(12, 2, 42),
	}, true)
	want := "message_start content_block_start ping content_block_delta content_block_delta content_block_stop message_delta message_stop"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}
	for _, line := range []string{
		"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_s1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"openai/gpt-4o-mini\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,\"output_tokens\":0,\"cache_read_input_tokens\":0,\"cache_creation_input_tokens\":0}}}\n\n",
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
		"event: ping\ndata: {\"type\":\"ping\"}\n\n",
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":12,\"output_tokens\":2,\"cache_read_input_tokens\":0,\"cache_creation_input_tokens\":0,\"cost\":0.000042,\"cost_micros\":42}}\n\n",
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
	} {
		if !strings.Contains(sse, line) {
			t.Errorf("missing %q in\n%s", line, sse)
		}
	}
}

func TestMessageStreamToolUse(t *testing.T) {
	names, sse := run(t, messages.NewStream("chatcmpl-s2"), []*chat.Chunk{
		content("Let me check."),
		toolDelta(0, "call_a", "lookup", ""),
		toolDelta(0, "", "", `{"q":`),
		toolDelta(0, "", "", `"x"}`),
		toolDelta(1, "call_b", "other", `{}`),
		finish(chat.FinishToolCalls),
		usageChunk(30, 9, 7),
	}, true)
	want := "message_start content_block_start ping content_block_delta content_block_stop " +
		"content_block_start content_block_delta content_block_delta content_block_stop " +
		"content_block_start content_block_delta content_block_stop message_delta message_stop"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}
	for _, s := range []string{
		`{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"call_a","name":"lookup","input":{}}}`,
		`{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"q\":"}}`,
		`{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"x\"}"}}`,
		`{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"call_b","name":"other","input":{}}}`,
		`{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{}"}}`,
		`"delta":{"stop_reason":"tool_use","stop_sequence":null}`,
	} {
		if !strings.Contains(sse, s) {
			t.Errorf("missing %s in\n%s", s, sse)
		}
	}
	// A forced call that finishes with "stop" (OpenAI) is still tool_use;
	// a tool call without an id gets one.
	_, sse = run(t, messages.NewStream("chatcmpl-s3"), []*chat.Chunk{
		toolDelta(0, "", "f", `{}`), finish(chat.FinishStop), usageChunk(1, 1, 1),
	}, true)
	if !strings.Contains(sse, `"stop_reason":"tool_use"`) || !strings.Contains(sse, `"id":"toolu_`) {
		t.Errorf("forced call\n%s", sse)
	}
}

func TestMessageStreamThinkingAndStops(t *testing.T) {
	think := &chat.Chunk{Model: "m", Choices: []chat.ChunkChoice{{Delta: chat.Delta{ReasoningContent: "hmm"}}}}
	names, sse := run(t, messages.NewStream("chatcmpl-s4"), []*chat.Chunk{
		think, content("Answer"), finish(chat.FinishLength), usageChunk(5, 16, 3),
	}, true)
	if got := strings.Join(names, " "); got != "message_start content_block_start ping content_block_delta content_block_stop "+
		"content_block_start content_block_delta content_block_stop message_delta message_stop" {
		t.Fatalf("events %s", got)
	}
	for _, s := range []string{
		`"content_block":{"type":"thinking","thinking":"","signature":""}`,
		`"delta":{"type":"thinking_delta","thinking":"hmm"}`,
		`"index":1,"content_block":{"type":"text","text":""}`,
		`"stop_reason":"max_tokens"`,
	} {
		if !strings.Contains(sse, s) {
			t.Errorf("missing %s in\n%s", s, sse)
		}
	}
	// No content at all: message_start, message_delta, message_stop.
	names, _ = run(t, messages.NewStream("chatcmpl-s5"), []*chat.Chunk{finish(chat.FinishContentFilter), usageChunk(5, 0, 1)}, true)
	if got := strings.Join(names, " "); got != "message_start message_delta message_stop" {
		t.Errorf("empty stream %s", got)
	}
}

func TestMessageStreamError(t *testing.T) {
	st := messages.NewStream("chatcmpl-s6")
	names, _ := run(t, st, []*chat.Chunk{content("partial")}, false)
	evs := st.Error(&chat.ErrorEvent{Error: chat.ErrorBody{Message: "upstream provider error (status 500)", Type: "api_error", Code: "upstream_error"}})
	if len(evs) != 1 || evs[0].Name != "error" {
		t.Fatalf("error events %+v", evs)
	}
	b, _ := evs[0].AppendSSE(nil)
	if want := "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"upstream provider error (status 500)\",\"code\":\"upstream_error\"}}\n\n"; string(b) != want {
		t.Errorf("error event\n got %q\nwant %q", b, want)
	}
	// The gateway's error chunk, the usage chunk and Done add nothing after the error.
	errChunk := finish(chat.FinishLength)
	errChunk.Error = &chat.ErrorBody{Message: "x", Type: "api_error", Code: "upstream_error"}
	after, _ := run(t, st, []*chat.Chunk{errChunk, usageChunk(3, 1, 1)}, true)
	if len(after) != 0 || st.Error(&chat.ErrorEvent{}) != nil {
		t.Errorf("events after the error: %v", after)
	}
	if strings.Join(names, " ") != "message_start content_block_start ping content_block_delta" {
		t.Errorf("before the error: %v", names)
	}
	// Error types from codes.
	for code, want := range map[string]string{"upstream_timeout": "timeout_error", "upstream_rate_limited": "rate_limit_error",
		"invalid_request": "invalid_request_error", "internal_error": "api_error"} {
		evs := messages.NewStream("chatcmpl-x").Error(&chat.ErrorEvent{Error: chat.ErrorBody{Code: code, Message: "m"}})
		if b, _ := evs[0].AppendSSE(nil); !strings.Contains(string(b), `"type":"`+want+`"`) {
			t.Errorf("%s → %s", code, b)
		}
	}
}
