package gateway

import (
	"context"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/imagegen"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/internal/providers"
)

// Images: one POST /v1/images/generations or /v1/images/edits request, an
// operation of the pipeline (operation.go; the HTTP layer calls Check
// first): key policy → admit (hold) → provider → settle. Image models
// (capability "images") serve images only; every other model refuses image
// requests, and image models refuse the rest, with 400.
//
// Money rules, beside the chat ones:
//   - The hold is pricing.ImageBound: the prompt's text bound plus each
//     input image's token bound at the dearest input price, and n × the
//     most output tokens of the size and quality at the dearest output
//     price plus n × the dearest per-image price, all or nothing (the
//     balance covers it or the answer is 402: no cap can be sent to an
//     image API).
//   - The charge is the upstream's usage (text and image input tokens,
//     text and image output tokens) and the images delivered at the
//     per-image price of the answer's size and quality; where it reports
//     no usage (xAI, DALL·E), the prompt by Beaver's estimate, marked
//     usage_estimated. An image model has no fallbacks.

// ImageCall is one parsed image request.
type ImageCall struct {
	Principal  *auth.Principal
	Request    *imagegen.Request
	ClientIP   string
	RequestID  string
	OnAttempts func(Attempts) // as Call.OnAttempts
}

// Images is a charged image answer.
type Images struct {
	ID         string             // Beaver's generation id (GET /v1/generation)
	Response   *imagegen.Response // usage (with cost) set by Beaver
	Settlement *billing.Settlement
}

// notImages refuses an image model's use for anything but images.
func notImages(e *catalog.Entry) *apierr.Error {
	return apierr.Invalid("model %s is an image model; use POST /v1/images/generations or /v1/images/edits", e.ID)
}

// Images runs an image call. The answer is returned only after its charge
// is committed. Errors are *apierr.Error (or context.Canceled).
func (g *Gateway) Images(ctx context.Context, call ImageCall) (*Images, error) {
	req := call.Request
	r, gen, err := alone(ctx, g, Call{Principal: call.Principal, Model: req.Model, ClientIP: call.ClientIP,
		RequestID: call.RequestID, OnAttempts: call.OnAttempts}, "images",
		func(e *catalog.Entry) (operation, error) { return imageOperation(e, req) }, providers.ImageGeneratorOf)
	if err != nil {
		return nil, err
	}
	resp, err := attempt(ctx, r, func(ctx context.Context, model string) (*imagegen.Response, error) {
		up := *req
		up.Model = model
		return gen.Images(ctx, &up)
	})
	if err != nil {
		return nil, err
	}
	st, err := r.settleImages(ctx, req, resp)
	if err != nil {
		return nil, err
	}
	g.latency.Observe(r.entry.Provider, time.Since(r.start), false)
	if resp.Created == 0 {
		resp.Created = r.created
	}
	return &Images{ID: r.genID, Response: resp, Settlement: st}, nil
}

// imageOperation is an image request's operation on model e: it holds
// pricing.ImageBound, and a prompt the upstream does not count is billed
// at Beaver's estimate. A model that is not an image model, or a size or
// quality its prices do not cover, is refused.
func imageOperation(e *catalog.Entry, req *imagegen.Request) (operation, error) {
	if !e.Images() {
		return operation{}, apierr.Invalid("model %s is not an image model", e.ID).WithParam("model")
	}
	q := pricing.ImageQuery{Size: req.Size, Quality: req.Quality, N: int64(req.Count()),
		PromptTokens: int64(req.PromptTokenBound()), InputImages: int64(len(req.Images))}
	if _, _, err := e.Price.ImageBound(time.Time{}, q); err != nil {
		return operation{}, apierr.Invalid("%s", err.Error()).WithParam("size")
	}
	return operation{prefix: ids.ImagePrefix, prompt: int64(req.EstimatePromptTokens()),
		bound: func(chain []candidate, at time.Time) bound {
			// Refused above otherwise: whether a query is covered does
			// not depend on the time.
			price, prompt, _ := chain[0].entry.Price.ImageBound(at, q)
			return bound{Price: price, Prompt: prompt, Output: 1, Max: 1}
		},
		// A failure settles at the price the request's size and quality
		// select, which the hold covers.
		retarget: func(r *run, c candidate) { r.entry = imagesPriced(c.entry, req.Size, req.Quality) },
	}, nil
}

// imagesPriced is e priced for images of size and quality (ForImages).
func imagesPriced(e *catalog.Entry, size, quality string) *catalog.Entry {
	out := *e
	out.Price = e.Price.ForImages(size, quality)
	return &out
}

// settleImages charges an image answer: the upstream's usage, or Beaver's
// estimate of the prompt, and the images delivered, at the per-image price
// of the size and quality the answer has (else the request's), in the
// version resolved at admission. resp's usage is set with the cost.
func (r *run) settleImages(ctx context.Context, req *imagegen.Request, resp *imagegen.Response) (*billing.Settlement, error) {
	o := r.outcome()
	o.Images = int64(len(resp.Data))
	u := resp.Usage
	if u == nil {
		o.UsageEstimated = true // the upstream reported no usage: Beaver's estimate
		u = &imagegen.Usage{InputTokens: int(r.prompt), InputTokensDetails: imagegen.TokenDetails{TextTokens: int(r.prompt)}}
	}
	o.ImageInputTokens, o.ImageOutputTokens = int64(u.InputTokensDetails.ImageTokens), int64(u.ImageOutputTokens())
	r.entry = imagesPriced(r.chain[0].entry, first(resp.Size, req.Size), first(resp.Quality, req.Quality))
	tokens := &chat.Usage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens}
	st, err := r.settle(ctx, o, tokens)
	if err != nil {
		return nil, err
	}
	withCost(tokens, st)
	u.TotalTokens, u.Cost, u.CostMicros = tokens.TotalTokens, tokens.Cost, tokens.CostMicros
	resp.Usage = u
	return st, nil
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
