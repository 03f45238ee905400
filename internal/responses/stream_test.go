package responses_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	oai "github.com/openai/openai-go/v3/responses"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/internal/responses"
)

var _ gateway.Sink = (*responses.Stream)(nil)

// recorder is an EventWriter that keeps every event's name and data; it
// accepts limit events (0 = all), then reports the client gone.
type recorder struct {
	t      *testing.T
	opened string
	names  []string
	data   [][]byte
	limit  int
}

func (r *recorder) Open(id string) { r.opened = id }

func (r *recorder) Event(typ string, v any) bool {
	if r.limit > 0 && len(r.names) >= r.limit {
		return false
	}
	b, err := json.Marshal(v)
	if err != nil {
		r.t.Fatal(err)
	}
	r.names, r.data = append(r.names, typ), append(r.data, b)
	return true
}

// check verifies every event as a client would: type equal to the event
// name, sequence numbers 0, 1, 2..., and decodable by the SDK.
func (r *recorder) check() []oai.ResponseStreamEventUnion {
	r.t.Helper()
	out := make([]oai.ResponseStreamEventUnion, len(r.data))
	for i, b := range r.data {
		var head struct {
			Type           string `json:"type"`
			SequenceNumber *int   `json:"sequence_number"`
		}
		if err := json.Unmarshal(b, &head); err != nil || head.Type != r.names[i] || head.SequenceNumber == nil || *head.SequenceNumber != i {
			r.t.Fatalf("event %d (%s): %s", i, r.names[i], b)
		}
		if err := json.Unmarshal(b, &out[i]); err != nil {
			r.t.Fatalf("SDK decode of %s: %v", b, err)
		}
	}
	return out
}

func (r *recorder) dump() string {
	var b strings.Builder
	for _, d := range r.data {
		b.Write(d)
		b.WriteByte('\n')
	}
	return b.String()
}

const model = "anthropic/claude-3-5-haiku-20241022"

func textChunk(s string) *chat.Chunk {
	return &chat.Chunk{ID: "chatcmpl-01s", Model: model, Created: 1700000000,
		Choices: []chat.ChunkChoice{{Delta: chat.Delta{Content: &s}}}}
}

func finishChunk(reason string) *chat.Chunk {
	return &chat.Chunk{ID: "chatcmpl-01s", Model: model, Created: 1700000000,
		Choices: []chat.ChunkChoice{{Delta: chat.Delta{}, FinishReason: &reason}}}
}

func toolChunk(index int, id, name, args string) *chat.Chunk {
	return &chat.Chunk{ID: "chatcmpl-01s", Model: model, Created: 1700000000,
		Choices: []chat.ChunkChoice{{Delta: chat.Delta{ToolCalls: []chat.ToolCall{
			{Index: &index, ID: id, Type: "function", Function: chat.FunctionCall{Name: name, Arguments: args}}}}}}}
}

func usageChunk(prompt, completion int, micros int64) *chat.Chunk {
	return &chat.Chunk{ID: "chatcmpl-01s", Model: model, Choices: []chat.ChunkChoice{}, Usage: charged(prompt, completion, micros)}
}

func send(t *testing.T, s *responses.Stream, chunks ...*chat.Chunk) {
	t.Helper()
	for _, c := range chunks {
		if !s.Send(c) {
			t.Fatalf("Send(%+v) = false", c)
		}
	}
}

