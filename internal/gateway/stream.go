package gateway

import (
	"context"
	"io"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers"
)

// Sink receives a stream's chunks: the HTTP layer's SSE writer.
type Sink interface {
	// Open is called once, when the upstream accepted the request and
	// before any chunk: the answer is a stream from here on.
	Open(generationID string)
	// Send writes one chunk; false means the client is gone.
	Send(c *chat.Chunk) bool
	// SendError writes OpenAI's in-stream error event, data: {"error": ...};
	// false means the client is gone.
	SendError(e *chat.ErrorEvent) bool
	// Done ends a stream that was delivered whole (the contract's [DONE]).
	Done()
}

// Stream runs a streaming call: the upstream's chunks go to sink as they
// arrive, then, once the charge is committed, a usage chunk carrying it.
// A failure before the stream opens is returned (nothing is charged); a
// later one ends the stream with an error (see failStream) and is charged for
// the prompt and what was received, as is a client that goes away (which
// cancels the upstream request at once).
func (g *Gateway) Stream(ctx context.Context, call Call, sink Sink) error {
	o, err := g.Open(ctx, call)
	if err != nil {
		return err
	}
	o.Relay(ctx, sink)
	return nil
}

// Opened is a streaming call whose upstream accepted it: admitted, held
// for, with its stream open. Relay runs it to its end.
type Opened struct {
	r  *run
	st providers.Stream
}

// Detach tells the gateway the stream outlives its HTTP handler (the API
// took its connection over): Close waits for it like for any request
// still being billed, and past Close's deadline cancel cuts it (it is then
// billed as cut). release, once Relay returned, ends that.
func (op *Opened) Detach(cancel context.CancelFunc) (release func()) {
	op.r.g.background.Add(1)
	stop := context.AfterFunc(op.r.g.stop, cancel)
	return func() {
		stop()
		op.r.g.background.Done()
	}
}

// Open admits a streaming call and opens its upstream stream, trying the
// fallbacks; a failure is returned and nothing is charged. ctx must stay
// live until Relay returns: it carries the upstream request.
func (g *Gateway) Open(ctx context.Context, call Call) (*Opened, error) {
	r, err := g.admit(ctx, call)
	if err != nil {
		return nil, err
	}
	var st providers.Stream
	err = r.try(ctx, func(ctx context.Context) (err error) { // fallbacks: before the stream opens only
		up := r.up // each attempt its own copy
		st, err = r.prov.Stream(ctx, &up)
		return err
	})
	if err != nil {
		return nil, r.failed(ctx, err, ctx.Err() != nil)
	}
	return &Opened{r: r, st: st}, nil
}

// Relay sends the opened stream to sink and settles it (see Stream); ctx is
// the one Open was given, or one that ends with it: its end is the client's
// leaving.
func (op *Opened) Relay(ctx context.Context, sink Sink) {
	r, st, g, call := op.r, op.st, op.r.g, op.r.call
	defer st.Close()
	r.opened = time.Now()
	sink.Open(r.genID)

	var (
		usage     *chat.Usage
		received  receivedText // what the upstream generated, delivered or not
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
		received.add(r, ch) // the upstream bills it even if the client is gone
		if r.upstreamModel == "" {
			r.upstreamModel = ch.Model
		}
		ch.ID, ch.Model, ch.Object, ch.Usage = r.genID, r.entry.ID, chat.ObjectChunk, nil
		if ch.Created == 0 {
			ch.Created = r.created
		}
		if !sink.Send(ch) {
			gone = true
			break
		}
	}
	cancelled := ctx.Err() != nil || gone
	o := r.outcome()
	o.Streamed, o.Cancelled = true, cancelled
	if usage == nil || streamErr != nil || cancelled {
		usage, o.UsageEstimated = r.cutUsage(ctx, usage, st.Usage(), received.total(r), streamErr == nil && !cancelled)
	}
	if streamErr != nil && !cancelled {
		o.Error = streamErr.Error()
		r.failErr = streamErr
	} else if cancelled {
		o.Error = "client disconnected"
	}
	settled, err := r.settle(ctx, o, usage)
	g.latency.Observe(r.entry.Provider, time.Since(r.start), streamErr != nil && !cancelled)
	if err != nil {
		g.log.Error("settle stream", "request_id", call.RequestID, "err", err)
		r.failStream(sink, apierr.Internal())
		return
	}
	if cancelled {
		return
	}
	if streamErr != nil {
		ae, _ := apierr.As(UpstreamError(streamErr))
		if ae == nil {
			ae = apierr.Internal()
		}
		if !r.failStream(sink, ae) {
			return
		}
	}
	withCost(usage, settled)
	if sink.Send(&chat.Chunk{ID: r.genID, Object: chat.ObjectChunk, Created: r.created, Model: r.entry.ID,
		Choices: []chat.ChunkChoice{}, Usage: usage}) {
		sink.Done()
	}
}

// failStream ends a stream that failed after it opened: OpenAI's error
// event, data: {"error": {...}} (the official SDKs raise it as an API error
// and stop reading), then the contract's final chunk, which carries the same
// error object. The usage chunk and [DONE] follow when the charge is known.
// It reports whether the client is still there.
func (r *run) failStream(sink Sink, e *apierr.Error) bool {
	body := chat.ErrorBody{Message: e.Message, Type: e.Type, Code: e.Code}
	if e.Param != "" {
		body.Param = &e.Param
	}
	if !sink.SendError(&chat.ErrorEvent{Error: body}) {
		return false
	}
	return sink.Send(r.errorChunk(body))
}

// errorChunk is the final chunk of a stream that failed midway: an empty
// delta, finish_reason "length" and the error object.
//
// finish_reason must be one of OpenAI's enum (stop, length, tool_calls,
// content_filter, function_call): strict decoders reject anything else, as
// they did Beaver's former "error". "length" is the one that tells the truth
// to a client that reads only the reason: the answer stopped before the
// model finished it and is incomplete. "stop" would present a truncated
// answer (or truncated JSON) as whole, "tool_calls" would invite running a
// half-streamed call, and "content_filter" would blame moderation. Clients
// that treat length as "incomplete" (openai-python's parse helpers raise
// LengthFinishReasonError) thus never take the partial output as final; the
// error object says what actually happened.
func (r *run) errorChunk(e chat.ErrorBody) *chat.Chunk {
	reason := chat.FinishLength
	return &chat.Chunk{ID: r.genID, Object: chat.ObjectChunk, Created: r.created, Model: r.entry.ID,
		Choices: []chat.ChunkChoice{{Index: 0, Delta: chat.Delta{}, FinishReason: &reason}},
		Error:   &e}
}
