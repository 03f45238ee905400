package gateway

import (
	"context"
	"strings"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/imagegen"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/internal/providers"
)

// Images: one POST /v1/images/generations or /v1/images/edits request, the
// way Embed runs an embeddings request (the HTTP layer calls Check first):
// key policy → admit (hold) → provider → settle, through the same run.
// Image models (capability "images") serve images only; every other model
// refuses image requests, and image models refuse the rest, with 400.
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
	r, gen, price, err := g.admitImages(ctx, call)
	if err != nil {
		return nil, err
	}
	up := *call.Request
	up.Model = r.entry.ProviderModel
	var resp *imagegen.Response
	err = r.try(ctx, func(ctx context.Context, _ *chat.Request) (err error) { // r.up is the chat request's: unused
		resp, err = gen.Images(ctx, &up)
		return err
	})
	if err != nil {
		return nil, r.failed(ctx, err, ctx.Err() != nil)
	}
	o := r.outcome()
	o.Images = int64(len(resp.Data))
	u := resp.Usage
	if u == nil {
		o.UsageEstimated = true // the upstream reported no usage: Beaver's estimate
		u = &imagegen.Usage{InputTokens: int(r.prompt), InputTokensDetails: imagegen.TokenDetails{TextTokens: int(r.prompt)}}
	}
	u.TotalTokens = u.InputTokens + u.OutputTokens
	o.PromptTokens, o.CompletionTokens = int64(u.InputTokens), int64(u.OutputTokens)
	o.ImageInputTokens, o.ImageOutputTokens = int64(u.InputTokensDetails.ImageTokens), int64(u.ImageOutputTokens())
	// Charged at the per-image price of the size and quality the answer
	// has (else the request's), in the version resolved at admission.
	size, quality := first(resp.Size, call.Request.Size), first(resp.Quality, call.Request.Quality)
	if err := r.hold.Reprice(price.ForImages(size, quality), r.entry.Version); err != nil {
		g.log.Error("reprice image hold", "request_id", r.call.RequestID, "model", r.entry.ID, "err", err)
	}
	r.finished = true
	st, err := g.billing.Finish(ctx, r.hold, o)
	if err != nil {
		return nil, err
	}
	g.latency.Observe(r.entry.Provider, time.Since(r.start), false)
	cost, micros := money.USD(st.ChargedMicros), st.ChargedMicros
	u.Cost, u.CostMicros = &cost, &micros
	resp.Usage = u
	if resp.Created == 0 {
		resp.Created = r.created
	}
	return &Images{ID: r.genID, Response: resp, Settlement: st}, nil
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// admitImages resolves the model as a chat request's (key policy
// included), checks that it is an image model its provider can serve, and
// holds the request's maximum cost (pricing.ImageBound).
func (g *Gateway) admitImages(ctx context.Context, call ImageCall) (*run, providers.ImageGenerator, pricing.Price, error) {
	p, req := call.Principal, call.Request
	c := Call{Principal: p, Request: &chat.Request{}, Model: req.Model, ClientIP: call.ClientIP, RequestID: call.RequestID,
		OnAttempts: call.OnAttempts}
	chain, err := g.chain(c)
	if err != nil {
		return nil, nil, pricing.Price{}, err
	}
	top := chain[0] // no fallbacks (see above)
	if !top.entry.Images() {
		return nil, nil, pricing.Price{}, apierr.Invalid("model %s is not an image model", top.entry.ID).WithParam("model")
	}
	gen, ok := providers.ImageGeneratorOf(top.prov)
	if !ok {
		return nil, nil, pricing.Price{}, apierr.Invalid("model %s: provider %s serves no images", top.entry.ID, top.entry.Provider).WithParam("model")
	}
	admitted := time.Now()
	price := top.entry.Price
	bound, prompt, err := price.ImageBound(admitted, pricing.ImageQuery{Size: req.Size, Quality: req.Quality,
		N: int64(req.Count()), PromptTokens: int64(req.PromptTokenBound()), InputImages: int64(len(req.Images))})
	if err != nil {
		return nil, nil, pricing.Price{}, apierr.Invalid("%s", err.Error()).WithParam("size")
	}
	_, monthly := p.Account.Limits()
	hold, err := g.billing.Admit(ctx, billing.AdmitRequest{AccountID: p.Account.ID, Key: p.Key,
		Price: bound, PriceVersion: top.entry.Version, PromptTokens: prompt,
		MaxTokens: 1, ModelMax: 1, MonthlyLimit: monthly, At: admitted})
	if err != nil {
		return nil, nil, pricing.Price{}, err
	}
	// A failure settles at the entry's price: the one the request's size
	// and quality select, which the hold covers.
	entry := *top.entry
	entry.Price = price.ForImages(req.Size, req.Quality)
	now := time.Now()
	r := &run{g: g, call: c, chain: chain[:1], entry: &entry, prov: top.prov, hold: hold,
		prompt: int64(req.EstimatePromptTokens()), start: now,
		genID: "img-" + strings.TrimPrefix(ids.New("g"), "g_"), created: now.Unix()}
	return r, gen, price, nil
}
