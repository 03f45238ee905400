// Package sentry is a fake Sentry ingest endpoint: it accepts envelopes at
// /api/<project>/envelope/ and keeps them, raw and as parsed events, for
// tests.
package sentry

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/beaver-gateway/beaver/internal/fakes/reqbody"
)

var envelopePath = regexp.MustCompile(`^/api/[0-9]+/envelope/$`)

// Ingest receives envelopes; serve it with httptest.NewServer and use DSN.
type Ingest struct {
	mu        sync.Mutex
	envelopes [][]byte
	events    []map[string]any
}

// New returns an empty ingest.
func New() *Ingest { return &Ingest{} }

// DSN is the DSN of project 1 at the ingest served at baseURL.
func DSN(baseURL string) string {
	u, err := url.Parse(baseURL)
	if err != nil {
		panic(err)
	}
	u.User = url.User("publickey")
	u.Path = "/1"
	return u.String()
}

// ServeHTTP keeps an envelope.
func (in *Ingest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !envelopePath.MatchString(r.URL.Path) {
		http.NotFound(w, r)
		return
	}
	b, err := reqbody.Read(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	events := parse(b)
	in.mu.Lock()
	in.envelopes = append(in.envelopes, b)
	in.events = append(in.events, events...)
	in.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{}`))
}

// Raw is every envelope received, as sent.
func (in *Ingest) Raw() [][]byte {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([][]byte(nil), in.envelopes...)
}

// WaitEvents waits until n events have arrived or ctx ends, and returns
// the events received. The SDK's transport sends in the background and its
// Flush can return before the last envelope is out, so a test waits for
// what it expects instead of reading right after Flush.
func (in *Ingest) WaitEvents(ctx context.Context, n int) []map[string]any {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if ev := in.Events(); len(ev) >= n {
			return ev
		}
		select {
		case <-ctx.Done():
			return in.Events()
		case <-tick.C:
		}
	}
}

// Events are the event items of the envelopes received.
func (in *Ingest) Events() []map[string]any {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]map[string]any(nil), in.events...)
}

// parse reads an envelope: a header line, then items, each a header line
// and a payload (of the header's length, or up to the next newline).
func parse(b []byte) []map[string]any {
	var events []map[string]any
	_, rest, ok := bytes.Cut(b, []byte("\n"))
	for ok && len(rest) > 0 {
		var head []byte
		head, rest, ok = bytes.Cut(rest, []byte("\n"))
		var h struct {
			Type   string          `json:"type"`
			Length json.RawMessage `json:"length"`
		}
		if json.Unmarshal(head, &h) != nil {
			break
		}
		var payload []byte
		if n, err := strconv.Atoi(string(h.Length)); err == nil && n <= len(rest) {
			payload, rest = rest[:n], bytes.TrimPrefix(rest[n:], []byte("\n"))
		} else {
			payload, rest, ok = bytes.Cut(rest, []byte("\n"))
		}
		if h.Type == "event" {
			var e map[string]any
			if json.Unmarshal(payload, &e) == nil {
				events = append(events, e)
			}
		}
	}
	return events
}
