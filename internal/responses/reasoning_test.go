package responses_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/reasoning"
	"github.com/beaver-gateway/beaver/internal/responses"
)

// A reasoning model's tool call survives the client's round trip: the
// response's output, sent back in input (as OpenAI's SDKs do with
// response.output) with the calls' results, gives chat back the reasoning
// text (DeepSeek's reasoning_content) and each call's Gemini thought
// signature.

const thoughtSig = "EpwICpkIAXLI2nxlU6gsWZaZHRYkX1orzuM8vSUFwaAt1JRx"

func signedCall(index int, id, args, sig string) chat.ToolCall {
	return chat.ToolCall{Index: &index, ID: id, Type: "function", Function: chat.FunctionCall{Name: "lookup", Arguments: args},
		ExtraContent: chat.GoogleExtraContent(sig)}
}

// sendBack parses a request whose input is a question, the output items
// (as the client decoded them) and a result for each function call; it
// returns the chat messages after the question.
func sendBack(t *testing.T, output []any) []chat.Message {
	t.Helper()
	input := []any{map[string]any{"role": "user", "content": "go"}}
	input = append(input, output...)
	for _, it := range output {
		if m := it.(map[string]any); m["type"] == "function_call" {
			input = append(input, map[string]any{"type": "function_call_output", "call_id": m["call_id"], "output": "ok"})
		}
	}
	body, _ := json.Marshal(map[string]any{"model": "m", "input": input})
	return parse(t, string(body)).Chat.Messages[1:]
}

// outputOf is a response's output as a client holds it after decoding.
func outputOf(t *testing.T, resp *responses.Response) []any {
	t.Helper()
	var v struct {
		Output []any `json:"output"`
	}
	if err := json.Unmarshal([]byte(jsonString(t, resp)), &v); err != nil {
		t.Fatal(err)
	}
	return v.Output
}

func itemTypes(output []any) string {
	var types []string
	for _, it := range output {
		types = append(types, it.(map[string]any)["type"].(string))
	}
	return strings.Join(types, " ")
}

// assistantTurn checks the assistant message chat gets back.
func assistantTurn(t *testing.T, name string, msgs []chat.Message, think string, sigs []string) {
	t.Helper()
	if len(msgs) == 0 || msgs[0].Role != chat.RoleAssistant || msgs[0].ReasoningContent != think || len(msgs[0].ToolCalls) != len(sigs) {
		t.Fatalf("%s: sent back as %+v", name, msgs)
	}
	for i, want := range sigs {
		if got := msgs[0].ToolCalls[i].ThoughtSignature(); got != want {
			t.Fatalf("%s: call %d signature %q, want %q", name, i, got, want)
		}
	}
}

func TestResponsesReasoningRoundTrip(t *testing.T) {
	req := parse(t, `{"model":"m","input":"go","tools":[{"type":"function","name":"lookup"}]}`)
	for _, tc := range []struct {
		name, reasoning, sig, items string
	}{
		{"deepseek: reasoning text", "think think", "", "reasoning function_call"},
		{"gemini 3: a signed call", "", thoughtSig, "reasoning function_call"},
		{"both", "think", thoughtSig, "reasoning function_call"},
		{"neither", "", "", "function_call"},
	} {
		msg := chat.Message{Role: chat.RoleAssistant, ReasoningContent: tc.reasoning,
			ToolCalls: []chat.ToolCall{signedCall(0, "call_1", `{"q":1}`, tc.sig)}}
		resp := responses.FromChat(req, completion(msg, chat.FinishToolCalls))
		sdk, _ := decode(t, resp)
		output := outputOf(t, resp)
		if got := itemTypes(output); got != tc.items {
			t.Fatalf("%s: items %s, want %s", tc.name, got, tc.items)
		}
		if tc.items != "function_call" {
			r := sdk.Output[0].AsReasoning()
			if !strings.HasPrefix(r.ID, "rs_") || r.Status != "completed" || r.Summary == nil || len(r.Content) != 0 {
				t.Fatalf("%s: reasoning item %s", tc.name, r.RawJSON())
			}
			if tc.reasoning != "" && (len(r.Summary) != 1 || r.Summary[0].Type != "summary_text" || r.Summary[0].Text != tc.reasoning) {
				t.Fatalf("%s: summary %s", tc.name, r.RawJSON())
			}
			if (tc.sig != "") != strings.HasPrefix(r.EncryptedContent, reasoning.Prefix) {
				t.Fatalf("%s: encrypted_content %q", tc.name, r.EncryptedContent)
			}
		}
		assistantTurn(t, tc.name, sendBack(t, output), tc.reasoning, []string{tc.sig})
	}
}

