package openairesp

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers/sse"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
	"github.com/beaver-gateway/beaver/internal/responses"
)

// wireEvent is one Responses stream event: what Beaver reads of any type.
type wireEvent struct {
	Type        string        `json:"type"`
	Response    *wireResponse `json:"response"`     // response.created … response.completed
	Item        *wireItem     `json:"item"`         // response.output_item.added / .done
	OutputIndex int           `json:"output_index"` // of the item a delta or item event is about
	Delta       string        `json:"delta"`
	Usage       *wireUsage    `json:"usage"` // Perplexity's response.reasoning.search_results may carry one
	Error       *wireError    `json:"error"` // response.failed (Perplexity), error
	// OpenAI's error event has its fields at the top level.
	Message string          `json:"message"`
	Code    json.RawMessage `json:"code"`
}

// translator turns a Responses event stream into chat chunks, per the
// providers.Stream contract: content, reasoning and tool-call deltas as they
// arrive, one finish chunk, then one usage chunk without choices.
type translator struct {
	tools   map[string]bool // the request's function names (functionNames)
	id      string
	model   string
	created int64
	opened  bool // a chunk went out (the first carries the role)
	// The client's function calls by output_index: their index among the
	// tool calls and the arguments passed on so far; and by call_id.
	calls   map[int]*call
	callIDs map[string]bool
	// The output_text passed on per message item (output_index), and the
	// items whose final text was read (by output_index and item id): text
	// that came only whole (in output_item.done or the final response) is
	// passed on once.
	text  map[int]*strings.Builder
	whole map[int]bool
	read  map[string]bool
	src   sources
	// searched: search results came as their own output items (then the
	// final response's copies are not added again).
	searched bool
	sent     chat.Extras // as last passed on
	seen     int         // src.changes when they were
	usage    *chat.Usage // latest reported, in chat's convention; only copies are handed out
	// served counts the provider's own billed tool calls as they stream by
	// (Perplexity's search_web calls), by call_id: a stream cut before its
	// usage still pays for the searches that ran.
	served map[string]string
}

type call struct {
	index int
	args  string
}

func newTranslator(tools map[string]bool) *translator {
	return &translator{tools: tools, created: time.Now().Unix(), calls: map[int]*call{}, callIDs: map[string]bool{},
		text: map[int]*strings.Builder{}, whole: map[int]bool{}, read: map[string]bool{}}
}

// Stream event types Beaver reads; the others (progress, queries, done
// events that repeat what came as deltas) are ignored.
const (
	evCreated        = "response.created"
	evInProgress     = "response.in_progress"
	evTextDelta      = "response.output_text.delta"
	evRefusalDelta   = "response.refusal.delta"
	evSummaryDelta   = "response.reasoning_summary_text.delta"
	evReasoningDelta = "response.reasoning_text.delta"
	evItemAdded      = "response.output_item.added"
	evItemDone       = "response.output_item.done"
	evArgumentsDelta = "response.function_call_arguments.delta"
	evSearchResults  = "response.reasoning.search_results" // Perplexity
	evCompleted      = "response.completed"
	evIncomplete     = "response.incomplete"
	evFailed         = "response.failed"
	evCancelled      = "response.cancelled"
	evError          = "error"
)

