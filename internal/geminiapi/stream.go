package geminiapi

import (
	"sort"
	"strings"

	"github.com/beaver-gateway/beaver/internal/chat"
)

// Stream translates a gateway stream into streamGenerateContent chunks: text
// and thoughts as they come; tool calls, which chat streams in fragments,
// whole in the last chunk with the finishReason and usageMetadata (the
// gateway's usage chunk carries the charge).
type Stream struct {
	id, model string
	calls     map[int]*chat.ToolCall
	args      map[int]*strings.Builder
	finish    string
	usage     *chat.Usage
}

// NewStream starts the translation of generation id's stream.
func NewStream(id string) *Stream {
	return &Stream{id: id, calls: map[int]*chat.ToolCall{}, args: map[int]*strings.Builder{}}
}

// Chunk is the chunk to send for c, or nil.
func (s *Stream) Chunk(c *chat.Chunk) *Response {
	if c.Model != "" {
		s.model = c.Model
	}
	if c.Usage != nil {
		s.usage = c.Usage
	}
	var parts []Part
	for _, ch := range c.Choices {
		if ch.Index != 0 {
			continue
		}
		d := &ch.Delta
		if d.ReasoningContent != "" {
			parts = append(parts, Part{Text: d.ReasoningContent, Thought: true})
		}
		if d.Content != nil && *d.Content != "" {
			parts = append(parts, Part{Text: *d.Content})
		}
		for _, tc := range d.ToolCalls {
			s.addCall(tc)
		}
		if ch.FinishReason != nil {
			s.finish = *ch.FinishReason
		}
	}
	if len(parts) == 0 {
		return nil
	}
	return s.response(parts, "")
}

// addCall merges a tool call fragment into the call at its index.
func (s *Stream) addCall(tc chat.ToolCall) {
	i := len(s.calls)
	if tc.Index != nil {
		i = *tc.Index
	}
	call, ok := s.calls[i]
	if !ok {
		call = &chat.ToolCall{Type: "function"}
		s.calls[i], s.args[i] = call, &strings.Builder{}
	}
	if tc.ID != "" {
		call.ID = tc.ID
	}
	if tc.Function.Name != "" {
		call.Function.Name = tc.Function.Name
	}
	if len(tc.ExtraContent) > 0 {
		call.ExtraContent = tc.ExtraContent
	}
	s.args[i].WriteString(tc.Function.Arguments)
}

// Done is the last chunk: the tool calls, finishReason and usageMetadata.
func (s *Stream) Done() *Response {
	idx := make([]int, 0, len(s.calls))
	for i := range s.calls {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	parts := []Part{}
	for _, i := range idx {
		call := s.calls[i]
		call.Function.Arguments = s.args[i].String()
		parts = append(parts, callPart(call))
	}
	r := s.response(parts, FinishReason(s.finish))
	r.UsageMetadata = FromUsage(s.usage)
	return r
}

func (s *Stream) response(parts []Part, finish string) *Response {
	return &Response{Candidates: []Candidate{{Content: Content{Role: "model", Parts: parts}, FinishReason: finish}},
		ModelVersion: s.model, ResponseID: s.id}
}