func reasoningChunk(text string) *chat.Chunk {
	return &chat.Chunk{Model: model, Choices: []chat.ChunkChoice{{Delta: chat.Delta{ReasoningContent: text}}}}
}

func signedChunk(c chat.ToolCall) *chat.Chunk {
	return &chat.Chunk{Model: model, Choices: []chat.ChunkChoice{{Delta: chat.Delta{ToolCalls: []chat.ToolCall{c}}}}}
}

func TestResponsesStreamReasoningRoundTrip(t *testing.T) {
	// The reasoning item's events, as OpenAI streams a summary.
	summary := []string{"response.output_item.added", "response.reasoning_summary_part.added",
		"response.reasoning_summary_text.delta", "response.reasoning_summary_text.delta",
		"response.reasoning_summary_text.done", "response.reasoning_summary_part.done", "response.output_item.done"}
	carrier := []string{"response.output_item.added", "response.output_item.done"}
	call := []string{"response.output_item.added", "response.function_call_arguments.delta",
		"response.function_call_arguments.done", "response.output_item.done"}
	message := []string{"response.output_item.added", "response.content_part.added", "response.output_text.delta",
		"response.output_text.done", "response.content_part.done", "response.output_item.done"}
	cat := func(parts ...[]string) []string {
		out := []string{"response.created", "response.in_progress"}
		for _, p := range parts {
			out = append(out, p...)
		}
		return append(out, "response.completed")
	}
	for _, tc := range []struct {
		name   string
		chunks []*chat.Chunk
		events []string
		items  string
		think  string
		sigs   []string
	}{{
		name:   "deepseek: reasoning, then a call",
		chunks: []*chat.Chunk{reasoningChunk("think "), reasoningChunk("more"), toolChunk(0, "call_1", "lookup", `{"q":1}`)},
		events: cat(summary, call), items: "reasoning function_call", think: "think more", sigs: []string{""},
	}, {
		// Gemini 3 sends each call whole, its signature with it: a reasoning
		// item just before the function call carries it, where OpenAI puts
		// the reasoning a call came from.
		name:   "gemini 3: two signed calls",
		chunks: []*chat.Chunk{signedChunk(signedCall(0, "call_1", `{}`, thoughtSig)), signedChunk(signedCall(1, "call_2", `{}`, "second"))},
		events: cat(carrier, call, carrier, call), items: "reasoning function_call reasoning function_call",
		sigs: []string{thoughtSig, "second"},
	}, {
		name:   "thoughts, then a signed call: the open reasoning item takes the signature",
		chunks: []*chat.Chunk{reasoningChunk("hm"), reasoningChunk("m"), signedChunk(signedCall(0, "call_1", `{}`, thoughtSig))},
		events: cat(summary, call), items: "reasoning function_call", think: "hmm", sigs: []string{thoughtSig},
	}, {
		name:   "text, then a signed call",
		chunks: []*chat.Chunk{textChunk("Checking."), signedChunk(signedCall(0, "call_1", `{}`, thoughtSig))},
		events: cat(message, carrier, call), items: "message reasoning function_call", sigs: []string{thoughtSig},
	}, {
		// A signature on a later fragment of a call already under way
		// cannot go before it: a reasoning item after the calls carries it.
		name: "a late signature",
		chunks: []*chat.Chunk{toolChunk(0, "call_1", "lookup", ""),
			signedChunk(chat.ToolCall{Index: new(int), Function: chat.FunctionCall{Arguments: `{}`}, ExtraContent: chat.GoogleExtraContent(thoughtSig)})},
		events: cat(call, carrier), items: "function_call reasoning", sigs: []string{thoughtSig},
	}} {
		rec := &recorder{t: t}
		s := responses.NewStream(parse(t, `{"model":"m","input":"go","stream":true}`), rec)
		s.Open("chatcmpl-01s")
		send(t, s, append(tc.chunks, finishChunk(chat.FinishToolCalls), usageChunk(10, 5, 1))...)
		if !reflect.DeepEqual(rec.names, tc.events) {
			t.Fatalf("%s: events\n got %v\nwant %v\n%s", tc.name, rec.names, tc.events, rec.dump())
		}
		ev := rec.check()
		final := ev[len(ev)-1].AsResponseCompleted().Response
		var v struct {
			Output []any `json:"output"`
		}
		if err := json.Unmarshal([]byte(final.RawJSON()), &v); err != nil {
			t.Fatal(err)
		}
		if got := itemTypes(v.Output); got != tc.items {
			t.Fatalf("%s: items %s, want %s", tc.name, got, tc.items)
		}
		// Each item's done event carries it whole, as the final response does.
		for i, e := range ev {
			if e.Type == "response.output_item.done" {
				done := e.AsResponseOutputItemDone()
				if got, want := done.Item.RawJSON(), final.Output[done.OutputIndex].RawJSON(); got != want {
					t.Fatalf("%s: event %d item %s, final %s", tc.name, i, got, want)
				}
			}
		}
		msgs := sendBack(t, v.Output)
		if tc.items == "message reasoning function_call" {
			if msgs[0].Content.Text() != "Checking." {
				t.Fatalf("%s: %+v", tc.name, msgs[0])
			}
		}
		assistantTurn(t, tc.name, msgs, tc.think, tc.sigs)
	}
}

