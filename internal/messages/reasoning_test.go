package messages_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/messages"
	"github.com/beaver-gateway/beaver/internal/reasoning"
)

// A reasoning model's tool call survives the client's round trip: the
// answer's content, sent back as the assistant turn (as Anthropic's SDKs
// do with response.content), gives chat back the reasoning text
// (DeepSeek's reasoning_content) and each call's Gemini thought signature.

const thoughtSig = "EpwICpkIAXLI2nxlU6gsWZaZHRYkX1orzuM8vSUFwaAt1JRx"

func signedCall(index int, id, name, args, sig string) chat.ToolCall {
	return chat.ToolCall{Index: ptr(index), ID: id, Type: "function", Function: chat.FunctionCall{Name: name, Arguments: args},
		ExtraContent: chat.GoogleExtraContent(sig)}
}

// sendBack parses a request whose history has content as the assistant
// turn after a question, and a tool result for each call; it returns the
// assistant message chat gets.
func sendBack(t *testing.T, content []any) chat.Message {
	t.Helper()
	var results []any
	for _, b := range content {
		if m := b.(map[string]any); m["type"] == "tool_use" {
			results = append(results, map[string]any{"type": "tool_result", "tool_use_id": m["id"], "content": "ok"})
		}
	}
	body, _ := json.Marshal(map[string]any{"model": "m", "max_tokens": 50, "messages": []any{
		map[string]any{"role": "user", "content": "go"},
		map[string]any{"role": "assistant", "content": content},
		map[string]any{"role": "user", "content": results},
	}})
	req := parse(t, string(body))
	if len(req.Messages) < 2 || req.Messages[1].Role != chat.RoleAssistant {
		t.Fatalf("messages %+v", req.Messages)
	}
	return req.Messages[1]
}

// contentOf is a Message's content as a client holds it after decoding.
func contentOf(t *testing.T, m *messages.Message) []any {
	t.Helper()
	var v struct {
		Content []any `json:"content"`
	}
	if err := json.Unmarshal([]byte(jsonOf(t, m)), &v); err != nil {
		t.Fatal(err)
	}
	return v.Content
}

func TestMessageReasoningRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name      string
		reasoning string
		sig       string
		blocks    string // the content's block types
	}{
		{"deepseek: reasoning text", "think think", "", "thinking tool_use"},
		{"gemini 3: a signed call", "", thoughtSig, "thinking tool_use"},
		{"both", "think", thoughtSig, "thinking tool_use"},
		{"neither", "", "", "tool_use"},
	} {
		resp := &chat.Response{ID: "chatcmpl-r", Model: "m", Choices: []chat.Choice{{FinishReason: chat.FinishToolCalls,
			Message: chat.Message{Role: chat.RoleAssistant, ReasoningContent: tc.reasoning,
				ToolCalls: []chat.ToolCall{signedCall(0, "call_1", "lookup", `{"q":1}`, tc.sig)}}}}}
		content := contentOf(t, messages.FromResponse(resp))
		var types []string
		for _, b := range content {
			types = append(types, b.(map[string]any)["type"].(string))
		}
		if got := strings.Join(types, " "); got != tc.blocks {
			t.Fatalf("%s: blocks %s, want %s: %v", tc.name, got, tc.blocks, content)
		}
		if tc.sig != "" && !strings.HasPrefix(content[0].(map[string]any)["signature"].(string), reasoning.Prefix) {
			t.Fatalf("%s: signature %v", tc.name, content[0])
		}
		m := sendBack(t, content)
		if m.ReasoningContent != tc.reasoning || len(m.ToolCalls) != 1 || m.ToolCalls[0].ThoughtSignature() != tc.sig ||
			m.ToolCalls[0].ID != "call_1" || m.ToolCalls[0].Function.Arguments != `{"q":1}` {
			t.Fatalf("%s: sent back as %+v", tc.name, m)
		}
		if tc.sig == "" && m.ToolCalls[0].ExtraContent != nil {
			t.Fatalf("%s: extra content %s", tc.name, m.ToolCalls[0].ExtraContent)
		}
	}
}

