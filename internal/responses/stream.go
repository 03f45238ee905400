package responses

import (
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/reasoning"
)

// Stream event types, as OpenAI names them.
const (
	EventCreated        = "response.created"
	EventInProgress     = "response.in_progress"
	EventCompleted      = "response.completed"
	EventIncomplete     = "response.incomplete"
	EventFailed         = "response.failed"
	EventItemAdded      = "response.output_item.added"
	EventItemDone       = "response.output_item.done"
	EventPartAdded      = "response.content_part.added"
	EventPartDone       = "response.content_part.done"
	EventTextDelta      = "response.output_text.delta"
	EventTextDone       = "response.output_text.done"
	EventRefusalDelta   = "response.refusal.delta"
	EventRefusalDone    = "response.refusal.done"
	EventArgumentsDelta = "response.function_call_arguments.delta"
	EventArgumentsDone  = "response.function_call_arguments.done"
	EventError          = "error"

	EventSummaryPartAdded = "response.reasoning_summary_part.added"
	EventSummaryPartDone  = "response.reasoning_summary_part.done"
	EventSummaryTextDelta = "response.reasoning_summary_text.delta"
	EventSummaryTextDone  = "response.reasoning_summary_text.done"
)

const (
	callIDPrefix = "call" // for a tool call the upstream gave no id
	noOpenItem   = -1
)

// EventWriter writes a stream's events: the HTTP layer's SSE writer.
type EventWriter interface {
	// Open starts the answer (status 200, event-stream headers) of the
	// response with this id.
	Open(responseID string)
	// Event writes one event named typ whose data is v marshalled (before
	// Event returns); false means the client is gone.
	Event(typ string, v any) bool
}

// Stream turns the gateway's chat stream into OpenAI's Responses streaming
// events; it is the gateway.Sink of a stream: true request.
//
// The events are OpenAI's, in its order, each with its type and a
// sequence_number counting from 0: response.created and
// response.in_progress, then for each output item
// response.output_item.added, its content (a message's
// response.content_part.added, response.output_text.delta…,
// response.output_text.done, response.content_part.done — refusals alike;
// a reasoning item's response.reasoning_summary_part.added,
// response.reasoning_summary_text.delta…, .done and
// response.reasoning_summary_part.done; a function call's
// response.function_call_arguments.delta… and .done) and
// response.output_item.done; one item is finished before the next starts.
// A function call whose provider needs something back with it (Gemini 3's
// thought signature) comes after a reasoning item whose encrypted_content
// carries it (see stream_reasoning.go).
// The stream ends with response.completed (or response.incomplete when the
// output hit max_output_tokens or a content filter) carrying the whole
// response and its usage with the charge, written once the charge is
// committed. A stream that fails midway writes OpenAI's error event, then
// response.failed with what was delivered and its charge.
type Stream struct {
	req    *Request
	w      EventWriter
	genID  string
	resp   *Response
	seq    int
	open   int             // index in resp.Output of the item being streamed, or noOpenItem
	calls  map[int]int     // chat tool call index → index in resp.Output
	late   reasoning.State // signatures of calls whose item had begun
	finish string          // the chat finish reason
	failed *apierr.Error

	opened, started, ended, gone bool

	// OnFinal, when set, is called with the Response of the final event
	// (completed, incomplete, or failed with its charge) just before that
	// event is written: the API stores it there, so that a client that
	// reads the event can already GET the response.
	OnFinal func(*Response)
}

// NewStream returns the sink of one stream: true request, writing to w.
func NewStream(req *Request, w EventWriter) *Stream {
	return &Stream{req: req, w: w, open: noOpenItem, calls: map[int]int{}}
}

// Open implements gateway.Sink: the upstream accepted the request.
func (s *Stream) Open(generationID string) {
	s.genID, s.opened = generationID, true
	s.w.Open(ResponseID(generationID))
}

