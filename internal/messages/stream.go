package messages

import (
	"encoding/json"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers/sse"
	"github.com/beaver-gateway/beaver/internal/reasoning"
)

// Anthropic's stream event names (each event's data has the same "type").
const (
	EventMessageStart      = "message_start"
	EventContentBlockStart = "content_block_start"
	EventPing              = "ping"
	EventContentBlockDelta = "content_block_delta"
	EventContentBlockStop  = "content_block_stop"
	EventMessageDelta      = "message_delta"
	EventMessageStop       = "message_stop"
	EventError             = "error"
)

// Content block delta types.
const (
	DeltaText      = "text_delta"
	DeltaInputJSON = "input_json_delta"
	DeltaThinking  = "thinking_delta"
	DeltaSignature = "signature_delta"
)

// Event is one server-sent event: its name and its data, a JSON object
// whose "type" is the name.
type Event struct {
	Name string
	Data any
}

// AppendSSE appends the event as Anthropic sends it:
// "event: <name>\ndata: <json>\n\n".
func (e Event) AppendSSE(buf []byte) ([]byte, error) {
	b, err := json.Marshal(e.Data)
	if err != nil {
		return buf, err
	}
	return sse.AppendEvent(buf, e.Name, b), nil
}

type messageStart struct {
	Type    string   `json:"type"`
	Message *Message `json:"message"`
}

type blockStart struct {
	Type         string `json:"type"`
	Index        int    `json:"index"`
	ContentBlock Block  `json:"content_block"`
}

type blockDelta struct {
	Type  string `json:"type"`
	Index int    `json:"index"`
	Delta delta  `json:"delta"`
}

// delta is a content block delta: exactly the fields of its type.
type delta struct {
	Type string
	Text string // text_delta's text, input_json_delta's partial_json, thinking_delta's thinking, signature_delta's signature
}

func (d delta) MarshalJSON() ([]byte, error) {
	key := "text"
	switch d.Type {
	case DeltaInputJSON:
		key = "partial_json"
	case DeltaThinking:
		key = "thinking"
	case DeltaSignature:
		key = "signature"
	}
	text, err := json.Marshal(d.Text)
	if err != nil {
		return nil, err
	}
	b := append([]byte(`{"type":"`), d.Type...) // delta types are plain identifiers
	b = append(append(append(b, `","`...), key...), `":`...)
	return append(append(b, text...), '}'), nil
}

type blockStop struct {
	Type  string `json:"type"`
	Index int    `json:"index"`
}

