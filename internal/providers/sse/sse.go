// Package sse reads and writes server-sent events (the text/event-stream
// format every provider streams in), in one place for the adapters, the fake
// upstream and the API.
package sse

import (
	"bufio"
	"bytes"
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

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 32<<10)}
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
// every event leaves at once.
type Writer struct {
	w   io.Writer
	f   http.Flusher
	buf []byte
}

// NewWriter returns a Writer on w. It sets no headers: call SetHeaders first
// when w is an http.ResponseWriter.
func NewWriter(w io.Writer) *Writer {
	f, _ := w.(http.Flusher)
	return &Writer{w: w, f: f}
}

// SetHeaders sets the headers of an event stream response.
func SetHeaders(h http.Header) {
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no") // tell nginx-like proxies not to buffer
}

// Event writes one event with an optional name; data may span lines.
func (w *Writer) Event(name string, data []byte) error {
	b := w.buf[:0]
	if name != "" {
		b = append(b, "event: "...)
		b = append(b, name...)
		b = append(b, '\n')
	}
	for {
		line, rest, more := bytes.Cut(data, []byte{'\n'})
		b = append(b, "data: "...)
		b = append(b, line...)
		b = append(b, '\n')
		if !more {
			break
		}
		data = rest
	}
	b = append(b, '\n')
	w.buf = b
	return w.write(b)
}

// Data writes an unnamed event.
func (w *Writer) Data(data []byte) error { return w.Event("", data) }

// Comment writes a comment line, which clients ignore (a keep-alive).
func (w *Writer) Comment(text string) error {
	b := append(w.buf[:0], ": "...)
	b = append(b, text...)
	b = append(b, "\n\n"...)
	w.buf = b
	return w.write(b)
}

func (w *Writer) write(b []byte) error {
	if _, err := w.w.Write(b); err != nil {
		return err
	}
	if w.f != nil {
		w.f.Flush()
	}
	return nil
}