func TestResponsesStreamText(t *testing.T) {
	req := parse(t, `{"model":"claude-3-5-haiku-20241022","input":"hi","stream":true}`)
	rec := &recorder{t: t}
	s := responses.NewStream(req, rec)
	s.Open("chatcmpl-01s")
	empty := ""
	role := &chat.Chunk{ID: "chatcmpl-01s", Model: model, Created: 1700000000, Choices: []chat.ChunkChoice{{Delta: chat.Delta{Role: "assistant", Content: &empty}}}}
	send(t, s, role, textChunk("Hello"), textChunk(" world"), finishChunk(chat.FinishStop), usageChunk(7, 2, 42))
	s.Done()
	s.Close() // a stream that ended: nothing more
	if rec.opened != "resp_01s" {
		t.Fatalf("opened %q", rec.opened)
	}
	want := []string{"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
		"response.output_text.delta", "response.output_text.delta", "response.output_text.done", "response.content_part.done",
		"response.output_item.done", "response.completed"}
	if !reflect.DeepEqual(rec.names, want) {
		t.Fatalf("events %v\nwant %v", rec.names, want)
	}
	ev := rec.check()
	created := ev[0].AsResponseCreated().Response
	if created.ID != "resp_01s" || created.Status != "in_progress" || created.Model != model || len(created.Output) != 0 ||
		created.CreatedAt != 1700000000 {
		t.Fatalf("created %s", rec.data[0])
	}
	if strings.Contains(string(rec.data[0]), `"usage":{`) {
		t.Fatalf("created has usage: %s", rec.data[0])
	}
	added := ev[2].AsResponseOutputItemAdded()
	itemID := added.Item.ID
	if added.Item.Type != "message" || added.Item.Status != "in_progress" || added.OutputIndex != 0 || !strings.HasPrefix(itemID, "msg_") {
		t.Fatalf("item added %s", rec.data[2])
	}
	if p := ev[3].AsResponseContentPartAdded(); p.ItemID != itemID || p.ContentIndex != 0 || p.Part.Type != "output_text" || p.Part.Text != "" {
		t.Fatalf("part added %s", rec.data[3])
	}
	if d := ev[5].AsResponseOutputTextDelta(); d.Delta != " world" || d.ItemID != itemID || d.OutputIndex != 0 || d.Logprobs == nil {
		t.Fatalf("delta %s", rec.data[5])
	}
	if d := ev[6].AsResponseOutputTextDone(); d.Text != "Hello world" {
		t.Fatalf("text done %s", rec.data[6])
	}
	if p := ev[7].AsResponseContentPartDone(); p.Part.Text != "Hello world" {
		t.Fatalf("part done %s", rec.data[7])
	}
	if it := ev[8].AsResponseOutputItemDone().Item; it.Status != "completed" || it.Content[0].Text != "Hello world" {
		t.Fatalf("item done %s", rec.data[8])
	}
	final := ev[9].AsResponseCompleted().Response
	if final.Status != "completed" || final.OutputText() != "Hello world" || final.Usage.InputTokens != 7 || final.Usage.OutputTokens != 2 ||
		final.Output[0].ID != itemID || !strings.Contains(string(rec.data[9]), `"cost_micros":42`) {
		t.Fatalf("completed %s", rec.data[9])
	}
}

func TestResponsesStreamFunctionCalls(t *testing.T) {
	req := parse(t, `{"model":"m","input":"weather?","stream":true,"tools":[{"type":"function","name":"get_weather"}]}`)
	rec := &recorder{t: t}
	s := responses.NewStream(req, rec)
	s.Open("chatcmpl-01s")
	send(t, s, textChunk("Checking."),
		toolChunk(0, "call_a", "get_weather", ""), toolChunk(0, "", "", `{"city":`), toolChunk(0, "", "", `"Paris"}`),
		toolChunk(1, "call_b", "get_weather", `{"city":"Rome"}`),
		finishChunk(chat.FinishToolCalls), usageChunk(20, 9, 100))
	want := []string{"response.created", "response.in_progress",
		"response.output_item.added", "response.content_part.added", "response.output_text.delta",
		"response.output_text.done", "response.content_part.done", "response.output_item.done",
		"response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.delta",
		"response.function_call_arguments.done", "response.output_item.done",
		"response.output_item.added", "response.function_call_arguments.delta",
		"response.function_call_arguments.done", "response.output_item.done",
		"response.completed"}
	if !reflect.DeepEqual(rec.names, want) {
		t.Fatalf("events %v\nwant %v", rec.names, want)
	}
	ev := rec.check()
	first := ev[8].AsResponseOutputItemAdded()
	if first.OutputIndex != 1 || first.Item.Type != "function_call" || first.Item.CallID != "call_a" || first.Item.Name != "get_weather" ||
		first.Item.Status != "in_progress" || !strings.Contains(string(rec.data[8]), `"arguments":""`) {
		t.Fatalf("call added %s", rec.data[8])
	}
	if d := ev[10].AsResponseFunctionCallArgumentsDelta(); d.Delta != `"Paris"}` || d.ItemID != first.Item.ID || d.OutputIndex != 1 {
		t.Fatalf("arguments delta %s", rec.data[10])
	}
	if d := ev[11].AsResponseFunctionCallArgumentsDone(); d.Arguments != `{"city":"Paris"}` || d.ItemID != first.Item.ID {
		t.Fatalf("arguments done %s", rec.data[11])
	}
	if it := ev[12].AsResponseOutputItemDone().Item; it.Status != "completed" || it.Arguments.OfString != `{"city":"Paris"}` {
		t.Fatalf("call done %s", rec.data[12])
	}
	if a := ev[13].AsResponseOutputItemAdded(); a.OutputIndex != 2 || a.Item.CallID != "call_b" {
		t.Fatalf("second call %s", rec.data[13])
	}
	final := ev[len(ev)-1].AsResponseCompleted().Response
	if len(final.Output) != 3 || final.Output[1].AsFunctionCall().Arguments != `{"city":"Paris"}` ||
		final.Output[2].AsFunctionCall().Arguments != `{"city":"Rome"}` || final.Output[2].Status != "completed" {
		t.Fatalf("final %s", rec.data[len(rec.data)-1])
	}
}

