package api

import (
	"encoding/json"
	"net/http"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/geminiapi"
	"github.com/beaver-gateway/beaver/internal/messages"
	"github.com/beaver-gateway/beaver/internal/providers/sse"
	"github.com/beaver-gateway/beaver/internal/responses"
)

// The streams the dialects answer with, all written through one event
// writer (sse.Writer): openStream starts one, each sink translates the
// gateway's chunks into its dialect's events.

// openStream answers 200 with an event stream of generation genID (the
// usage log's id, X-Beaver-Generation-Id on every endpoint) and returns its
// writer.
func openStream(w streamWriter, genID string) *sse.Writer {
	h := w.Header()
	sse.SetHeaders(h)
	h.Set("X-Beaver-Generation-Id", genID)
	w.WriteHeader(http.StatusOK)
	w.Flush()
	return sse.NewWriter(w)
}

// sseSink writes a chat stream as OpenAI does: data events, then [DONE].
type sseSink struct {
	w   streamWriter
	sse *sse.Writer
	buf []byte // the chunk being written, reused for the next
}

func (s *sseSink) Open(generationID string) { s.sse = openStream(s.w, generationID) }

// Send writes c encoded by chat.Chunk.AppendJSON (the bytes json.Marshal
// would write, without reflection): this runs once per token.
func (s *sseSink) Send(c *chat.Chunk) bool {
	if s.sse.Gone() {
		return false
	}
	b, err := c.AppendJSON(s.buf[:0])
	if err != nil {
		return true // as sse.Writer.JSON: a value that does not encode is skipped
	}
	s.buf = b
	return s.sse.Data(b) == nil
}

// SendError writes OpenAI's in-stream error event.
func (s *sseSink) SendError(e *chat.ErrorEvent) bool { return s.sse.JSON("", e) }

func (s *sseSink) Done() { _ = s.sse.Data([]byte("[DONE]")) }

// messageSink writes a gateway stream as Anthropic's server-sent events
// (messages.Stream does the translation).
type messageSink struct {
	w   streamWriter
	st  *messages.Stream
	sse *sse.Writer
}

func (s *messageSink) Open(generationID string) {
	s.st = messages.NewStream(generationID)
	s.sse = openStream(s.w, generationID)
}

func (s *messageSink) Send(c *chat.Chunk) bool { return s.write(s.st.Chunk(c)) }

func (s *messageSink) SendError(e *chat.ErrorEvent) bool { return s.write(s.st.Error(e)) }

func (s *messageSink) Done() { s.write(s.st.Done()) }

// write sends events; false means the client is gone. A chunk that makes
// no event (the gateway's error chunk) writes nothing.
func (s *messageSink) write(events []messages.Event) bool {
	for _, e := range events {
		if !s.sse.JSON(e.Name, e.Data) {
			return false
		}
	}
	return !s.sse.Gone()
}

// sseEvents writes Responses stream events as named server-sent events
// (event: <type>, data: <json>).
type sseEvents struct {
	w   streamWriter
	sse *sse.Writer
}

func (e *sseEvents) Open(responseID string) {
	e.sse = openStream(e.w, responses.GenerationID(responseID)) // the usage log's id, as on every endpoint
}

func (e *sseEvents) Event(typ string, v any) bool { return e.sse != nil && e.sse.JSON(typ, v) }

// geminiSink writes a gateway stream as Gemini's chunks: server-sent events
// (alt=sse, lines ending in CRLF as Google's do) or, as Google does without
// it, one JSON array written as the chunks come.
type geminiSink struct {
	w     streamWriter
	array bool
	st    *geminiapi.Stream
	sse   *sse.Writer
	n     int // chunks written
}

func (s *geminiSink) Open(generationID string) {
	s.st = geminiapi.NewStream(generationID)
	h := s.w.Header()
	if s.array {
		h.Set("Content-Type", "application/json")
	} else {
		h.Set("Content-Type", "text/event-stream")
	}
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Beaver-Generation-Id", generationID)
	s.w.WriteHeader(http.StatusOK)
	s.sse = sse.NewWriter(s.w).CRLF()
	if s.array {
		s.sse.Raw([]byte("["))
	}
	s.w.Flush()
}

func (s *geminiSink) Send(c *chat.Chunk) bool {
	if r := s.st.Chunk(c); r != nil {
		return s.send(r)
	}
	return !s.sse.Gone()
}

// SendError ends the stream with the error in Gemini's envelope, as Google
// does when a stream fails midway.
func (s *geminiSink) SendError(e *chat.ErrorEvent) bool {
	ok := s.send(map[string]any{"error": map[string]any{"code": http.StatusInternalServerError,
		"message": e.Error.Message, "status": "INTERNAL"}})
	if s.array {
		ok = s.sse.Raw([]byte("]")) // the stream ends here: keep the array well formed
	}
	return ok
}

func (s *geminiSink) Done() {
	s.send(s.st.Done())
	if s.array {
		s.sse.Raw([]byte("]"))
	}
}

func (s *geminiSink) send(v any) bool {
	if !s.array {
		return s.sse.JSON("", v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return !s.sse.Gone() // cannot happen for these values; one that did would be skipped
	}
	if s.n > 0 {
		b = append([]byte(",\r\n"), b...)
	}
	s.n++
	return s.sse.Raw(b)
}
