package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/config"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/models"
)

// A stream detached from its handler answers as net/http would (status,
// headers, chunked body), and, its client keeping the connection alive,
// gives the connection back to the server: the next requests, streamed and
// not, are read from it. Each answer is billed once. A client that asks
// for the connection to close gets the stream, then the close.
func TestDetachedStreamGivesItsConnectionBack(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{}, func(c *config.Config) { c.StreamDetachAfter = 0 })
		addr := serveLikeBinary(t, inf.harness)
		u, key := inf.fundedKey("5", nil)
		rc, _ := dialRaw(t, addr, "")
		for i, stream := range []bool{true, true, false, true, false} { // each answer comes after the last stream gave the connection back
			body, _ := json.Marshal(map[string]any{"model": "openai/gpt-4o-mini", "stream": stream,
				"messages": []any{map[string]string{"role": "user", "content": "hi [[words:5]]"}}})
			before, _ := inf.balance(u.Token)
			rc.head("/v1/chat/completions", key, len(body))
			if err := rc.send(string(body)); err != nil {
				t.Fatalf("request %d on the kept connection: %v", i, err)
			}
			r := rc.mustAnswer()
			if r.Status != 200 || r.Header.Get("X-Request-Id") == "" {
				t.Fatalf("request %d: %d %v %s", i, r.Status, r.Header, r.Raw)
			}
			genID := r.Header.Get("X-Beaver-Generation-Id")
			var cost int64
			if !stream {
				fmt.Sscan(r.Header.Get("X-Beaver-Cost-Micros"), &cost)
			} else {
				if ct := r.Header.Get("Content-Type"); ct != "text/event-stream" || r.Header.Get("Date") == "" {
					t.Fatalf("stream %d: headers %v", i, r.Header)
				}
				if !bytes.HasSuffix(r.Raw, []byte("data: [DONE]\n\n")) {
					t.Fatalf("stream %d does not end with [DONE]: %q", i, r.Raw)
				}
				var data []string
				for _, line := range strings.Split(string(r.Raw), "\n") {
					if d, ok := strings.CutPrefix(line, "data: "); ok {
						data = append(data, d)
					}
				}
				chunks, done := parseChunks(t, data)
				last := chunks[len(chunks)-1]
				if !done || last.Usage == nil || last.ID != genID {
					t.Fatalf("stream %d: %q", i, r.Raw)
				}
				cost = last.Usage.CostMicros
			}
			after, _ := inf.balance(u.Token)
			inf.chargedOnce(u.ID, genID, cost, before, after)
		}
		if n := metric(inf.harness, `beaver_http_streams_total{relay="detached_kept"}`); n != 3 {
			t.Fatalf("%v streams detached and kept alive, want 3", n)
		}

		// Requests pipelined behind a stream (sent before its answer) are
		// answered in turn on the same connection.
		rc, _ = dialRaw(t, addr, "")
		body := `{"model":"openai/gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`
		req := fmt.Sprintf("POST /v1/chat/completions HTTP/1.1\r\nHost: beaver.test\r\nContent-Type: application/json\r\n"+
			"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s", key, len(body), body)
		rc.name = "pipelined streams"
		_ = rc.send(req + req + req)
		for i := 0; i < 3; i++ {
			if r := rc.mustAnswer().want(200); !bytes.HasSuffix(r.Raw, []byte("data: [DONE]\n\n")) {
				t.Fatalf("pipelined stream %d: %q", i, r.Raw)
			}
		}

		rc, _ = dialRaw(t, addr, "")
		rc.name = "POST /v1/chat/completions, Connection: close"
		_ = rc.send("POST /v1/chat/completions HTTP/1.1\r\nHost: beaver.test\r\nConnection: close\r\nContent-Type: application/json\r\n" +
			fmt.Sprintf("Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s", key, len(body), body))
		r := rc.mustAnswer().want(200)
		if !bytes.HasSuffix(r.Raw, []byte("data: [DONE]\n\n")) {
			t.Fatalf("headers %v, body %q", r.Header, r.Raw)
		}
		rc.closedByServer()
		eventually(t, 10*time.Second, "the stream counted as detached and closed", func() bool {
			return metric(inf.harness, `beaver_http_streams_total{relay="detached_closed"}`) == 1
		})
	})
}

// A stream still running after StreamDetachAfter is detached midway
// (net/http has usually sent its headers and first chunks by then): the
// chunks go on on the connection, and a client that leaves then is noticed
// at once (the upstream is cancelled) and billed for what was generated,
// once; its connection is closed, not handed back. A stream that ends
// before is answered by its handler.
func TestStreamDetachedMidway(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{}, func(c *config.Config) { c.StreamDetachAfter = 20 * time.Millisecond })
		addr := serveLikeBinary(t, inf.harness)
		u, key := inf.fundedKey("5", nil)

		rc, _ := dialRaw(t, addr, "")
		body := `{"model":"openai/gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi [[stall:3]]"}]}`
		rc.head("/v1/chat/completions", key, len(body))
		_ = rc.send(body)
		eventually(t, 10*time.Second, "the stalled stream detached", func() bool {
			return metric(inf.harness, "beaver_http_streams_detached") == 1
		})
		_ = rc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		res, err := http.ReadResponse(rc.br, nil)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("stalled stream: %v %v", res, err)
		}
		genID := res.Header.Get("X-Beaver-Generation-Id")
		for words := 0; words < 3; {
			line, err := rc.br.ReadString('\n')
			if err != nil {
				t.Fatalf("reading the stalled stream: %v", err)
			}
			if strings.Contains(line, `"content":"`) && !strings.Contains(line, `"content":""`) {
				words++
			}
		}
		_ = rc.conn.Close()
		eventually(t, 10*time.Second, "the upstream cancelled and the stream closed", func() bool {
			return inf.Fake.Cancelled() == 1 && metric(inf.harness, "beaver_http_streams_detached") == 0
		})
		var log models.UsageLog
		eventually(t, 10*time.Second, "the cut stream billed", func() bool {
			return inf.DB.Where("id = ?", genID).Take(&log).Error == nil
		})
		if !log.Cancelled || log.CompletionTokens != 3 || log.ChargedMicros <= 0 {
			t.Fatalf("usage log %+v", log)
		}
		inf.invariant(u.ID)
		inf.waitReservedZero(u.ID)
		if n := metric(inf.harness, `beaver_http_streams_total{relay="detached_closed"}`); n != 1 {
			t.Fatalf("%v streams detached and closed, want the one its client left", n)
		}

		// Before StreamDetachAfter, a stream is its handler's.
		inf = newInference(t, dialect, fakeupstream.Options{}, func(c *config.Config) { c.StreamDetachAfter = time.Hour })
		serveLikeBinary(t, inf.harness)
		_, key = inf.fundedKey("5", nil)
		_, data := inf.stream(key, map[string]any{"model": "openai/gpt-4o-mini",
			"messages": []any{map[string]string{"role": "user", "content": "hi [[words:3]]"}}})
		if _, done := parseChunks(t, data); !done {
			t.Fatalf("short stream: %v", data)
		}
		if n := metric(inf.harness, `beaver_http_streams_total{relay="handler"}`); n != 1 {
			t.Fatalf("%v streams answered by their handler, want 1", n)
		}
	})
}