type messageDelta struct {
	Type  string `json:"type"`
	Delta struct {
		StopReason   string  `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
	} `json:"delta"`
	Usage Usage `json:"usage"`
}

type typeOnly struct {
	Type string `json:"type"`
}

type errorEvent struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		Code    string `json:"code,omitempty"`
	} `json:"error"`
}

// Stream translates one gateway stream (the chunks a gateway.Sink
// receives) into Anthropic's events:
//
//	message_start                       before the first content (or the end)
//	content_block_start, ping           a block opens (ping once, after the first)
//	content_block_delta                 text_delta, input_json_delta, thinking_delta, signature_delta
//	content_block_stop                  the block ends: another begins, or the choice finishes
//	message_delta                       stop_reason and usage with the charge: the usage chunk
//	message_stop                        the stream was delivered whole (Done)
//
// Text, reasoning and each tool call are blocks of their own, numbered in
// the order they open; a tool call's argument fragments are its
// input_json_delta events. A stream that fails ends with one error event
// and nothing after it, as Anthropic's does (the SDKs raise it); what it
// was charged is at GET /v1/generation.
//
// A call's Gemini thought signature comes with the call, when the
// reasoning before it may be over: it goes, as Beaver's reasoning token, in
// a signature_delta of the thinking block just before the call's tool_use
// block (the open one, or an empty one opened for it), which is where
// Anthropic puts a thinking block's signature. A signature that comes on a
// later fragment of a call already streaming is carried by a thinking
// block after the calls. Either way a client that sends the content back
// as it accumulated it gives Parse every signature again.
type Stream struct {
	id       string
	started  bool
	next     int    // index of the next block
	open     int    // index of the open block; -1 = none
	openType string // its type
	pinged   bool
	tools    map[int]toolBlock // chat tool-call index → its tool_use block
	late     reasoning.State   // signatures of calls whose block had begun
	finish   string            // the choice's finish_reason, once known
	ended    bool              // message_delta sent
	failed   bool              // error sent
}

// toolBlock is a tool call's block: its index and tool_use id.
type toolBlock struct {
	index int
	id    string
}

// NewStream starts the translation of the stream of generation genID.
func NewStream(genID string) *Stream {
	return &Stream{id: MessageID(genID), open: -1, tools: map[int]toolBlock{}}
}

// Chunk translates one chunk: a content chunk into block events, the final
// usage chunk into message_delta. The gateway's own error chunk (which
// repeats the error event) is dropped.
func (s *Stream) Chunk(c *chat.Chunk) []Event {
	if s.failed || s.ended || c.Error != nil {
		return nil
	}
	var out []Event
	if !s.started {
		s.started = true
		out = append(out, Event{EventMessageStart, messageStart{Type: EventMessageStart, Message: &Message{
			ID: s.id, Type: "message", Role: chat.RoleAssistant, Model: c.Model, Content: []Block{}}}})
	}
	if len(c.Choices) == 0 {
		if c.Usage != nil {
			out = s.endContent(out)
			md := messageDelta{Type: EventMessageDelta, Usage: FromUsage(c.Usage)}
			md.Delta.StopReason = StopReason(s.finish, len(s.tools) > 0)
			s.ended = true
			out = append(out, Event{EventMessageDelta, md})
		}
		return out
	}
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Index != 0 {
			continue // one message per request: n is never sent on this surface
		}
		d := &ch.Delta
		if d.ReasoningContent != "" {
			out = s.text(out, BlockThinking, DeltaThinking, d.ReasoningContent)
		}
		if d.Content != nil && *d.Content != "" {
			out = s.text(out, BlockText, DeltaText, *d.Content)
		}
		if d.Refusal != nil && *d.Refusal != "" {
			out = s.text(out, BlockText, DeltaText, *d.Refusal)
		}
		for k, tc := range d.ToolCalls {
			out = s.toolCall(out, k, &tc)
		}
		if ch.FinishReason != nil {
			out = s.endContent(out)
			s.finish = *ch.FinishReason
		}
	}
	return out
}

// Error translates the gateway's in-stream error into Anthropic's error
// event; the stream says nothing more after it.
func (s *Stream) Error(e *chat.ErrorEvent) []Event {
	if s.failed {
		return nil
	}
	s.failed = true
	ev := errorEvent{Type: EventError}
	ev.Error.Type, ev.Error.Message, ev.Error.Code = streamErrorType(e.Error.Code), e.Error.Message, e.Error.Code
	return []Event{{EventError, ev}}
}

// Done ends a stream delivered whole: message_stop.
func (s *Stream) Done() []Event {
	if s.failed || !s.ended {
		return nil
	}
	return []Event{{EventMessageStop, typeOnly{Type: EventMessageStop}}}
}

// text adds a text or thinking fragment, in the open block of that type or
// a new one.
func (s *Stream) text(out []Event, blockType, deltaType, text string) []Event {
	if s.open < 0 || s.openType != blockType {
		out = s.closeBlock(out)
		out = s.startBlock(out, Block{Type: blockType})
	}
	return append(out, Event{EventContentBlockDelta, blockDelta{Type: EventContentBlockDelta, Index: s.open,
		Delta: delta{Type: deltaType, Text: text}}})
}

// toolCall adds a tool-call fragment: the first opens a tool_use block
// (id and name), after the thinking block that carries its signature if
// it has one; every one with arguments adds an input_json_delta to it.
func (s *Stream) toolCall(out []Event, pos int, tc *chat.ToolCall) []Event {
	idx := pos
	if tc.Index != nil {
		idx = *tc.Index
	}
	block, ok := s.tools[idx]
	if !ok {
		block.id = tc.ID
		if block.id == "" {
			block.id = toolUseID()
		}
		out = s.sign(out, reasoning.Of(block.id, tc.ThoughtSignature()))
		out = s.closeBlock(out)
		out = s.startBlock(out, Block{Type: BlockToolUse, ID: block.id, Name: tc.Function.Name})
		block.index = s.open
		s.tools[idx] = block
	} else {
		s.late.Merge(reasoning.Of(block.id, tc.ThoughtSignature()))
	}
	if tc.Function.Arguments == "" {
		return out
	}
	return append(out, Event{EventContentBlockDelta, blockDelta{Type: EventContentBlockDelta, Index: block.index,
		Delta: delta{Type: DeltaInputJSON, Text: tc.Function.Arguments}}})
}

// sign ends the thinking before a block with state as its signature: the
// open thinking block's, or a new, empty one's. Nothing to carry, nothing
// sent.
func (s *Stream) sign(out []Event, state reasoning.State) []Event {
	token := state.Token()
	if token == "" {
		return out
	}
	if s.openType != BlockThinking {
		out = s.closeBlock(out)
		out = s.startBlock(out, Block{Type: BlockThinking})
	}
	out = append(out, Event{EventContentBlockDelta, blockDelta{Type: EventContentBlockDelta, Index: s.open,
		Delta: delta{Type: DeltaSignature, Text: token}}})
	return s.closeBlock(out)
}

// endContent closes the last block once the choice is over, after a
// thinking block for the signatures that came late, if any.
func (s *Stream) endContent(out []Event) []Event {
	out = s.sign(out, s.late)
	s.late = reasoning.State{}
	return s.closeBlock(out)
}

func (s *Stream) startBlock(out []Event, b Block) []Event {
	s.open, s.openType = s.next, b.Type
	s.next++
	out = append(out, Event{EventContentBlockStart, blockStart{Type: EventContentBlockStart, Index: s.open, ContentBlock: b}})
	if !s.pinged {
		s.pinged = true
		out = append(out, Event{EventPing, typeOnly{Type: EventPing}})
	}
	return out
}

func (s *Stream) closeBlock(out []Event) []Event {
	if s.open < 0 {
		return out
	}
	out = append(out, Event{EventContentBlockStop, blockStop{Type: EventContentBlockStop, Index: s.open}})
	s.open, s.openType = -1, ""
	return out
}