func TestResponsesStreamReasoningAndRefusal(t *testing.T) {
	req := parse(t, `{"model":"m","input":"x","stream":true}`)
	rec := &recorder{t: t}
	s := responses.NewStream(req, rec)
	s.Open("chatcmpl-01s")
	refusal := "No."
	send(t, s,
		&chat.Chunk{Model: model, Choices: []chat.ChunkChoice{{Delta: chat.Delta{ReasoningContent: "Hmm"}}}},
		textChunk("Well"),
		&chat.Chunk{Model: model, Choices: []chat.ChunkChoice{{Delta: chat.Delta{Refusal: &refusal}}}},
		finishChunk(chat.FinishStop), usageChunk(1, 1, 1))
	want := []string{"response.created", "response.in_progress",
		"response.output_item.added", "response.reasoning_summary_part.added", "response.reasoning_summary_text.delta",
		"response.reasoning_summary_text.done", "response.reasoning_summary_part.done", "response.output_item.done",
		"response.output_item.added", "response.content_part.added", "response.output_text.delta",
		"response.output_text.done", "response.content_part.done",
		"response.content_part.added", "response.refusal.delta", "response.refusal.done", "response.content_part.done",
		"response.output_item.done", "response.completed"}
	if !reflect.DeepEqual(rec.names, want) {
		t.Fatalf("events %v\nwant %v", rec.names, want)
	}
	ev := rec.check()
	if p := ev[13].AsResponseContentPartAdded(); p.ContentIndex != 1 || p.Part.Type != "refusal" || p.OutputIndex != 1 {
		t.Fatalf("refusal part %s", rec.data[13])
	}
	final := ev[len(ev)-1].AsResponseCompleted().Response
	if final.Output[0].Type != "reasoning" || final.Output[0].AsReasoning().Summary[0].Text != "Hmm" ||
		final.Output[1].AsMessage().Content[1].Refusal != "No." {
		t.Fatalf("final %s", rec.data[len(rec.data)-1])
	}
}

func TestResponsesStreamIncomplete(t *testing.T) {
	req := parse(t, `{"model":"m","input":"x","stream":true,"max_output_tokens":2}`)
	rec := &recorder{t: t}
	s := responses.NewStream(req, rec)
	s.Open("chatcmpl-01s")
	send(t, s, textChunk("one"), textChunk(" two"), finishChunk(chat.FinishLength), usageChunk(3, 2, 5))
	ev := rec.check()
	last := ev[len(ev)-1]
	if last.Type != "response.incomplete" {
		t.Fatalf("last event %s", rec.data[len(rec.data)-1])
	}
	r := last.AsResponseIncomplete().Response
	if r.Status != "incomplete" || r.IncompleteDetails.Reason != "max_output_tokens" || r.Output[0].Status != "incomplete" ||
		r.MaxOutputTokens != 2 || r.Usage.OutputTokens != 2 {
		t.Fatalf("incomplete %s", rec.data[len(rec.data)-1])
	}
	if it := ev[len(ev)-2].AsResponseOutputItemDone().Item; it.Status != "incomplete" {
		t.Fatalf("item done %s", rec.data[len(rec.data)-2])
	}
}