// Send implements gateway.Sink: one chat chunk, or the final usage chunk
// that carries the charge.
func (s *Stream) Send(c *chat.Chunk) bool {
	if !s.start(c.Model, c.Created) {
		return false
	}
	if c.Error != nil {
		return true // the gateway's final chunk of a failed stream: the error event was written
	}
	if len(c.Choices) == 0 {
		if c.Usage != nil {
			return s.end(c.Usage)
		}
		return true
	}
	ch := &c.Choices[0] // n is never sent: one choice
	d := &ch.Delta
	ok := true
	if d.ReasoningContent != "" {
		ok = s.reasoningDelta(d.ReasoningContent)
	}
	if ok && d.Content != nil && *d.Content != "" {
		ok = s.delta(PartOutputText, *d.Content)
	}
	if ok && d.Refusal != nil && *d.Refusal != "" {
		ok = s.delta(PartRefusal, *d.Refusal)
	}
	for i := 0; ok && i < len(d.ToolCalls); i++ {
		ok = s.toolCall(&d.ToolCalls[i])
	}
	if ch.FinishReason != nil {
		s.finish = *ch.FinishReason
	}
	return ok
}

// SendError implements gateway.Sink: the stream failed midway. OpenAI's
// error event is written now; response.failed follows with the charge.
func (s *Stream) SendError(e *chat.ErrorEvent) bool {
	if !s.start("", 0) {
		return false
	}
	s.failed = &apierr.Error{Type: e.Error.Type, Code: e.Error.Code, Message: e.Error.Message}
	if e.Error.Param != nil {
		s.failed.Param = *e.Error.Param
	}
	return s.emit(EventError, &errorEvent{Code: e.Error.Code, Message: e.Error.Message, Param: e.Error.Param})
}

// Done implements gateway.Sink. A Responses stream has no end marker: its
// last event is response.completed (or .incomplete, .failed).
func (s *Stream) Done() {}

// Close ends a stream the gateway left without its final event (its charge
// could not be committed): response.failed, without usage. It does nothing
// for a stream that ended, never opened, or whose client left.
func (s *Stream) Close() {
	if !s.opened || s.ended || s.gone {
		return
	}
	if !s.start("", 0) {
		return
	}
	if s.failed == nil {
		s.failed = apierr.Internal()
		if !s.emit(EventError, &errorEvent{Code: s.failed.Code, Message: s.failed.Message}) {
			return
		}
	}
	s.ended = true
	s.resp.finish("", s.failed, nil)
	s.emit(EventFailed, &responseEvent{Response: s.resp})
}

// start writes response.created and response.in_progress before the first
// content: the chunks say which model answered (model "" = the one asked
// for, when the stream fails before any chunk).
func (s *Stream) start(model string, created int64) bool {
	if s.gone {
		return false
	}
	if s.started {
		return true
	}
	s.started = true
	if model == "" {
		model = s.req.Chat.Model
	}
	if created == 0 {
		created = time.Now().Unix()
	}
	s.resp = s.req.newResponse(s.genID, model, created)
	return s.emit(EventCreated, &responseEvent{Response: s.resp}) &&
		s.emit(EventInProgress, &responseEvent{Response: s.resp})
}

// end finishes the last item and writes the final event with usage u.
func (s *Stream) end(u *chat.Usage) bool {
	s.ended = true
	if s.failed != nil {
		s.resp.finish("", s.failed, u) // what was delivered stays, incomplete
		s.final()
		return s.emit(EventFailed, &responseEvent{Response: s.resp})
	}
	status := StatusCompleted
	if s.finish == chat.FinishLength || s.finish == chat.FinishContentFilter {
		status = StatusIncomplete
	}
	if !s.sign(s.late) || !s.closeItem(status) {
		return false
	}
	s.resp.finish(s.finish, nil, u)
	typ := EventCompleted
	if s.resp.Status == StatusIncomplete {
		typ = EventIncomplete
	}
	s.final()
	return s.emit(typ, &responseEvent{Response: s.resp})
}