// Event translates one event. The stream ends at its terminal event
// (completed, incomplete, failed, cancelled, error): there is no [DONE].
func (t *translator) Event(ev sse.Event) ([]*chat.Chunk, bool, error) {
	var e wireEvent
	if err := json.Unmarshal(ev.Data, &e); err != nil {
		return nil, false, upstream.BadResponse("stream event", err)
	}
	switch e.Type {
	case evCreated, evInProgress:
		t.meta(e.Response)
	case evTextDelta:
		t.textOf(e.OutputIndex).WriteString(e.Delta)
		return t.delta(chat.Delta{Content: upstream.Ptr(e.Delta)}), false, nil
	case evRefusalDelta:
		return t.delta(chat.Delta{Refusal: upstream.Ptr(e.Delta)}), false, nil
	case evSummaryDelta, evReasoningDelta:
		return t.delta(chat.Delta{ReasoningContent: e.Delta}), false, nil
	case evItemAdded:
		if e.Item != nil && e.Item.Type == itemFunctionCall {
			return t.callStart(e.OutputIndex, e.Item), false, nil
		}
	case evArgumentsDelta:
		if c := t.calls[e.OutputIndex]; c != nil && e.Delta != "" {
			c.args += e.Delta
			return t.delta(chat.Delta{ToolCalls: []chat.ToolCall{{Index: upstream.Ptr(c.index),
				Function: chat.FunctionCall{Arguments: e.Delta}}}}), false, nil
		}
	case evItemDone:
		if e.Item != nil {
			return t.itemDone(e.OutputIndex, e.Item), false, nil
		}
	case evSearchResults:
		if u := e.Usage.toChat(nil); u != nil {
			t.usage = u
		}
	case evCompleted, evIncomplete:
		return t.end(e.Type, e.Response), true, nil
	case evFailed, evCancelled, evError:
		return nil, false, t.failure(&e)
	}
	return nil, false, nil
}

// meta keeps the response's id, model and creation time for the chunks.
func (t *translator) meta(r *wireResponse) {
	if r == nil {
		return
	}
	if r.ID != "" {
		t.id = r.ID
	}
	if r.Model != "" {
		t.model = r.Model
	}
	if r.CreatedAt != 0 {
		t.created = r.CreatedAt
	}
}

func (t *translator) textOf(index int) *strings.Builder {
	b := t.text[index]
	if b == nil {
		b = &strings.Builder{}
		t.text[index] = b
	}
	return b
}

// delta is a chunk carrying d for choice 0; the first chunk carries the
// role, and any chunk the sources that are new since the last one.
func (t *translator) delta(d chat.Delta) []*chat.Chunk {
	return []*chat.Chunk{t.chunk(d, nil)}
}

func (t *translator) chunk(d chat.Delta, finish *string) *chat.Chunk {
	if !t.opened {
		d.Role, t.opened = chat.RoleAssistant, true
	}
	return &chat.Chunk{ID: t.id, Object: chat.ObjectChunk, Created: t.created, Model: t.model,
		Choices: []chat.ChunkChoice{{Index: 0, Delta: d, FinishReason: finish}}, Extras: t.changed()}
}

// changed returns the extras that differ from what was passed on already,
// and remembers them.
func (t *translator) changed() chat.Extras {
	if t.src.changes == t.seen {
		return chat.Extras{}
	}
	t.seen = t.src.changes
	x := t.src.extras()
	var out chat.Extras
	if x.Citations != nil && string(x.Citations) != string(t.sent.Citations) {
		out.Citations, t.sent.Citations = x.Citations, x.Citations
	}
	if x.SearchResults != nil && string(x.SearchResults) != string(t.sent.SearchResults) {
		out.SearchResults, t.sent.SearchResults = x.SearchResults, x.SearchResults
	}
	return out
}

// callStart passes on a function call the client is to run, with the
// arguments it came with (Perplexity sends them whole; OpenAI streams them
// as argument deltas after this).
func (t *translator) callStart(index int, it *wireItem) []*chat.Chunk {
	if tool, billed := billedTools[it.Name]; billed && !t.tools[it.Name] && it.CallID != "" {
		if t.served == nil {
			t.served = map[string]string{}
		}
		t.served[it.CallID] = tool
	}
	if !t.tools[it.Name] || t.calls[index] != nil || t.callIDs[it.CallID] {
		return nil // the provider's own tool call, or one passed on already
	}
	c := &call{index: len(t.callIDs), args: it.Arguments}
	t.calls[index], t.callIDs[it.CallID] = c, true
	return t.delta(chat.Delta{ToolCalls: []chat.ToolCall{it.toolCall(upstream.Ptr(c.index))}})
}

