package openai

import (
	"context"
	"encoding/json"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
	"github.com/beaver-gateway/beaver/internal/tokens"
)

// The chat template's framing, as OpenAI's cookbook counts it
// (num_tokens_from_messages, num_tokens_for_tools).
const (
	perMessage  = 3  // <|start|>{role}<|message|>…<|end|>, the role itself counted apart
	perName     = 1  // a message's name
	perReply    = 3  // the primed assistant reply
	perToolCall = 8  // the framing of a tool call in an assistant message (an upper figure)
	perTool     = 10 // a function definition's framing (the cookbook: 7 for gpt-4o, 10 for gpt-4)
	toolsEnd    = 12 // after the definitions
	perChoice   = 4  // a named tool_choice, besides its name
)

// CountPrompt counts req's prompt as OpenAI bills it, with the model's
// encoding: per message 3 + its role, text, name (+1), tool call id and
// tool calls; 3 for the reply; and, when tools are given, their
// definitions. Text is exact. What OpenAI renders in ways it does not
// publish is counted from above: tool definitions (and a json_schema
// response format) as 10 + their name, description and JSON schema, + 12;
// each image at chat.ImageTokenBound, as admission holds it. ErrNoCount for a
// model without a tokenizer (DeepSeek, xAI, Perplexity).
func (a *Adapter) CountPrompt(_ context.Context, req *chat.Request) (int, error) {
	enc := tokens.For(a.tokenizers, req.Model)
	if enc == "" {
		return 0, upstream.ErrNoCount
	}
	c := counter{enc: enc}
	n := perReply
	for i := range req.Messages {
		m := &req.Messages[i]
		n += perMessage + c.n(m.Role) + c.n(m.ToolCallID)
		if m.Name != "" {
			n += perName + c.n(m.Name)
		}
		for _, p := range m.Content.Parts() {
			if p.Type == chat.PartImageURL {
				n += chat.ImageTokenBound
				continue
			}
			n += c.n(p.Text)
		}
		for _, tc := range m.ToolCalls {
			n += perToolCall + c.n(tc.Function.Name) + c.n(tc.Function.Arguments)
		}
	}
	if len(req.Tools) > 0 {
		for _, t := range req.Tools {
			n += perTool + c.n(t.Function.Name) + c.n(t.Function.Description) + c.n(string(t.Function.Parameters))
		}
		n += toolsEnd
		if name := namedChoice(req.ToolChoice); name != "" {
			n += perChoice + c.n(name)
		}
	}
	if req.ResponseFormatType() == "json_schema" {
		n += perTool + c.n(string(req.JSONSchema())) + toolsEnd
	}
	return n, c.err
}

// CountText counts completion text in the model's encoding.
func (a *Adapter) CountText(model, text string) (int, bool) {
	enc := tokens.For(a.tokenizers, model)
	if enc == "" {
		return 0, false
	}
	n, err := tokens.Count(enc, text)
	return n, err == nil
}

// counter sums token counts, keeping the first error.
type counter struct {
	enc string
	err error
}

func (c *counter) n(s string) int {
	n, err := tokens.Count(c.enc, s)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n
}

// namedChoice is the function a tool_choice names ({"type":"function",
// "function":{"name":...}}); "" for auto, none, required.
func namedChoice(raw json.RawMessage) string {
	var v struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	return v.Function.Name
}
