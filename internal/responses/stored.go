package responses

import (
	"encoding/json"
	"fmt"

	"github.com/beaver-gateway/beaver/internal/ids"
)

// Stored responses (store true): the API keeps each answered turn — its own
// input items and the Response object — and rebuilds a conversation from
// them when a request names previous_response_id. The helpers here are the
// translation; where rows live and who may read them is the API's.

// Turn is one stored turn of a chain: its own input items, and the
// Response object answered (JSON), whose output items are its answer.
type Turn struct {
	Input    []json.RawMessage
	Response json.RawMessage
}

// History is the input items a chain of turns (oldest first) stands for:
// each turn's input then its output items, as a caller keeping the state
// itself would send them back. Instructions are not carried over, as on
// OpenAI: each request's own instructions apply.
func History(turns []Turn) ([]json.RawMessage, error) {
	var items []json.RawMessage
	for _, t := range turns {
		var r struct {
			ID     string            `json:"id"`
			Output []json.RawMessage `json:"output"`
		}
		if err := json.Unmarshal(t.Response, &r); err != nil {
			return nil, fmt.Errorf("responses: stored response %s: %w", r.ID, err)
		}
		items = append(items, t.Input...)
		items = append(items, r.Output...)
	}
	return items, nil
}

// WithIDs is input items as stored: each item without an id gets one (as
// OpenAI's input items have), which input_items pages by.
func WithIDs(items []json.RawMessage) []json.RawMessage {
	out := make([]json.RawMessage, len(items))
	for i, b := range items {
		out[i] = b
		var fields map[string]json.RawMessage
		if json.Unmarshal(b, &fields) != nil {
			continue // ParseRequest refused such an item: cannot happen
		}
		var id string
		if json.Unmarshal(fields["id"], &id) == nil && id != "" {
			continue
		}
		prefix := messageIDPrefix
		switch t, _ := jsonString(fields["type"]); t {
		case inputFunctionCall:
			prefix = functionIDPrefix
		case inputFunctionCallOutput:
			prefix = "fco"
		case inputReasoning:
			prefix = reasoningIDPrefix
		}
		fields["id"], _ = json.Marshal(ids.New(prefix))
		out[i], _ = json.Marshal(fields)
	}
	return out
}

func jsonString(raw json.RawMessage) (string, bool) {
	var s string
	return s, json.Unmarshal(raw, &s) == nil
}

// ItemList is the answer of GET /v1/responses/{id}/input_items: one page.
type ItemList struct {
	Object  string            `json:"object"` // "list"
	Data    []json.RawMessage `json:"data"`
	FirstID *string           `json:"first_id"`
	LastID  *string           `json:"last_id"`
	HasMore bool              `json:"has_more"`
}

// Page is one page of items as OpenAI paginates input_items: in order
// ("asc" or "desc", the default), the items after the one whose id is
// after (all when empty), at most limit of them. An after that names no
// item is an error.
func Page(items []json.RawMessage, order, after string, limit int) (*ItemList, error) {
	ordered := make([]json.RawMessage, 0, len(items))
	for i := range items {
		if order == "asc" {
			ordered = append(ordered, items[i])
		} else {
			ordered = append(ordered, items[len(items)-1-i])
		}
	}
	if after != "" {
		found := false
		for i, b := range ordered {
			if itemID(b) == after {
				ordered, found = ordered[i+1:], true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("no input item has id %q", after)
		}
	}
	list := &ItemList{Object: "list", Data: ordered}
	if len(ordered) > limit {
		list.Data, list.HasMore = ordered[:limit], true
	}
	for i, b := range list.Data {
		list.Data[i] = itemResource(b)
	}
	if n := len(list.Data); n > 0 {
		first, last := itemID(list.Data[0]), itemID(list.Data[n-1])
		list.FirstID, list.LastID = &first, &last
	}
	if list.Data == nil {
		list.Data = []json.RawMessage{}
	}
	return list, nil
}

// itemResource is an input item as OpenAI lists it (its ItemResource): a
// request may send shorthands that the listing spells out. A message gets
// its type; its text content becomes one content part (input_text, or
// output_text for the assistant's), and output_text parts get annotations
// and logprobs; a message, a function call and its output get a status.
func itemResource(b json.RawMessage) json.RawMessage {
	var fields map[string]json.RawMessage
	if json.Unmarshal(b, &fields) != nil {
		return b
	}
	typ, _ := jsonString(fields["type"])
	set := func(k string, v any) { fields[k], _ = json.Marshal(v) }
	switch typ {
	case "", inputMessage:
		set("type", inputMessage)
		role, _ := jsonString(fields["role"])
		part := "input_text"
		if role == "assistant" {
			part = "output_text"
		}
		var parts []map[string]json.RawMessage
		if text, ok := jsonString(fields["content"]); ok {
			t, _ := json.Marshal(text)
			parts = []map[string]json.RawMessage{{"type": json.RawMessage(`"` + part + `"`), "text": t}}
		} else if json.Unmarshal(fields["content"], &parts) != nil {
			return b
		}
		for _, p := range parts {
			if pt, _ := jsonString(p["type"]); pt != "output_text" {
				continue
			}
			for _, k := range []string{"annotations", "logprobs"} {
				if _, ok := p[k]; !ok {
					p[k] = json.RawMessage(`[]`)
				}
			}
		}
		set("content", parts)
	case inputFunctionCall, inputFunctionCallOutput:
	default:
		return b
	}
	if _, ok := fields["status"]; !ok {
		set("status", "completed")
	}
	return mustMarshal(fields)
}

func mustMarshal(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

func itemID(b json.RawMessage) string {
	var it struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(b, &it)
	return it.ID
}
