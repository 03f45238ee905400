package anthropic

import (
	"encoding/json"
	"time"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers/sse"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
)

// streamEvent is any Messages API stream event; which fields are set
// depends on Type.
type streamEvent struct {
	Type         string       `json:"type"`
	Message      *wireMessage `json:"message"`       // message_start
	Index        int          `json:"index"`         // content_block_*
	ContentBlock *block       `json:"content_block"` // content_block_start
	Delta        *struct {
		Type        string `json:"type"` // text_delta, input_json_delta, thinking_delta, signature_delta
		Text        string `json:"text"`
		PartialJSON string `json:"partial_json"`
		Thinking    string `json:"thinking"`
		StopReason  string `json:"stop_reason"` // message_delta
	} `json:"delta"`
	Usage *wireUsage  `json:"usage"` // message_delta
	Error *wireErrObj `json:"error"` // error
}

// translator turns Messages API events into OpenAI chunks:
// message_start → the first chunk (role assistant), text/thinking/tool
// deltas → content/reasoning_content/tool_calls deltas, message_delta → the
// finish chunk, message_stop → the usage chunk (input usage from
// message_start merged with message_delta's cumulative counts) and the end.
type translator struct {
	id      string
	model   string
	created int64
	usage   *wireUsage
	tools   map[int]int // content block index → tool call index
}

func newTranslator() *translator {
	return &translator{created: time.Now().Unix(), tools: map[int]int{}}
}

func (t *translator) chunk(d chat.Delta, finish *string) *chat.Chunk {
	return &chat.Chunk{ID: t.id, Object: chat.ObjectChunk, Created: t.created, Model: t.model,
		Choices: []chat.ChunkChoice{{Delta: d, FinishReason: finish}}}
}

func one(c *chat.Chunk) []*chat.Chunk { return []*chat.Chunk{c} }

func (t *translator) Event(ev sse.Event) ([]*chat.Chunk, bool, error) {
	var e streamEvent
	if err := json.Unmarshal(ev.Data, &e); err != nil {
		return nil, false, upstream.BadResponse("stream event", err)
	}
	switch e.Type {
	case "message_start":
		if m := e.Message; m != nil {
			t.id, t.model = m.ID, m.Model
			if m.Usage != nil {
				t.usage = &wireUsage{}
				t.usage.merge(m.Usage)
			}
		}
		return one(t.chunk(chat.Delta{Role: chat.RoleAssistant, Content: upstream.Ptr("")}, nil)), false, nil

	case "content_block_start":
		b := e.ContentBlock
		if b == nil {
			return nil, false, nil
		}
		switch b.Type {
		case "tool_use":
			idx := len(t.tools)
			t.tools[e.Index] = idx
			return one(t.chunk(chat.Delta{ToolCalls: []chat.ToolCall{{
				Index: upstream.Ptr(idx), ID: b.ID, Type: "function",
				Function: chat.FunctionCall{Name: b.Name, Arguments: ""},
			}}}, nil)), false, nil
		case "text":
			if b.Text != "" {
				return one(t.chunk(chat.Delta{Content: upstream.Ptr(b.Text)}, nil)), false, nil
			}
		case "thinking":
			if b.Thinking != "" {
				return one(t.chunk(chat.Delta{ReasoningContent: b.Thinking}, nil)), false, nil
			}
		}
		return nil, false, nil

	case "content_block_delta":
		d := e.Delta
		if d == nil {
			return nil, false, nil
		}
		switch d.Type {
		case "text_delta":
			return one(t.chunk(chat.Delta{Content: upstream.Ptr(d.Text)}, nil)), false, nil
		case "thinking_delta":
			return one(t.chunk(chat.Delta{ReasoningContent: d.Thinking}, nil)), false, nil
		case "input_json_delta":
			idx, ok := t.tools[e.Index]
			if !ok || d.PartialJSON == "" {
				return nil, false, nil
			}
			return one(t.chunk(chat.Delta{ToolCalls: []chat.ToolCall{{
				Index: upstream.Ptr(idx), Function: chat.FunctionCall{Arguments: d.PartialJSON},
			}}}, nil)), false, nil
		}
		return nil, false, nil // signature_delta and future delta types carry no text

	case "message_delta":
		if e.Usage != nil {
			if t.usage == nil {
				t.usage = &wireUsage{}
			}
			t.usage.merge(e.Usage)
		}
		if e.Delta != nil && e.Delta.StopReason != "" {
			return one(t.chunk(chat.Delta{}, upstream.Ptr(finishReason(e.Delta.StopReason)))), false, nil
		}
		return nil, false, nil

	case "message_stop":
		u := t.Usage()
		if u == nil {
			return nil, true, nil
		}
		c := &chat.Chunk{ID: t.id, Object: chat.ObjectChunk, Created: t.created, Model: t.model, Usage: u}
		return one(c), true, nil

	case "error":
		if e.Error == nil {
			return nil, false, &upstream.Error{Status: 500, Message: "upstream stream error"}
		}
		return nil, false, e.Error.toError(0)
	}
	return nil, false, nil // ping, content_block_stop, and event types added later
}

func (t *translator) End() ([]*chat.Chunk, error) { return nil, upstream.Cut() }

// Usage is the usage of the events so far, mapped as the usage chunk is:
// from message_start on, its input and cache tokens are the prompt, and the
// completion is the latest output_tokens (1 in message_start, the running
// count in message_delta).
func (t *translator) Usage() *chat.Usage {
	if t.usage == nil {
		return nil
	}
	return t.usage.toChat()
}
