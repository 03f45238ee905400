package providers

import (
	"context"

	"github.com/beaver-gateway/beaver/internal/imagegen"
)

// ImageGenerator is a Provider whose wire format makes images: the openai
// adapter (POST {base}/images/generations, multipart POST
// {base}/images/edits: OpenAI and xAI) and the gemini adapter
// (generateContent with responseModalities IMAGE).
type ImageGenerator interface {
	// Images sends one generation or edit (req.Edit()); req.Model is the
	// provider's own model name. The answer's Usage is nil when the
	// upstream reported none. Errors are as Provider's: *Error, or
	// *chat.InvalidError for a request the format cannot carry (checked
	// before any call).
	Images(ctx context.Context, req *imagegen.Request) (*imagegen.Response, error)
}

// ImageGeneratorOf returns p's image endpoint, if its format has one.
func ImageGeneratorOf(p Provider) (ImageGenerator, bool) {
	g, ok := p.(ImageGenerator)
	return g, ok
}
