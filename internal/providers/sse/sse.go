// Package sse reads and writes server-sent events (the text/event-stream
// format every provider streams in), in one place for the adapters, the fake
// upstream and the API.
package sse

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// MaxEventBytes bounds one event's data, so a broken upstream cannot make the
// reader buffer without limit.
const MaxEventBytes = 8 << 20

// ErrEventTooLarge is returned by Next for an event above MaxEventBytes.
var ErrEventTooLarge = errors.New("sse: event larger than 8 MiB")

// Event is one dispatched event. Data is valid until the next call to Next.
type Event struct {
	Name string // the "event:" field; "" when absent
	Data []byte // the "data:" lines joined with "\n"
}

// Reader parses an event stream.
type Reader struct {
	r    *bufio.Reader
	data []byte
	line []byte
}

// readBuffer is a Reader's buffer. Events are a few hundred bytes and
// longer lines are read in several pieces (readLine), while every open
// stream keeps its buffer: thousands of streams at once made 32 KiB a
// third of a stream's memory. The body it reads is buffered already (the
// upstream connection's reader), so this one only needs to hold a line.
const readBuffer = 1 << 10

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, readBuffer)}
}

// Next returns the next event that has data. It returns io.EOF when the stream
// ends (an event not terminated by a blank line is dropped, as the SSE spec
// says), and the underlying reader's error as-is otherwise.
func (r *Reader) Next() (Event, error) {
	var ev Event
	r.data = r.data[:0]
	hasData := false
	for {
		line, err := r.readLine()
		if err != nil {
			return Event{}, err
		}
		if len(line) == 0 { // blank line: dispatch
			if hasData {
				ev.Data = r.data
				return ev, nil
			}
			ev.Name = ""
			continue
		}
		if line[0] == ':' { // comment, used as keep-alive
			continue
		}
		field, value, _ := bytes.Cut(line, []byte{':'})
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		switch string(field) {
		case "data":
			if hasData {
				r.data = append(r.data, '\n')
			}
			if len(r.data)+len(value) > MaxEventBytes {
				return Event{}, ErrEventTooLarge
			}
			r.data = append(r.data, value...)
			hasData = true
		case "event":
			ev.Name = string(value)
		}
	}
}

// readLine returns the next line without its "\n" or "\r\n" ending.
func (r *Reader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	for {
		chunk, err := r.r.ReadSlice('\n')
		r.line = append(r.line, chunk...)
		if len(r.line) > MaxEventBytes {
			return nil, ErrEventTooLarge
		}
		switch {
		case err == nil:
			line := r.line[:len(r.line)-1]
			return bytes.TrimSuffix(line, []byte{'\r'}), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, io.EOF // a line without its ending is incomplete
		default:
			return nil, err
		}
	}
}

// Writer writes events to an HTTP response, flushing after each one so that
// every event leaves at once. It is the one event writer: the fake
// upstreams' and every stream Beaver answers with (chat, Anthropic
// messages, Responses, Gemini).
type Writer struct {
	w    io.Writer
	f    http.Flusher
	buf  []byte
	eol  string
	gone bool
}

// NewWriter returns a Writer on w. It sets no headers: call SetHeaders first
// when w is an http.ResponseWriter.
func NewWriter(w io.Writer) *Writer {
	f, _ := w.(http.Flusher)
	return &Writer{w: w, f: f, eol: "\n"}
}

// CRLF makes w end its lines with "\r\n", as Google's servers do.
func (w *Writer) CRLF() *Writer {
	w.eol = "\r\n"
	return w
}

// SetHeaders sets the headers of an event stream response.
func SetHeaders(h http.Header) {
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no") // tell nginx-like proxies not to buffer
}

// AppendEvent appends one event with an optional name ("event: <name>",
// then a "data: " line for each line of data, then a blank line).
func AppendEvent(b []byte, name string, data []byte) []byte { return appendEvent(b, name, data, "\n") }

func appendEvent(b []byte, name string, data []byte, eol string) []byte {
	if name != "" {
		b = append(b, "event: "...)
		b = append(b, name...)
		b = append(b, eol...)
	}
	for {
		line, rest, more := bytes.Cut(data, []byte{'\n'})
		b = append(b, "data: "...)
		b = append(b, line...)
		b = append(b, eol...)
		if !more {
			break
		}
		data = rest
	}
	return append(b, eol...)
}

// Event writes one event with an optional name; data may span lines.
func (w *Writer) Event(name string, data []byte) error {
	w.buf = appendEvent(w.buf[:0], name, data, w.eol)
	return w.write(w.buf)
}

// Data writes an unnamed event.
func (w *Writer) Data(data []byte) error { return w.Event("", data) }

// JSON writes v, JSON-encoded, as one event named name ("" = unnamed). It
// reports whether the client is still there: false once a write failed. A
// value that does not encode is skipped.
func (w *Writer) JSON(name string, v any) bool {
	if w.gone {
		return false
	}
	b, err := json.Marshal(v)
	if err != nil {
		return true
	}
	return w.Event(name, b) == nil
}

// Raw writes b as it is (a stream that is not made of events, such as
// Gemini's JSON array), flushed; false once a write failed.
func (w *Writer) Raw(b []byte) bool {
	if w.gone {
		return false
	}
	return w.write(b) == nil
}

// Gone reports whether a write failed: the client left.
func (w *Writer) Gone() bool { return w.gone }

// Comment writes a comment line, which clients ignore (a keep-alive).
func (w *Writer) Comment(text string) error {
	b := append(w.buf[:0], ": "...)
	b = append(b, text...)
	b = append(b, w.eol...)
	b = append(b, w.eol...)
	w.buf = b
	return w.write(b)
}

func (w *Writer) write(b []byte) error {
	if _, err := w.w.Write(b); err != nil {
		w.gone = true
		return err
	}
	if w.f != nil {
		w.f.Flush()
	}
	return nil
}