// What a client sends back is read leniently: reasoning text from content
// (reasoning_text) or summary, an encrypted_content Beaver did not make
// (OpenAI's own) ignored, malformed parts skipped; reasoning belongs to the
// assistant content that follows it in its turn and to nothing after a
// user message or a tool result.
func TestResponsesParseReasoningItems(t *testing.T) {
	token := reasoning.Of("call_2", thoughtSig).Token()
	r := parse(t, `{"model":"m","input":[
		{"role":"user","content":"go"},
		{"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"a summary"}],
			"content":[{"type":"reasoning_text","text":"raw "},{"type":"reasoning_text","text":"thoughts"}],
			"encrypted_content":"gAAAAABoISQ24OyVRYbkYfukuA2Ct6yRLm2xTnxPNWHe"},
		{"type":"function_call","call_id":"call_1","name":"f","arguments":"{}"},
		{"type":"function_call_output","call_id":"call_1","output":"ok"},
		{"type":"reasoning","id":"rs_2","summary":"not an array","encrypted_content":7},
		{"role":"user","content":"and?"},
		{"type":"reasoning","id":"rs_3","summary":[{"type":"summary_text","text":"second "}]},
		{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Checking."}]},
		{"type":"reasoning","id":"rs_4","summary":[{"type":"summary_text","text":"turn"}],"encrypted_content":"`+token+`"},
		{"type":"function_call","call_id":"call_2","name":"f","arguments":"{}"},
		{"type":"function_call_output","call_id":"call_2","output":"ok"}]}`)
	m := r.Chat.Messages
	if len(m) != 6 || m[1].ReasoningContent != "raw thoughts" || m[1].ToolCalls[0].ExtraContent != nil {
		t.Fatalf("first turn %+v", m)
	}
	if m[3].Role != chat.RoleUser || m[3].ReasoningContent != "" {
		t.Fatalf("user %+v", m[3])
	}
	if m[4].Content.Text() != "Checking." || m[4].ReasoningContent != "second turn" || m[4].ToolCalls[0].ThoughtSignature() != thoughtSig {
		t.Fatalf("second turn %+v", m[4])
	}
}

// include: ["reasoning.encrypted_content"] is what clients that keep no
// state on the server send; Beaver answers it as it always does.
func TestResponsesIncludeEncryptedContent(t *testing.T) {
	parse(t, `{"model":"m","input":"x","include":["reasoning.encrypted_content"]}`)
}
