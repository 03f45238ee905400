package responses_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/responses"
)

// store and previous_response_id are read (the API stores and loads); a
// string input is kept as one user message item, this turn's own.
func TestResponsesRequestState(t *testing.T) {
	r, err := responses.ParseRequest([]byte(`{"model":"m","input":"hi","store":false,"previous_response_id":"resp_1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Store == nil || *r.Store || r.PreviousResponseID != "resp_1" || len(r.Input) != 1 ||
		!strings.Contains(string(r.Input[0]), `"role":"user"`) {
		t.Fatalf("state: store %v previous %q input %s", r.Store, r.PreviousResponseID, r.Input)
	}
	if r, _ := responses.ParseRequest([]byte(`{"model":"m","input":"hi"}`)); r.Store != nil {
		t.Fatal("store left out must stay nil: the server's default applies")
	}
}

// A chain's turns become input items before the request's own: each
// turn's input then its output, so that the provider sees the whole
// conversation; the request's own instructions alone are a system message.
func TestResponsesHistory(t *testing.T) {
	first := responses.FromChat(mustParse(t, `{"model":"m","input":"one","instructions":"old"}`), &chat.Response{ID: "chatcmpl-1", Model: "m",
		Choices: []chat.Choice{{Message: chat.Message{Role: chat.RoleAssistant, Content: chat.TextContent("answer one"),
			ToolCalls: []chat.ToolCall{{ID: "call_1", Type: "function", Function: chat.FunctionCall{Name: "f", Arguments: "{}"}}}}}}})
	out, _ := json.Marshal(first)
	history, err := responses.History([]responses.Turn{{Input: mustParse(t, `{"model":"m","input":"one"}`).Input, Response: out}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := responses.ParseRequestAfter([]byte(`{"model":"m","input":[{"type":"function_call_output","call_id":"call_1","output":"42"}],"instructions":"new"}`), history)
	if err != nil {
		t.Fatal(err)
	}
	m := r.Chat.Messages
	if len(m) != 4 || m[0].Role != chat.RoleSystem || m[0].Content.Text() != "new" || m[1].Content.Text() != "one" ||
		m[2].Role != chat.RoleAssistant || m[2].Content.Text() != "answer one" || len(m[2].ToolCalls) != 1 ||
		m[3].Role != chat.RoleTool || m[3].ToolCallID != "call_1" {
		t.Fatalf("messages %+v", m)
	}
	if len(r.Input) != 1 {
		t.Fatalf("own input %s: the chain is not this turn's", r.Input)
	}
}

func TestResponsesInputItemsPage(t *testing.T) {
	items := responses.WithIDs([]json.RawMessage{json.RawMessage(`{"type":"message","role":"user","content":"a"}`),
		json.RawMessage(`{"id":"given","type":"message","role":"user","content":"b"}`),
		json.RawMessage(`{"type":"function_call_output","call_id":"c","output":"x"}`)})
	var ids []string
	for _, b := range items {
		var it struct{ ID string }
		_ = json.Unmarshal(b, &it)
		ids = append(ids, it.ID)
	}
	if !strings.HasPrefix(ids[0], "msg_") || ids[1] != "given" || !strings.HasPrefix(ids[2], "fco_") {
		t.Fatalf("ids %v", ids)
	}
	page, err := responses.Page(items, "desc", "", 2)
	if err != nil || len(page.Data) != 2 || !page.HasMore || *page.FirstID != ids[2] || *page.LastID != ids[1] {
		t.Fatalf("first page %+v %v", page, err)
	}
	page, err = responses.Page(items, "desc", *page.LastID, 2)
	if err != nil || len(page.Data) != 1 || page.HasMore || *page.FirstID != ids[0] {
		t.Fatalf("second page %+v %v", page, err)
	}
	page, err = responses.Page(items, "asc", ids[2], 20)
	if err != nil || len(page.Data) != 0 || page.FirstID != nil || page.HasMore {
		t.Fatalf("past the end %+v %v", page, err)
	}
	if _, err := responses.Page(items, "asc", "nope", 20); err == nil {
		t.Fatal("an unknown after was accepted")
	}
}

// input_items spells items out as OpenAI lists them (ItemResource), while
// they are kept as sent: a message's text becomes a content part, a
// message, call and output get a status, the rest is untouched.
func TestResponsesInputItemsAsListed(t *testing.T) {
	items := []json.RawMessage{
		json.RawMessage(`{"id":"m1","role":"user","content":"hi"}`),
		json.RawMessage(`{"id":"m2","type":"message","role":"assistant","content":"hello"}`),
		json.RawMessage(`{"id":"m3","type":"message","role":"assistant","status":"incomplete","content":[{"type":"output_text","text":"x"}]}`),
		json.RawMessage(`{"id":"m4","type":"message","role":"user","content":[{"type":"input_text","text":"y"}]}`),
		json.RawMessage(`{"id":"fc","type":"function_call","call_id":"c","name":"f","arguments":"{}"}`),
		json.RawMessage(`{"id":"fco","type":"function_call_output","call_id":"c","output":"z"}`),
		json.RawMessage(`{"id":"rs","type":"reasoning","summary":[]}`),
	}
	page, err := responses.Page(items, "asc", "", 20)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"content":[{"text":"hi","type":"input_text"}],"id":"m1","role":"user","status":"completed","type":"message"}`,
		`{"content":[{"annotations":[],"logprobs":[],"text":"hello","type":"output_text"}],"id":"m2","role":"assistant","status":"completed","type":"message"}`,
		`{"content":[{"annotations":[],"logprobs":[],"text":"x","type":"output_text"}],"id":"m3","role":"assistant","status":"incomplete","type":"message"}`,
		`{"content":[{"text":"y","type":"input_text"}],"id":"m4","role":"user","status":"completed","type":"message"}`,
		`{"arguments":"{}","call_id":"c","id":"fc","name":"f","status":"completed","type":"function_call"}`,
		`{"call_id":"c","id":"fco","output":"z","status":"completed","type":"function_call_output"}`,
		`{"id":"rs","type":"reasoning","summary":[]}`,
	}
	for i, b := range page.Data {
		if string(b) != want[i] {
			t.Errorf("item %d: %s, want %s", i, b, want[i])
		}
	}
	// The stored items themselves are unchanged (they are sent back as input).
	if string(items[0]) != `{"id":"m1","role":"user","content":"hi"}` {
		t.Fatalf("stored item changed: %s", items[0])
	}
}

func mustParse(t *testing.T, body string) *responses.Request {
	t.Helper()
	r, err := responses.ParseRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return r
}
