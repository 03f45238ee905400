package openai

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/beaver-gateway/beaver/internal/embedding"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
)

// embedPath is appended to the base URL of the endpoint each attempt goes to.
const embedPath = "/embeddings"

// wireEmbedRequest is OpenAI's CreateEmbeddingRequest.
type wireEmbedRequest struct {
	Model          string          `json:"model"`
	Input          embedding.Input `json:"input"`
	EncodingFormat string          `json:"encoding_format,omitempty"`
	Dimensions     *int            `json:"dimensions,omitempty"`
	User           string          `json:"user,omitempty"`
}

// wireEmbedResponse is OpenAI's CreateEmbeddingResponse.
type wireEmbedResponse struct {
	Data []struct {
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Model string `json:"model"`
	Usage *struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
	Error *wireError `json:"error"`
}

// Embed sends POST {base}/embeddings. The encoding format goes upstream as
// asked, so a base64 answer passes through as it came.
func (a *Adapter) Embed(ctx context.Context, req *embedding.Request) (*embedding.Response, error) {
	body, err := json.Marshal(wireEmbedRequest{Model: req.Model, Input: req.Input, EncodingFormat: req.EncodingFormat,
		Dimensions: req.Dimensions, User: req.User})
	if err != nil {
		return nil, err
	}
	h := a.header.Clone()
	h.Set("Accept", "application/json")
	data, err := a.client.Do(ctx, upstream.Request{Path: embedPath, Key: upstream.BearerKey, Header: h, Body: body, ParseError: ParseError, MaxBytes: embedding.MaxResponseBytes})
	if err != nil {
		return nil, err // already an *Error
	}
	var wr wireEmbedResponse
	if err := json.Unmarshal(data, &wr); err != nil {
		return nil, upstream.BadResponse("embeddings response", err)
	}
	if wr.Error != nil {
		return nil, wr.Error.toError(http.StatusBadGateway)
	}
	n := req.Input.Len()
	if len(wr.Data) != n {
		return nil, upstream.BadResponse("embeddings response", fmt.Errorf("%d vectors for %d inputs", len(wr.Data), n))
	}
	resp := &embedding.Response{Object: embedding.ObjectList, Model: wr.Model, Data: make([]embedding.Vector, n)}
	for _, d := range wr.Data {
		if d.Index < 0 || d.Index >= n || resp.Data[d.Index].Embedding != nil || len(d.Embedding) == 0 {
			return nil, upstream.BadResponse("embeddings response", fmt.Errorf("vector index %d missing, repeated or out of range", d.Index))
		}
		resp.Data[d.Index] = embedding.Vector{Object: embedding.ObjectEmbedding, Index: d.Index, Embedding: d.Embedding}
	}
	if wr.Usage != nil {
		resp.Usage = &embedding.Usage{PromptTokens: wr.Usage.PromptTokens, TotalTokens: wr.Usage.PromptTokens}
	}
	return resp, nil
}
