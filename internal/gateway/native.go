package gateway

import (
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/embedding"
)

// NativeLine is a batch line bounded for its provider's own batch API:
// the model it resolves to (no fallbacks: the provider runs that model)
// and the most it can cost, as the gateway holds the same request.
type NativeLine struct {
	Entry      *catalog.Entry
	HoldMicros int64
}

// NativeBound resolves and bounds one batch line (endpoint
// /v1/chat/completions or /v1/embeddings, body its request) as the
// gateway admits the same request made directly by p (the key's policy,
// chatOperation's or embeddingOperation's bound, billing.HoldAmount),
// without holding anything. A line with a models list, or that the
// gateway would refuse, is an error: such a batch is run by Beaver.
func (g *Gateway) NativeBound(p *auth.Principal, endpoint string, body []byte, at time.Time) (*NativeLine, error) {
	var op operation
	var model string
	switch endpoint {
	case "/v1/chat/completions":
		req, err := chat.ParseRequest(body)
		if err != nil {
			return nil, err
		}
		if len(req.Models) > 0 || req.Model == "" {
			return nil, apierr.Invalid("a line with models is run by Beaver")
		}
		model, op = req.Model, chatOperation(req)
	case "/v1/embeddings":
		req, err := embedding.ParseRequest(body)
		if err != nil {
			return nil, err
		}
		model, op = req.Model, embeddingOperation(req)
	default:
		return nil, apierr.Invalid("endpoint %s is run by Beaver", endpoint)
	}
	chain, err := g.chain(p, model, nil, "")
	if err != nil {
		return nil, err
	}
	chain = chain[:1]
	e := chain[0].entry
	if e.Realtime() || e.Embeddings() != (endpoint == "/v1/embeddings") {
		return nil, apierr.Invalid("model %s does not serve %s", e.ID, endpoint)
	}
	b := op.bound(chain, at)
	return &NativeLine{Entry: e, HoldMicros: billing.HoldAmount(billing.AdmitRequest{Price: b.Price,
		PromptTokens: b.Prompt, MaxTokens: b.Output, ModelMax: b.Max, Choices: b.Choices, At: at})}, nil
}
