package sse_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/providers/sse"
)

type ev struct{ name, data string }

func readAll(t *testing.T, input string) ([]ev, error) {
	t.Helper()
	r := sse.NewReader(strings.NewReader(input))
	var out []ev
	for {
		e, err := r.Next()
		if err != nil {
			return out, err
		}
		out = append(out, ev{e.Name, string(e.Data)})
	}
}

func TestReader(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []ev
	}{
		{"openai style", "data: {\"a\":1}\n\ndata: [DONE]\n\n", []ev{{"", `{"a":1}`}, {"", "[DONE]"}}},
		{"named events", "event: message_start\ndata: {}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n",
			[]ev{{"message_start", "{}"}, {"ping", `{"type": "ping"}`}}},
		{"crlf (gemini)", "data: {\"x\":1}\r\n\r\ndata: {\"x\":2}\r\n\r\n", []ev{{"", `{"x":1}`}, {"", `{"x":2}`}}},
		{"multi-line data", "data: a\ndata: b\n\n", []ev{{"", "a\nb"}}},
		{"comments and no space", ": keep-alive\n\ndata:tight\n\n", []ev{{"", "tight"}}},
		{"name without data is dropped", "event: x\n\ndata: y\n\n", []ev{{"", "y"}}},
		{"unterminated last event dropped", "data: a\n\ndata: b", []ev{{"", "a"}}},
		{"unknown fields ignored", "id: 1\nretry: 5\ndata: z\n\n", []ev{{"", "z"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(t, tt.input)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("err = %v, want io.EOF", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("event %d = %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestReaderLongLineAndError(t *testing.T) {
	long := strings.Repeat("x", 100_000)
	got, err := readAll(t, "data: "+long+"\n\n")
	if !errors.Is(err, io.EOF) || len(got) != 1 || got[0].data != long {
		t.Fatalf("long line: %d events, err %v", len(got), err)
	}
	boom := errors.New("boom")
	r := sse.NewReader(io.MultiReader(strings.NewReader("data: a\n\ndata: b"), errReader{boom}))
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the reader's error", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestWriter(t *testing.T) {
	var buf bytes.Buffer
	w := sse.NewWriter(&buf)
	_ = w.Event("message_stop", []byte(`{"type":"message_stop"}`))
	_ = w.Data([]byte("line1\nline2"))
	_ = w.Comment("ping")
	want := "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\ndata: line1\ndata: line2\n\n: ping\n\n"
	if buf.String() != want {
		t.Fatalf("wrote %q, want %q", buf.String(), want)
	}
	got, err := readAll(t, buf.String())
	if !errors.Is(err, io.EOF) || len(got) != 2 || got[1].data != "line1\nline2" {
		t.Fatalf("read back %v, %v", got, err)
	}
}
