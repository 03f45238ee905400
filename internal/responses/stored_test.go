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

func mustParse(t *testing.T, body string) *responses.Request {
	t.Helper()
	r, err := responses.ParseRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return r
}
