package gemini

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/embedding"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
)

// MaxEmbedBatch is the most inputs one batchEmbedContents call takes.
const MaxEmbedBatch = 100

// wireEmbedRequests is a BatchEmbedContentsRequest: one EmbedContentRequest
// per input, each naming the model again.
type wireEmbedRequests struct {
	Requests []wireEmbedRequest `json:"requests"`
}

type wireEmbedRequest struct {
	Model                string  `json:"model"` // "models/{model}"
	Content              content `json:"content"`
	OutputDimensionality *int    `json:"outputDimensionality,omitempty"`
}

// wireEmbedResponse is a BatchEmbedContentsResponse. The Gemini API reports
// no usage for it; usageMetadata is read should it ever come.
type wireEmbedResponse struct {
	Embeddings []struct {
		Values []float64 `json:"values"`
	} `json:"embeddings"`
	UsageMetadata *struct {
		PromptTokenCount int `json:"promptTokenCount"`
	} `json:"usageMetadata"`
	Error *wireErr `json:"error"`
}

// Embed sends POST {base}/v1beta/models/{model}:batchEmbedContents, with
// dimensions as outputDimensionality. Gemini takes text only, and at most
// MaxEmbedBatch inputs: token arrays and larger batches are refused before
// any call. The vectors come as numbers and are encoded as the request
// asks (base64: little-endian float32). The answer has no usage.
func (a *Adapter) Embed(ctx context.Context, req *embedding.Request) (*embedding.Response, error) {
	if req.Input.Tokens != nil {
		return nil, &chat.InvalidError{Message: "Gemini embedding models take text input only, not token arrays", Param: "input"}
	}
	if n := len(req.Input.Texts); n > MaxEmbedBatch {
		return nil, &chat.InvalidError{Message: fmt.Sprintf("Gemini embedding models take at most %d inputs per request, not %d", MaxEmbedBatch, n), Param: "input"}
	}
	w := wireEmbedRequests{Requests: make([]wireEmbedRequest, len(req.Input.Texts))}
	for i, text := range req.Input.Texts {
		w.Requests[i] = wireEmbedRequest{Model: "models/" + req.Model, Content: content{Parts: []part{{Text: text}}},
			OutputDimensionality: req.Dimensions}
	}
	body, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	up := a.request(req.Model, ":batchEmbedContents", body, "application/json")
	up.MaxBytes = embedding.MaxResponseBytes
	data, err := a.client.Do(ctx, up)
	if err != nil {
		return nil, err // already an *Error
	}
	var wr wireEmbedResponse
	if err := json.Unmarshal(data, &wr); err != nil {
		return nil, upstream.BadResponse("embeddings response", err)
	}
	if wr.Error != nil {
		return nil, wr.Error.toError(0)
	}
	if len(wr.Embeddings) != len(req.Input.Texts) {
		return nil, upstream.BadResponse("embeddings response", fmt.Errorf("%d vectors for %d inputs", len(wr.Embeddings), len(req.Input.Texts)))
	}
	format := req.EncodingFormat
	resp := &embedding.Response{Object: embedding.ObjectList, Model: req.Model, Data: make([]embedding.Vector, len(wr.Embeddings))}
	for i, e := range wr.Embeddings {
		resp.Data[i] = embedding.Vector{Object: embedding.ObjectEmbedding, Index: i, Embedding: embedding.Encode(e.Values, format)}
	}
	if u := wr.UsageMetadata; u != nil && u.PromptTokenCount > 0 {
		resp.Usage = &embedding.Usage{PromptTokens: u.PromptTokenCount, TotalTokens: u.PromptTokenCount}
	}
	return resp, nil
}
