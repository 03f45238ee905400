package gateway

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/chat"
)

// Sink receives a stream's chunks: the HTTP layer's SSE writer.
type Sink interface {
	// Open is called once, when the upstream accepted the request and
	// before any chunk: the answer is a stream from here on.
	Open(generationID string)
	// Send writes one chunk; false means the client is gone.
	Send(c *chat.Chunk) bool
	// Done ends a stream that was delivered whole (the contract's [DONE]).
	Done()
}

// Stream runs a streaming call: the upstream's chunks go to sink as they
// arrive, then, once the charge is committed, a usage chunk carrying it.
// A failure before the stream opens is returned (nothing is charged); a
// later one ends the stream with an error chunk and is charged for the
// prompt and what was delivered, as is a client that goes away.
func (g *Gateway) Stream(ctx context.Context, call Call, sink Sink) error {
	r, err := g.admit(ctx, call)
	if err != nil {
		return err
	}
	st, err := r.prov.Stream(ctx, &r.up)
	if err != nil {
		return r.failed(ctx, err)
	}
	defer st.Close()
	sink.Open(r.genID)

	var (
		usage     *chat.Usage
		delivered strings.Builder
		streamErr error
		gone      bool
	)
	for {
		ch, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			streamErr = err
			break
		}
		if ch.Usage != nil {
			usage = ch.Usage
		}
		if len(ch.Choices) == 0 {
			continue // usage-only chunk: ours comes at the end
		}
		ch.ID, ch.Model, ch.Object, ch.Usage = r.genID, r.entry.ID, chat.ObjectChunk, nil
		if ch.Created == 0 {
			ch.Created = r.created
		}
		if !sink.Send(ch) {
			gone = true // what it failed to take is not billed
			break
		}
		delivered.WriteString(ch.Text())
	}
	cancelled := ctx.Err() != nil || gone
	o := r.outcome()
	o.Streamed, o.Cancelled = true, cancelled
	if usage == nil || streamErr != nil || cancelled {
		usage, o.UsageEstimated = deliveredUsage(usage, st.Usage(), r.prompt, delivered.String(), streamErr == nil && !cancelled)
	}
	if streamErr != nil && !cancelled {
		o.Error = streamErr.Error()
	} else if cancelled {
		o.Error = "client disconnected"
	}
	settled, err := r.settle(ctx, o, usage)
	g.latency.Observe(r.entry.Provider, time.Since(r.start), streamErr != nil && !cancelled)
	if err != nil {
		g.log.Error("settle stream", "request_id", call.RequestID, "err", err)
		sink.Send(r.errorChunk(apierr.Internal()))
		return nil
	}
	if cancelled {
		return nil
	}
	if streamErr != nil {
		ae, _ := apierr.As(UpstreamError(streamErr))
		if ae == nil {
			ae = apierr.Internal()
		}
		if !sink.Send(r.errorChunk(ae)) {
			return nil
		}
	}
	withCost(usage, settled)
	if sink.Send(&chat.Chunk{ID: r.genID, Object: chat.ObjectChunk, Created: r.created, Model: r.entry.ID,
		Choices: []chat.ChunkChoice{}, Usage: usage}) {
		sink.Done()
	}
	return nil
}

// deliveredUsage is what a stream that did not end normally is charged
// for: the upstream's own counts when it gave them (the final usage chunk,
// or what it reported before the end: Anthropic's message_start, Gemini's
// first usageMetadata), with completion tokens no fewer than Beaver counts
// in the delivered text; else Beaver's estimate of prompt and delivered
// text (estimated = true). A stream that ended normally without usage is
// estimated the same way.
func deliveredUsage(final, soFar *chat.Usage, prompt int64, delivered string, ended bool) (u *chat.Usage, estimated bool) {
	counted := chat.EstimateTokens(delivered)
	reported := final
	if reported == nil {
		reported = soFar
	}
	if reported == nil {
		return &chat.Usage{PromptTokens: int(prompt), CompletionTokens: counted}, true
	}
	if ended && final != nil {
		return final, false
	}
	return &chat.Usage{PromptTokens: reported.PromptTokens, CompletionTokens: max(reported.CompletionTokens, counted),
		PromptTokensDetails: reported.PromptTokensDetails, CompletionTokensDetails: reported.CompletionTokensDetails}, false
}

// errorChunk is the contract's mid-stream failure chunk.
func (r *run) errorChunk(e *apierr.Error) *chat.Chunk {
	reason := chat.FinishError
	return &chat.Chunk{ID: r.genID, Object: chat.ObjectChunk, Created: r.created, Model: r.entry.ID,
		Choices: []chat.ChunkChoice{{Index: 0, Delta: chat.Delta{}, FinishReason: &reason}},
		Error:   &chat.ErrorBody{Message: e.Message, Type: e.Type, Code: e.Code}}
}
