package gemini

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers/sse"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
)

// translator turns streamGenerateContent events (each a whole
// GenerateContentResponse) into chunks. Gemini repeats a cumulative
// usageMetadata on its events and has no end marker: the stream ends with
// the body, after an event with a finishReason, and the usage chunk is
// delivered then with the last usage seen. The finishReason becomes a chunk
// of its own after the event's content, as OpenAI sends it.
type translator struct {
	id       string
	model    string
	created  int64
	started  bool
	finished bool
	calls    int
	usage    *usageMetadata
	searches int // grounding queries seen (the most any event listed)
}

func newTranslator(model string) *translator {
	return &translator{id: upstream.NewID("gen-"), model: model, created: time.Now().Unix()}
}

func (t *translator) Event(ev sse.Event) ([]*chat.Chunk, bool, error) {
	var r wireResponse
	if err := json.Unmarshal(ev.Data, &r); err != nil {
		return nil, false, upstream.BadResponse("stream event", err)
	}
	if r.Error != nil {
		return nil, false, r.Error.toError(0)
	}
	if r.UsageMetadata != nil {
		t.usage = r.UsageMetadata
	}
	if r.ModelVersion != "" {
		t.model = r.ModelVersion
	}

	var d chat.Delta
	var finish *string
	if !t.started {
		d.Role = chat.RoleAssistant
		t.started = true
	}
	if len(r.Candidates) > 0 {
		c := r.Candidates[0]
		var text, thought strings.Builder
		if c.Content != nil {
			for _, p := range c.Content.Parts {
				switch {
				case p.FunctionCall != nil:
					tc := toolCall(p.FunctionCall)
					tc.ExtraContent = chat.GoogleExtraContent(p.ThoughtSignature)
					tc.Index = upstream.Ptr(t.calls)
					t.calls++
					d.ToolCalls = append(d.ToolCalls, tc)
				case p.Thought:
					thought.WriteString(p.Text)
				default:
					text.WriteString(p.Text)
				}
			}
		}
		if text.Len() > 0 || d.Role != "" {
			d.Content = upstream.Ptr(text.String())
		}
		d.ReasoningContent = thought.String()
		if c.FinishReason != "" {
			finish = upstream.Ptr(finishReason(c.FinishReason, t.calls > 0))
		}
	} else if r.PromptFeedback != nil && r.PromptFeedback.BlockReason != "" {
		finish = upstream.Ptr(chat.FinishContentFilter)
	}
	var out []*chat.Chunk
	if d.Role != "" || d.Content != nil || d.ReasoningContent != "" || d.ToolCalls != nil {
		out = append(out, t.chunk(d, nil))
	}
	var grounding json.RawMessage
	if len(r.Candidates) > 0 {
		grounding = upstream.Present(r.Candidates[0].GroundingMetadata)
	}
	t.searches = max(t.searches, searchQueries(grounding))
	if grounding != nil && len(out) == 0 && finish == nil {
		out = append(out, t.chunk(chat.Delta{}, nil))
	}
	if finish != nil {
		// Gemini puts finishReason on its last content or function-call
		// event; OpenAI ends a choice with a chunk of its own, an empty delta
		// with the reason, and clients key on that (openai-go's
		// JustFinishedContent/JustFinishedToolCall, the npm client's
		// tool_calls.function.arguments.done fire only once a later chunk
		// closes the content or the call).
		t.finished = true
		out = append(out, t.chunk(chat.Delta{}, finish))
	}
	if grounding != nil {
		out[0].GroundingMetadata = grounding
	}
	return out, false, nil // nil for a usage-only event
}

func (t *translator) chunk(d chat.Delta, finish *string) *chat.Chunk {
	return &chat.Chunk{ID: t.id, Object: chat.ObjectChunk, Created: t.created, Model: t.model,
		Choices: []chat.ChunkChoice{{Delta: d, FinishReason: finish}}}
}

// End accepts the end of the body once a finishReason was seen; before that
// the stream was cut.
func (t *translator) End() ([]*chat.Chunk, error) {
	if !t.finished {
		return nil, upstream.Cut()
	}
	u := t.Usage()
	if u == nil {
		return nil, nil
	}
	c := &chat.Chunk{ID: t.id, Object: chat.ObjectChunk, Created: t.created, Model: t.model, Usage: u}
	return []*chat.Chunk{c}, nil
}

// Usage is the latest usageMetadata seen, mapped as the usage chunk is.
// Gemini sends promptTokenCount from the first event on, so a cut stream
// still has its prompt count.
func (t *translator) Usage() *chat.Usage {
	if t.usage == nil {
		return nil
	}
	u := t.usage.toChat()
	withSearches(u, t.searches)
	return u
}