// final hands the finished, charged Response to OnFinal.
func (s *Stream) final() {
	if s.OnFinal != nil {
		s.OnFinal(s.resp)
	}
}

// item returns the open item if it has this type.
func (s *Stream) item(typ string) *Item {
	if s.open == noOpenItem || s.resp.Output[s.open].Type != typ {
		return nil
	}
	return &s.resp.Output[s.open]
}

// openItem finishes the open item and starts it.
func (s *Stream) openItem(it Item) bool {
	if !s.closeItem(StatusCompleted) {
		return false
	}
	it.Status = StatusInProgress
	s.resp.Output = append(s.resp.Output, it)
	s.open = len(s.resp.Output) - 1
	return s.emit(EventItemAdded, &itemEvent{OutputIndex: s.open, Item: it})
}

// delta adds text to the open message, in a part of partType (output_text
// or refusal), starting either when needed.
func (s *Stream) delta(partType, text string) bool {
	it := s.item(ItemMessage)
	if it == nil {
		if !s.openItem(Item{Type: ItemMessage, ID: ids.New(messageIDPrefix)}) {
			return false
		}
		it = &s.resp.Output[s.open]
	}
	if n := len(it.Content); n == 0 || it.Content[n-1].Type != partType {
		if n > 0 && !s.closePart(it) {
			return false
		}
		it.Content = append(it.Content, Part{Type: partType})
		if !s.emit(EventPartAdded, &partEvent{ItemID: it.ID, OutputIndex: s.open, ContentIndex: len(it.Content) - 1,
			Part: Part{Type: partType}}) {
			return false
		}
	}
	ci := len(it.Content) - 1
	it.Content[ci].Text += text
	loc := at{ItemID: it.ID, OutputIndex: s.open, ContentIndex: ci}
	if partType == PartRefusal {
		return s.emit(EventRefusalDelta, &refusalDeltaEvent{at: loc, Delta: text})
	}
	return s.emit(EventTextDelta, &textDeltaEvent{at: loc, Delta: text, Logprobs: noLogprobs})
}

// toolCall adds a chat tool-call fragment: the first of an index starts a
// function_call item (after the reasoning item that carries its signature,
// if it has one), the others add to its arguments.
//
// Every adapter sends one call's fragments together, so each item is whole
// before the next starts. Should a fragment of an earlier, finished call
// arrive, it is kept in the final response's output but cannot be streamed.
func (s *Stream) toolCall(tc *chat.ToolCall) bool {
	var (
		idx, out int
		ok       bool
	)
	if tc.Index != nil {
		idx = *tc.Index
		out, ok = s.calls[idx]
	} else if it := s.item(ItemFunctionCall); it != nil && (tc.ID == "" || tc.ID == it.CallID) {
		out, ok = s.open, true // without an index, a fragment continues the call being streamed...
	} else {
		idx = -1 - len(s.calls) // ...unless it starts one
	}
	if !ok {
		callID := tc.ID
		if callID == "" {
			callID = ids.New(callIDPrefix)
		}
		if !s.sign(reasoning.Of(callID, tc.ThoughtSignature())) ||
			!s.openItem(Item{Type: ItemFunctionCall, ID: ids.New(functionIDPrefix), CallID: callID, Name: tc.Function.Name}) {
			return false
		}
		out = s.open
		s.calls[idx] = out
	} else {
		s.late.Merge(reasoning.Of(s.resp.Output[out].CallID, tc.ThoughtSignature()))
	}
	it := &s.resp.Output[out]
	if it.Name == "" {
		it.Name = tc.Function.Name
	}
	if tc.Function.Arguments == "" {
		return true
	}
	it.Arguments += tc.Function.Arguments
	if out != s.open {
		return true
	}
	return s.emit(EventArgumentsDelta, &argumentsDeltaEvent{ItemID: it.ID, OutputIndex: out, Delta: tc.Function.Arguments})
}

