package gateway

import (
	"context"
	"strings"
	"time"

	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/chat"
)

// Completion is a charged non-streaming answer.
type Completion struct {
	Response   *chat.Response // id, model and usage (with cost) set by Beaver
	Settlement *billing.Settlement
}

// Complete runs a non-streaming call. The answer is returned only after its
// charge is committed; its model is the one that answered (see try).
// Errors are *apierr.Error (or context.Canceled).
func (g *Gateway) Complete(ctx context.Context, call Call) (*Completion, error) {
	r, err := g.admit(ctx, call)
	if err != nil {
		return nil, err
	}
	var resp *chat.Response
	err = r.try(ctx, func(ctx context.Context, up *chat.Request) (err error) {
		resp, err = r.prov.Complete(ctx, up)
		return err
	})
	if err != nil {
		return nil, r.failed(ctx, err)
	}
	o := r.outcome()
	u := resp.Usage
	if u == nil {
		// The upstream reported no usage: count it ourselves (documented estimator).
		var text strings.Builder
		for _, ch := range resp.Choices {
			text.WriteString(ch.Message.Content.Text())
			for _, tc := range ch.Message.ToolCalls {
				text.WriteString(tc.Function.Name + tc.Function.Arguments)
			}
		}
		u = &chat.Usage{PromptTokens: int(r.prompt), CompletionTokens: chat.EstimateTokens(text.String())}
		o.UsageEstimated = true
	}
	st, err := r.settle(ctx, o, u)
	if err != nil {
		return nil, err
	}
	g.latency.Observe(r.entry.Provider, time.Since(r.start), false)
	withCost(u, st)
	resp.Usage = u
	resp.ID, resp.Model, resp.Object = r.genID, r.entry.ID, chat.ObjectCompletion
	if resp.Created == 0 {
		resp.Created = r.created
	}
	return &Completion{Response: resp, Settlement: st}, nil
}
