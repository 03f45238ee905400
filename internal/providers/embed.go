package providers

import (
	"context"

	"github.com/beaver-gateway/beaver/internal/embedding"
)

// Embedder is a Provider whose wire format has an embeddings endpoint: the
// openai adapter (POST {base}/embeddings) and the gemini adapter (POST
// {base}/v1beta/models/{model}:batchEmbedContents). Anthropic has none.
type Embedder interface {
	// Embed sends one embeddings request; req.Model is the provider's own
	// model name. The answer has one vector per input, in input order, in
	// the encoding the request asks for; its Usage is nil when the
	// upstream reported none. Errors are as Provider's: *Error, or
	// *chat.InvalidError for a request the format cannot carry (checked
	// before any call).
	Embed(ctx context.Context, req *embedding.Request) (*embedding.Response, error)
}

// EmbedderOf returns p's embeddings endpoint, if its format has one.
func EmbedderOf(p Provider) (Embedder, bool) {
	e, ok := p.(Embedder)
	return e, ok
}