// closePart writes the done events of the open item's last part.
func (s *Stream) closePart(it *Item) bool {
	ci := len(it.Content) - 1
	p := it.Content[ci]
	loc := at{ItemID: it.ID, OutputIndex: s.open, ContentIndex: ci}
	var ok bool
	if p.Type == PartRefusal {
		ok = s.emit(EventRefusalDone, &refusalDoneEvent{at: loc, Refusal: p.Text})
	} else {
		ok = s.emit(EventTextDone, &textDoneEvent{at: loc, Text: p.Text, Logprobs: noLogprobs})
	}
	return ok && s.emit(EventPartDone, &partEvent{ItemID: it.ID, OutputIndex: s.open, ContentIndex: ci, Part: p})
}

// closeItem writes the done events of the open item, which ends with
// status, if there is one.
func (s *Stream) closeItem(status string) bool {
	if s.open == noOpenItem {
		return true
	}
	it := &s.resp.Output[s.open]
	switch it.Type {
	case ItemFunctionCall:
		if !s.emit(EventArgumentsDone, &argumentsDoneEvent{ItemID: it.ID, OutputIndex: s.open, Name: it.Name, Arguments: it.Arguments}) {
			return false
		}
	case ItemReasoning:
		if !s.closeSummary(it) {
			return false
		}
	default:
		if len(it.Content) > 0 && !s.closePart(it) {
			return false
		}
	}
	it.Status = status
	out := s.open
	s.open = noOpenItem
	return s.emit(EventItemDone, &itemEvent{OutputIndex: out, Item: *it})
}

// emit writes one event with the next sequence number.
func (s *Stream) emit(typ string, ev event) bool {
	if s.gone {
		return false
	}
	ev.setHeader(typ, s.seq)
	s.seq++
	if !s.w.Event(typ, ev) {
		s.gone = true
		return false
	}
	return true
}

// The events' shapes.

type event interface{ setHeader(typ string, seq int) }

// header is what every event has.
type header struct {
	Type           string `json:"type"`
	SequenceNumber int    `json:"sequence_number"`
}

func (h *header) setHeader(typ string, seq int) { h.Type, h.SequenceNumber = typ, seq }

// at locates a content part.
type at struct {
	ItemID       string `json:"item_id"`
	OutputIndex  int    `json:"output_index"`
	ContentIndex int    `json:"content_index"`
}

var noLogprobs = []struct{}{}

type responseEvent struct {
	header
	Response *Response `json:"response"`
}

type itemEvent struct {
	header
	OutputIndex int  `json:"output_index"`
	Item        Item `json:"item"`
}

type partEvent struct {
	header
	ItemID       string `json:"item_id"`
	OutputIndex  int    `json:"output_index"`
	ContentIndex int    `json:"content_index"`
	Part         Part   `json:"part"`
}

type textDeltaEvent struct {
	header
	at
	Delta    string     `json:"delta"`
	Logprobs []struct{} `json:"logprobs"`
}

type textDoneEvent struct {
	header
	at
	Text     string     `json:"text"`
	Logprobs []struct{} `json:"logprobs"`
}

type refusalDeltaEvent struct {
	header
	at
	Delta string `json:"delta"`
}

type refusalDoneEvent struct {
	header
	at
	Refusal string `json:"refusal"`
}

type argumentsDeltaEvent struct {
	header
	ItemID      string `json:"item_id"`
	OutputIndex int    `json:"output_index"`
	Delta       string `json:"delta"`
}

type argumentsDoneEvent struct {
	header
	ItemID      string `json:"item_id"`
	OutputIndex int    `json:"output_index"`
	Name        string `json:"name"` // the function's: OpenAI's schema requires it
	Arguments   string `json:"arguments"`
}

// errorEvent is OpenAI's in-stream error event, with Beaver's error code;
// param is null unless a request field is at fault.
type errorEvent struct {
	header
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Param   *string `json:"param"`
}
