package gateway

import (
	"context"
	"errors"
	"fmt"
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

// answer is the outcome of a non-streamed call's upstream attempts.
type answer struct {
	resp *chat.Response
	err  error
}

// errAbandoned cancels the upstream call of a request whose client left
// once Options.AbandonTimeout passed, or at shutdown.
var errAbandoned = errors.New("the client left and the upstream answer did not come in time")

// Complete runs a non-streaming call. The answer is returned only after its
// charge is committed; its model is the one that answered (see try).
// Errors are *apierr.Error (or context.Canceled).
//
// The upstream call does not end with the client's request. A client that
// leaves before the answer (ctx cancelled) gets context.Canceled at once,
// while the answer is still read in the background, to its end, and billed
// by the usage the upstream reports, as if the client had stayed: the
// upstream generates, and bills, the whole answer either way. That wait is
// bounded by the request's max_tokens (sent upstream, and held) and by
// Options.AbandonTimeout from when the client left; no retry or fallback
// starts once the client is gone. The hold is settled once, by whichever of
// the two sides ends the request.
func (g *Gateway) Complete(ctx context.Context, call Call) (*Completion, error) {
	if call.Durable.Replay != nil {
		call.Request.Models = nil // the recorded model answered: no fallbacks
	}
	r, err := g.admit(ctx, call)
	if err != nil {
		return nil, err
	}
	if call.Durable.Replay != nil {
		resp := *call.Durable.Replay
		resp.Usage = call.Durable.Replay.Usage.Clone()
		return r.complete(ctx, answer{resp: &resp})
	}
	upCtx, cancelUp := context.WithCancelCause(context.WithoutCancel(ctx))
	r.left = make(chan struct{})
	done := make(chan answer, 1)
	g.background.Add(1) // until the answer is settled, here or in finishAbandoned
	go func() {
		var a answer
		a.err = r.try(upCtx, func(ctx context.Context) (err error) {
			up := r.up // each attempt its own copy
			a.resp, err = r.prov.Complete(ctx, &up)
			if err == nil {
				r.upstreamModel = a.resp.Model
			}
			return err
		})
		done <- a
	}()
	select {
	case a := <-done:
		defer g.background.Done()
		cancelUp(nil)
		return r.complete(ctx, a)
	case <-ctx.Done():
	}
	r.abandon()
	go g.finishAbandoned(r, upCtx, done, cancelUp)
	return nil, ctx.Err()
}

// abandon records that the client left: try starts nothing more and tells
// the caller nothing more (see run.left).
func (r *run) abandon() {
	r.mu.Lock()
	r.gone = true
	close(r.left)
	r.mu.Unlock()
}

// abandoned reports whether the client left a non-streamed call.
func (r *run) abandoned() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gone
}

// finishAbandoned waits for the upstream answer of a call whose client
// left, for at most AbandonTimeout (less at shutdown), and settles it.
func (g *Gateway) finishAbandoned(r *run, upCtx context.Context, done <-chan answer, cancelUp context.CancelCauseFunc) {
	defer g.background.Done()
	timer := time.AfterFunc(g.opts.AbandonTimeout, func() { cancelUp(errAbandoned) })
	defer timer.Stop()
	stop := context.AfterFunc(g.stop, func() { cancelUp(errAbandoned) })
	defer stop()
	a := <-done
	cut := errors.Is(context.Cause(upCtx), errAbandoned)
	cancelUp(nil)
	// Settled on a context of its own: the client's is cancelled, and the
	// charge is not (billing.Engine.Finish goes on regardless).
	ctx := context.Background()
	if a.err != nil {
		// Failed before any output: free, as for a client that stayed,
		// unless Beaver cut the call off while the upstream worked: then
		// the prompt, as for a cut stream.
		_ = r.failed(ctx, a.err, cut)
		return
	}
	if _, err := r.complete(ctx, a); err != nil {
		g.log.Error("settle abandoned request", "request_id", r.call.RequestID, "err", err)
	}
}

// complete settles a non-streamed call's answer (or failure) and returns
// what the client gets.
func (r *run) complete(ctx context.Context, a answer) (*Completion, error) {
	if a.err != nil {
		return nil, r.failed(ctx, a.err, false)
	}
	resp := a.resp
	var recordErr error
	if rec := r.call.Durable.Record; rec != nil && r.call.Durable.Replay == nil {
		if recordErr = rec(ctx, resp, r.entry.ID); recordErr != nil {
			recordErr = fmt.Errorf("record the answer of %s: %w", r.genID, recordErr)
		}
	}
	o := r.outcome()
	if r.abandoned() {
		o.Cancelled, o.Error = true, "client disconnected"
	}
	u := resp.Usage
	if u == nil {
		// The upstream reported no usage: count it ourselves (count.go).
		var text strings.Builder
		for _, ch := range resp.Choices {
			text.WriteString(ch.Message.Content.Text())
			for _, tc := range ch.Message.ToolCalls {
				text.WriteString(tc.Function.Name + tc.Function.Arguments)
			}
		}
		u = &chat.Usage{PromptTokens: int(r.countPrompt(ctx)), CompletionTokens: r.countText(text.String())}
		o.UsageEstimated = true
	}
	st, err := r.settle(ctx, o, u)
	if err != nil {
		return nil, err
	}
	r.g.latency.Observe(r.entry.Provider, time.Since(r.start), false)
	withCost(u, st)
	resp.Usage = u
	resp.ID, resp.Model, resp.Object = r.genID, r.entry.ID, chat.ObjectCompletion
	if resp.Created == 0 {
		resp.Created = r.created
	}
	return &Completion{Response: resp, Settlement: st}, recordErr
}

// Close waits for the requests whose client left to be settled (see
// Complete). When ctx ends first, their upstream calls are cancelled, and
// they are billed for the prompt, as a cut request; Close then waits for
// those charges to commit.
func (g *Gateway) Close(ctx context.Context) {
	waited := make(chan struct{})
	go func() {
		g.background.Wait()
		close(waited)
	}()
	select {
	case <-waited:
	case <-ctx.Done():
		g.stopAll()
		<-waited
	}
}
