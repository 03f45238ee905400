package upstream

import (
	"errors"
	"io"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers/sse"
)

// Translator turns one provider's stream events into chat chunks. It holds
// the per-stream state (ids, tool-call indexes, usage seen so far).
type Translator interface {
	// Event translates one event. done reports the provider's end-of-stream
	// marker; err (an *Error) an error event.
	Event(ev sse.Event) (chunks []*chat.Chunk, done bool, err error)
	// End is called when the body ends without the end marker. It returns the
	// last chunks of a stream that may end that way, or the *Error of a cut.
	End() ([]*chat.Chunk, error)
}

// UsageReporter is a Translator that can tell the usage its events reported
// so far (see Stream.Usage). Usage returns a value of its own, built from
// the translator's state, or nil when no counts arrived.
type UsageReporter interface {
	Usage() *chat.Usage
}

// EventStream is a Stream reading server-sent events from a body through a
// Translator. Each Recv reads only as far as the next chunk, so chunks go out
// as soon as their event arrives.
type EventStream struct {
	body    *Body
	events  *sse.Reader
	tr      Translator
	pending []*chat.Chunk
	done    bool
	err     error
}

// NewEventStream returns a stream over body.
func NewEventStream(body *Body, tr Translator) *EventStream {
	return &EventStream{body: body, events: sse.NewReader(body), tr: tr}
}

// Recv returns the next chunk, io.EOF at the normal end, or an *Error.
func (s *EventStream) Recv() (*chat.Chunk, error) {
	for {
		if len(s.pending) > 0 {
			c := s.pending[0]
			s.pending = s.pending[1:]
			return c, nil
		}
		if s.err != nil {
			return nil, s.err
		}
		if s.done {
			return nil, io.EOF
		}
		ev, err := s.events.Next()
		switch {
		case errors.Is(err, io.EOF):
			s.pending, s.err = s.tr.End()
			s.done = true
		case err != nil:
			s.err = asError(err)
		default:
			s.pending, s.done, s.err = s.tr.Event(ev)
			if s.done && s.err == nil {
				s.body.Drain()
			}
		}
	}
}

// Usage returns the usage reported by the events read so far, through the
// Translator's UsageReporter; nil for a Translator without one.
func (s *EventStream) Usage() *chat.Usage {
	if r, ok := s.tr.(UsageReporter); ok {
		return r.Usage()
	}
	return nil
}

// Close aborts the upstream request unless it was read to the end.
func (s *EventStream) Close() error { return s.body.Close() }

func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Message: "reading the upstream stream: " + err.Error(), Err: err}
}

// Cut is the *Error of a stream that ended without its end marker.
func Cut() *Error {
	return &Error{Message: "upstream stream ended before completion"}
}