// A stream that fails midway, as the gateway ends it: the error event, its
// final error chunk, then (once charged) the usage chunk.
func TestResponsesStreamFailure(t *testing.T) {
	req := parse(t, `{"model":"m","input":"x","stream":true}`)
	rec := &recorder{t: t}
	s := responses.NewStream(req, rec)
	s.Open("chatcmpl-01s")
	send(t, s, textChunk("partial"))
	body := chat.ErrorBody{Message: "the upstream provider failed", Type: "api_error", Code: "upstream_error"}
	if !s.SendError(&chat.ErrorEvent{Error: body}) {
		t.Fatal("SendError = false")
	}
	length := chat.FinishLength
	send(t, s, &chat.Chunk{Model: model, Choices: []chat.ChunkChoice{{FinishReason: &length}}, Error: &body}, usageChunk(4, 1, 9))
	s.Done()
	s.Close()
	want := []string{"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
		"response.output_text.delta", "error", "response.failed"}
	if !reflect.DeepEqual(rec.names, want) {
		t.Fatalf("events %v\nwant %v\n%s", rec.names, want, rec.dump())
	}
	ev := rec.check()
	if e := ev[5].AsError(); e.Code != "upstream_error" || e.Message != body.Message || !strings.Contains(string(rec.data[5]), `"param":null`) {
		t.Fatalf("error event %s", rec.data[5])
	}
	r := ev[6].AsResponseFailed().Response
	if r.Status != "failed" || r.Error.Code != "server_error" || r.Error.Message != body.Message || r.OutputText() != "partial" ||
		r.Output[0].Status != "incomplete" || r.Usage.OutputTokens != 1 || !strings.Contains(string(rec.data[6]), `"cost_micros":9`) {
		t.Fatalf("failed %s", rec.data[6])
	}
}

// When the charge cannot be committed the gateway writes an error and no
// usage chunk: Close ends the stream with response.failed.
func TestResponsesStreamClosedWithoutUsage(t *testing.T) {
	req := parse(t, `{"model":"openai/gpt-4o-mini","input":"x","stream":true}`)
	rec := &recorder{t: t}
	s := responses.NewStream(req, rec)
	s.Open("chatcmpl-01s")
	if !s.SendError(&chat.ErrorEvent{Error: chat.ErrorBody{Message: "internal server error", Type: "api_error", Code: "internal_error"}}) {
		t.Fatal("SendError = false")
	}
	s.Close()
	want := []string{"response.created", "response.in_progress", "error", "response.failed"}
	if !reflect.DeepEqual(rec.names, want) {
		t.Fatalf("events %v\nwant %v", rec.names, want)
	}
	ev := rec.check()
	if r := ev[3].AsResponseFailed().Response; r.Status != "failed" || r.Model != "openai/gpt-4o-mini" || r.Error.Code != "server_error" ||
		strings.Contains(string(rec.data[3]), `"usage"`) { // no usage was reported: absent, not null
		t.Fatalf("failed %s", rec.data[3])
	}
	// A stream that never opened writes nothing.
	rec2 := &recorder{t: t}
	responses.NewStream(req, rec2).Close()
	if len(rec2.names) != 0 {
		t.Fatalf("unopened stream wrote %v", rec2.names)
	}
}

func TestResponsesStreamClientGone(t *testing.T) {
	req := parse(t, `{"model":"m","input":"x","stream":true}`)
	rec := &recorder{t: t, limit: 5}
	s := responses.NewStream(req, rec)
	s.Open("chatcmpl-01s")
	if !s.Send(textChunk("a")) { // created, in_progress, item added, part added, delta
		t.Fatal("first chunk refused")
	}
	if s.Send(textChunk("b")) || s.Send(usageChunk(1, 2, 3)) {
		t.Fatal("Send to a gone client = true")
	}
	s.Close()
	if len(rec.names) != 5 {
		t.Fatalf("events %v", rec.names)
	}
}

// Tool-call fragments without an index: an id starts a call, a fragment
// without one continues the call being streamed.
func TestResponsesStreamToolCallsWithoutIndex(t *testing.T) {
	req := parse(t, `{"model":"m","input":"x","stream":true,"tools":[{"type":"function","name":"f"}]}`)
	rec := &recorder{t: t}
	s := responses.NewStream(req, rec)
	s.Open("chatcmpl-01s")
	noIndex := func(id, name, args string) *chat.Chunk {
		c := toolChunk(0, id, name, args)
		c.Choices[0].Delta.ToolCalls[0].Index = nil
		return c
	}
	send(t, s, noIndex("call_1", "f", `{"a":`), noIndex("", "", `1}`), noIndex("call_2", "f", `{}`),
		finishChunk(chat.FinishToolCalls), usageChunk(1, 1, 1))
	ev := rec.check()
	final := ev[len(ev)-1].AsResponseCompleted().Response
	if len(final.Output) != 2 || final.Output[0].AsFunctionCall().Arguments != `{"a":1}` || final.Output[1].AsFunctionCall().CallID != "call_2" {
		t.Fatalf("final %s", rec.data[len(rec.data)-1])
	}
}
