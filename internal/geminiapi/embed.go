package geminiapi

import (
	"encoding/json"
	"fmt"

	"github.com/beaver-gateway/beaver/internal/embedding"
	"github.com/beaver-gateway/beaver/internal/strictjson"
)

// embedRequest is one :embedContent body (and each of :batchEmbedContents'
// requests). taskType and title are accepted and ignored: they tune
// Google's embeddings and have no equivalent elsewhere.
type embedRequest struct {
	Model                *string  `json:"model"`
	Content              *Content `json:"content"`
	TaskType             *string  `json:"taskType"`
	Title                *string  `json:"title"`
	OutputDimensionality *int     `json:"outputDimensionality"`
}

// ParseEmbed reads an :embedContent body (batch false) or a
// :batchEmbedContents one into one embeddings request for model, each
// content's text one input, validated by embedding.ParseRequest (the one
// home of the embeddings rules).
func ParseEmbed(body []byte, model string, batch bool) (*embedding.Request, error) {
	var reqs []embedRequest
	if batch {
		var b struct {
			Requests []embedRequest `json:"requests"`
		}
		if err := strictDecode(body, &b); err != nil {
			return nil, err
		}
		if len(b.Requests) == 0 {
			return nil, invalid("requests", "requests must be a non-empty array")
		}
		reqs = b.Requests
	} else {
		var r embedRequest
		if err := strictDecode(body, &r); err != nil {
			return nil, err
		}
		reqs = []embedRequest{r}
	}
	texts := make([]string, len(reqs))
	var dims *int
	for i, r := range reqs {
		if r.Content == nil {
			return nil, invalid("content", "requests[%d].content is required", i)
		}
		texts[i] = joinText(r.Content.Parts)
		if r.OutputDimensionality != nil {
			if dims != nil && *dims != *r.OutputDimensionality {
				return nil, invalid("outputDimensionality", "every request must ask for the same outputDimensionality")
			}
			dims = r.OutputDimensionality
		}
	}
	oa := map[string]any{"model": model, "input": texts}
	if dims != nil {
		oa["dimensions"] = *dims
	}
	b, err := json.Marshal(oa)
	if err != nil {
		return nil, fmt.Errorf("encode embeddings request: %w", err)
	}
	return embedding.ParseRequest(b)
}

// strictDecode decodes body into v, refusing unknown fields by name.
func strictDecode(body []byte, v any) error {
	if err := strictjson.Decode(body, v); err != nil {
		return invalid("", "invalid request: %v", err)
	}
	return nil
}

// Embedding is one vector in Gemini's shape.
type Embedding struct {
	Values json.RawMessage `json:"values"`
}

// FromEmbeddings renders the gateway's embeddings as :embedContent's
// {embedding} or :batchEmbedContents' {embeddings}.
func FromEmbeddings(r *embedding.Response, batch bool) map[string]any {
	out := make([]Embedding, len(r.Data))
	for _, v := range r.Data {
		if v.Index >= 0 && v.Index < len(out) {
			out[v.Index] = Embedding{Values: v.Embedding}
		}
	}
	if batch {
		return map[string]any{"embeddings": out}
	}
	if len(out) == 0 {
		return map[string]any{"embedding": Embedding{Values: json.RawMessage("[]")}}
	}
	return map[string]any{"embedding": out[0]}
}

// Model is a GET /v1beta/models entry.
type Model struct {
	Name                       string   `json:"name"` // models/<catalog id>
	BaseModelID                string   `json:"baseModelId"`
	Version                    string   `json:"version"`
	DisplayName                string   `json:"displayName"`
	InputTokenLimit            int64    `json:"inputTokenLimit"`
	OutputTokenLimit           int64    `json:"outputTokenLimit"`
	SupportedGenerationMethods []string `json:"supportedGenerationMethods"`
}
