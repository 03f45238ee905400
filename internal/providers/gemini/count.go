package gemini

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
)

// countRequest is the body of models/{model}:countTokens in the form that
// counts the whole request (system instruction and tools included), not
// only its contents.
type countRequest struct {
	GenerateContentRequest countContent `json:"generateContentRequest"`
}

type countContent struct {
	Model string `json:"model"` // "models/{model}"
	*wireRequest
}

// CountPrompt asks Gemini's countTokens for the prompt tokens of req,
// translated as Complete and Stream send it: {"totalTokens": N}. Gemini's
// tokenizer is not public.
func (a *Adapter) CountPrompt(ctx context.Context, req *chat.Request) (int, error) {
	w, err := buildRequest(req)
	if err != nil {
		return 0, err
	}
	body, err := json.Marshal(countRequest{countContent{Model: "models/" + req.Model, wireRequest: w}})
	if err != nil {
		return 0, fmt.Errorf("gemini: encode count request: %w", err)
	}
	data, err := a.client.Do(ctx, a.request(req.Model, ":countTokens", body, "application/json"))
	if err != nil {
		return 0, err
	}
	return upstream.TokenCount(data, "totalTokens", "countTokens response")
}

// CountText: Gemini's tokenizer is not public.
func (a *Adapter) CountText(string, string) (int, bool) { return 0, false }
