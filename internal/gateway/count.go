package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers"
)

// Beaver's own count of a request's tokens, for when the upstream never
// reported usage (a stream cut before its final usage, a client that left
// before the answer, a provider without usage). Exact where the provider's
// tokenizer is public (OpenAI's models: providers.Config.Tokenizers); else
// the provider's count endpoint (Anthropic, Gemini); else the prompt is
// billed at the bound admission held for it, and text by the estimator.

// countTimeout bounds a count endpoint call: settlement waits for it.
const countTimeout = 10 * time.Second

// countPrompt returns the prompt tokens of the request as sent to the model
// tried last, counted by its provider (Counter), or r.prompt (the
// admission bound) when it cannot count (no tokenizer, no count endpoint,
// or the count failed). It runs after the client may have left: the count is made on a
// context of its own, outside the request's route (no attempt is reported,
// no retry budget spent).
func (r *run) countPrompt(ctx context.Context) int64 {
	c, ok := r.prov.(providers.Counter)
	if !ok || !r.countable {
		return r.prompt
	}
	ctx, cancel := context.WithTimeout(providers.WithRoute(context.WithoutCancel(ctx), nil), countTimeout)
	defer cancel()
	up := r.up
	n, err := c.CountPrompt(ctx, &up)
	if err != nil {
		if !errors.Is(err, providers.ErrNoCount) {
			r.g.log.Warn("count prompt tokens; billing the admission bound", "request_id", r.call.RequestID,
				"model", r.entry.ID, "bound", r.prompt, "err", err)
		}
		return r.prompt
	}
	return int64(n)
}

// countText returns the tokens of completion text: the model's tokenizer
// when public, else the estimator.
func (r *run) countText(text string) int {
	if n, ok := r.tokenize(text); ok {
		return n
	}
	return chat.EstimateTokens(text)
}

// cutUsage is what a stream that did not end normally is charged for: the
// upstream's own counts when it gave them (the final usage chunk, or what
// it reported before the end: Anthropic's message_start, Gemini's first
// usageMetadata), with completion tokens no fewer than Beaver counts in the
// received text; else Beaver's count of the prompt and of the received
// text (estimated = true). A stream that ended normally without usage is
// counted the same way.
func (r *run) cutUsage(ctx context.Context, final, soFar *chat.Usage, counted int, ended bool) (u *chat.Usage, estimated bool) {
	if ended && final != nil {
		return final, false
	}
	reported := final
	if reported == nil {
		reported = soFar
	}
	if reported == nil || reported.PromptTokens == 0 {
		// No count yet (a stream may have reported only the provider's own
		// tool calls, which are kept: they ran and are billed).
		u := &chat.Usage{PromptTokens: int(r.countPrompt(ctx)), CompletionTokens: counted}
		if reported != nil {
			u.ServerToolUse = reported.ServerToolUse
		}
		return u, true
	}
	return &chat.Usage{PromptTokens: reported.PromptTokens, CompletionTokens: max(reported.CompletionTokens, counted),
		PromptTokensDetails: reported.PromptTokensDetails, CompletionTokensDetails: reported.CompletionTokensDetails,
		ServerToolUse: reported.ServerToolUse}, false
}

// Count is POST /v1/messages/count_tokens: the prompt tokens of call's
// request on its model, counted as the provider bills them (its public
// tokenizer or count endpoint) or, where it offers neither, by Beaver's
// estimator (exact false). Nothing is generated, held or charged; the key's
// model and IP policy apply as to any request.
func (g *Gateway) Count(ctx context.Context, call Call) (tokens int, exact bool, err error) {
	chain, err := g.chain(call.Principal, call.Model, call.Request.Models, call.ClientIP)
	if err != nil {
		return 0, false, err
	}
	first := chain[0]
	up := *call.Request
	up.Model, up.Models, up.Stream = first.entry.ProviderModel, nil, false
	if c, ok := first.prov.(providers.Counter); ok {
		cctx, cancel := context.WithTimeout(providers.WithRoute(ctx, nil), countTimeout)
		defer cancel()
		n, err := c.CountPrompt(cctx, &up)
		if err == nil {
			return n, true, nil
		}
		if !errors.Is(err, providers.ErrNoCount) {
			g.log.Warn("count prompt tokens; answering the estimate", "request_id", call.RequestID, "model", first.entry.ID, "err", err)
		}
	}
	return call.Request.EstimatePromptTokens(), false, nil
}
