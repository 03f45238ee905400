package anthropic

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
)

// countRequest is the body of POST /v1/messages/count_tokens: the prompt
// fields of a Messages request and nothing else (the API refuses
// max_tokens, stream and the sampling fields).
type countRequest struct {
	Model      string      `json:"model"`
	System     string      `json:"system,omitempty"`
	Messages   []message   `json:"messages"`
	Tools      []tool      `json:"tools,omitempty"`
	ToolChoice *toolChoice `json:"tool_choice,omitempty"`
}

// CountPrompt asks Anthropic's count endpoint for the prompt tokens of req,
// translated as Complete and Stream send it: {"input_tokens": N}, which
// includes the system prompt, the tool definitions and the tool-use
// preamble. Claude's tokenizer is not public.
func (a *Adapter) CountPrompt(ctx context.Context, req *chat.Request) (int, error) {
	w, err := buildRequest(req, false)
	if err != nil {
		return 0, err
	}
	body, err := json.Marshal(countRequest{Model: w.Model, System: w.System, Messages: w.Messages, Tools: w.Tools, ToolChoice: w.ToolChoice})
	if err != nil {
		return 0, fmt.Errorf("anthropic: encode count request: %w", err)
	}
	r := a.request(body, "application/json")
	r.Path = a.path + "/count_tokens"
	data, err := a.client.Do(ctx, r)
	if err != nil {
		return 0, err
	}
	return upstream.TokenCount(data, "input_tokens", "count_tokens response")
}

// CountText: Claude's tokenizer is not public.
func (a *Adapter) CountText(string, string) (int, bool) { return 0, false }