// accumulate folds a stream's events into the message's content, as the
// SDKs' stream accumulators do.
func accumulate(t *testing.T, sse string) []any {
	t.Helper()
	var blocks []map[string]any
	var inputs []string
	for _, line := range strings.Split(sse, "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var ev struct {
			Type         string         `json:"type"`
			Index        int            `json:"index"`
			ContentBlock map[string]any `json:"content_block"`
			Delta        map[string]any `json:"delta"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatal(err)
		}
		switch ev.Type {
		case messages.EventContentBlockStart:
			if ev.Index != len(blocks) {
				t.Fatalf("block %d starts at %d", ev.Index, len(blocks))
			}
			blocks, inputs = append(blocks, ev.ContentBlock), append(inputs, "")
		case messages.EventContentBlockDelta:
			b := blocks[ev.Index]
			switch ev.Delta["type"] {
			case "thinking_delta":
				b["thinking"] = b["thinking"].(string) + ev.Delta["thinking"].(string)
			case "signature_delta":
				b["signature"] = ev.Delta["signature"]
			case "text_delta":
				b["text"] = b["text"].(string) + ev.Delta["text"].(string)
			case "input_json_delta":
				inputs[ev.Index] += ev.Delta["partial_json"].(string)
			}
		}
	}
	out := make([]any, len(blocks))
	for i, b := range blocks {
		if inputs[i] != "" {
			var in any
			if err := json.Unmarshal([]byte(inputs[i]), &in); err != nil {
				t.Fatal(err)
			}
			b["input"] = in
		}
		out[i] = b
	}
	return out
}

func think(text string) *chat.Chunk {
	return &chat.Chunk{Model: "m", Choices: []chat.ChunkChoice{{Delta: chat.Delta{ReasoningContent: text}}}}
}

func signedDelta(c chat.ToolCall) *chat.Chunk {
	return &chat.Chunk{Model: "m", Choices: []chat.ChunkChoice{{Delta: chat.Delta{ToolCalls: []chat.ToolCall{c}}}}}
}

func TestMessageStreamReasoningRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks []*chat.Chunk
		events string
		blocks string
		think  string
		sigs   []string
	}{{
		name:   "deepseek: reasoning, then a call",
		chunks: []*chat.Chunk{think("think "), think("more"), toolDelta(0, "call_1", "lookup", `{"q":1}`)},
		events: "start(thinking) thinking_delta thinking_delta stop start(tool_use) input_json_delta stop",
		blocks: "thinking tool_use", think: "think more", sigs: []string{""},
	}, {
		// Gemini 3 sends each call whole, its signature with it: the
		// signature rides on a thinking block just before the call's
		// tool_use, where Anthropic puts a thinking block's signature.
		name:   "gemini 3: two signed calls",
		chunks: []*chat.Chunk{signedDelta(signedCall(0, "call_1", "lookup", `{"q":1}`, thoughtSig)), signedDelta(signedCall(1, "call_2", "lookup", `{}`, "second"))},
		events: "start(thinking) signature_delta stop start(tool_use) input_json_delta stop " +
			"start(thinking) signature_delta stop start(tool_use) input_json_delta stop",
		blocks: "thinking tool_use thinking tool_use", sigs: []string{thoughtSig, "second"},
	}, {
		name:   "thoughts, then a signed call: the open thinking block takes the signature",
		chunks: []*chat.Chunk{think("hmm"), signedDelta(signedCall(0, "call_1", "lookup", `{}`, thoughtSig))},
		events: "start(thinking) thinking_delta signature_delta stop start(tool_use) input_json_delta stop",
		blocks: "thinking tool_use", think: "hmm", sigs: []string{thoughtSig},
	}, {
		name:   "thoughts, text, a signed call",
		chunks: []*chat.Chunk{think("hmm"), content("Checking."), signedDelta(signedCall(0, "call_1", "lookup", `{}`, thoughtSig))},
		events: "start(thinking) thinking_delta stop start(text) text_delta stop start(thinking) signature_delta stop start(tool_use) input_json_delta stop",
		blocks: "thinking text thinking tool_use", think: "hmm", sigs: []string{thoughtSig},
	}, {
		// A signature on a later fragment of a call already under way
		// cannot go before it: a thinking block after the calls carries it.
		name: "a late signature",
		chunks: []*chat.Chunk{toolDelta(0, "call_1", "lookup", ""),
			signedDelta(chat.ToolCall{Index: ptr(0), Function: chat.FunctionCall{Arguments: `{}`}, ExtraContent: chat.GoogleExtraContent(thoughtSig)})},
		events: "start(tool_use) input_json_delta stop start(thinking) signature_delta stop",
		blocks: "tool_use thinking", sigs: []string{thoughtSig},
	}} {
		chunks := append(tc.chunks, finish(chat.FinishToolCalls), usageChunk(10, 5, 1))
		_, sse := run(t, messages.NewStream("chatcmpl-r"), chunks, true)
		if got := streamShape(t, sse); got != tc.events {
			t.Fatalf("%s: events\n got %s\nwant %s\n%s", tc.name, got, tc.events, sse)
		}
		content := accumulate(t, sse)
		var types []string
		for _, b := range content {
			types = append(types, b.(map[string]any)["type"].(string))
		}
		if got := strings.Join(types, " "); got != tc.blocks {
			t.Fatalf("%s: blocks %s, want %s", tc.name, got, tc.blocks)
		}
		m := sendBack(t, content)
		if m.ReasoningContent != tc.think || len(m.ToolCalls) != len(tc.sigs) {
			t.Fatalf("%s: sent back as %+v", tc.name, m)
		}
		for i, want := range tc.sigs {
			if got := m.ToolCalls[i].ThoughtSignature(); got != want {
				t.Fatalf("%s: call %d signature %q, want %q", tc.name, i, got, want)
			}
		}
	}
}

// streamShape names a stream's block events: start(type), the delta
// types, stop.
func streamShape(t *testing.T, sse string) string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(sse, "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var ev struct {
			Type         string            `json:"type"`
			ContentBlock map[string]any    `json:"content_block"`
			Delta        map[string]string `json:"delta"`
		}
		_ = json.Unmarshal([]byte(data), &ev)
		switch ev.Type {
		case messages.EventContentBlockStart:
			out = append(out, "start("+ev.ContentBlock["type"].(string)+")")
		case messages.EventContentBlockDelta:
			out = append(out, ev.Delta["type"])
		case messages.EventContentBlockStop:
			out = append(out, "stop")
		}
	}
	return strings.Join(out, " ")
}

// What a client sends back is read leniently: a signature Beaver did not
// make (Anthropic's own, from a conversation begun elsewhere) is ignored
// and the thinking text still counts; redacted thinking is dropped; a
// token's signatures reach only the calls of its own turn.
func TestMessageParseForeignThinking(t *testing.T) {
	token := reasoning.Of("toolu_1", thoughtSig).Token()
	req := parse(t, `{"model": "m", "max_tokens": 5, "messages": [
		{"role": "user", "content": "hi"},
		{"role": "assistant", "content": [
			{"type": "thinking", "thinking": "first ", "signature": "EvMCCkYICxgCKkCHP2cSuEdcJK/0rFwqES=="},
			{"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
			{"type": "thinking", "thinking": "second", "signature": "`+reasoning.Prefix+`!!broken"},
			{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]},
		{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]},
		{"role": "assistant", "content": [
			{"type": "thinking", "thinking": "", "signature": "`+token+`"},
			{"type": "tool_use", "id": "toolu_2", "name": "f", "input": {}}]},
		{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_2", "content": "ok"}]}]}`)
	m := req.Messages
	if len(m) != 5 || m[1].ReasoningContent != "first second" || m[1].ToolCalls[0].ExtraContent != nil {
		t.Fatalf("first turn %+v", m[1])
	}
	// toolu_1's signature is in the second turn's token: not applied to toolu_2.
	if m[3].ReasoningContent != "" || m[3].ToolCalls[0].ExtraContent != nil {
		t.Fatalf("second turn %+v", m[3])
	}
}