// itemDone completes an output item: a function call's or message's tail
// that came only in the finished item, and a search's results, which go
// out with the next chunk.
func (t *translator) itemDone(index int, it *wireItem) []*chat.Chunk {
	switch it.Type {
	case itemFunctionCall:
		c := t.calls[index]
		if c == nil {
			return t.callStart(index, it)
		}
		if rest, ok := strings.CutPrefix(it.Arguments, c.args); ok && rest != "" {
			c.args = it.Arguments
			return t.delta(chat.Delta{ToolCalls: []chat.ToolCall{{Index: upstream.Ptr(c.index),
				Function: chat.FunctionCall{Arguments: rest}}}})
		}
	case itemMessage:
		t.whole[index] = true
		if it.ID != "" {
			t.read[it.ID] = true
		}
		for _, p := range it.Content {
			t.src.addAnnotations(p)
		}
		return t.textTail(index, it.outputText())
	case itemSearchResults:
		t.searched = true
		t.src.addResults(it.Results)
	}
	return nil
}

// textTail passes on the part of a message's final text that its deltas
// did not bring.
func (t *translator) textTail(index int, full string) []*chat.Chunk {
	b := t.textOf(index)
	rest, ok := strings.CutPrefix(full, b.String())
	if !ok || rest == "" {
		return nil
	}
	b.WriteString(rest)
	return t.delta(chat.Delta{Content: upstream.Ptr(rest)})
}

// end is the stream's last chunks, from its terminal event: what only the
// final response holds, the finish chunk (carrying the sources not passed
// on yet), then the usage chunk.
func (t *translator) end(typ string, r *wireResponse) []*chat.Chunk {
	var out []*chat.Chunk
	status := ""
	if r != nil {
		t.meta(r)
		status = r.Status
		for i := range r.Output {
			it := &r.Output[i]
			switch {
			case it.Type == itemMessage && !t.read[it.ID] && (it.ID != "" || !t.whole[i]):
				out = append(out, t.itemDone(i, it)...)
			case it.Type == itemFunctionCall && !t.callIDs[it.CallID]:
				out = append(out, t.callStart(i, it)...)
			case it.Type == itemSearchResults && !t.searched:
				t.src.addResults(it.Results)
			}
		}
		if u := r.Usage.toChat(r.Output); u != nil {
			t.usage = u
		}
	} else {
		r = &wireResponse{}
	}
	if typ == evIncomplete {
		status = responses.StatusIncomplete
	}
	finish := r.finishReason(status, len(t.callIDs) > 0)
	out = append(out, t.chunk(chat.Delta{}, &finish))
	if t.usage != nil {
		out = append(out, &chat.Chunk{ID: t.id, Object: chat.ObjectChunk, Created: t.created, Model: t.model,
			Usage: t.usage.Clone()})
	}
	return out
}

// failure is the *upstream.Error of a failed, cancelled or error event;
// usage that came with it is kept for Usage.
func (t *translator) failure(e *wireEvent) error {
	if r := e.Response; r != nil {
		if u := r.Usage.toChat(r.Output); u != nil {
			t.usage = u
		}
		if e.Error == nil {
			e.Error = r.Error
		}
	}
	switch {
	case e.Error != nil && e.Error.Message != "":
		return e.Error.toError()
	case e.Message != "":
		return (&wireError{Message: e.Message, Code: e.Code}).toError()
	case e.Type == evCancelled:
		return &upstream.Error{Status: http.StatusBadGateway, Message: "the upstream cancelled the response"}
	}
	return &upstream.Error{Status: http.StatusBadGateway, Message: "the upstream response failed (" + e.Type + ")"}
}

// End is called when the body ends before a terminal event: a cut.
func (t *translator) End() ([]*chat.Chunk, error) { return nil, upstream.Cut() }

// Usage is the latest usage reported: the final one after a normal end;
// none after a cut, unless an event before it carried some.
func (t *translator) Usage() *chat.Usage {
	u := t.usage.Clone()
	if len(t.served) == 0 || (u != nil && len(u.ServerToolUse) > 0) {
		return u // the provider's own count, once it reported one
	}
	if u == nil {
		u = &chat.Usage{}
	}
	u.ServerToolUse = map[string]int{}
	for _, tool := range t.served {
		u.ServerToolUse[tool]++
	}
	return u
}
