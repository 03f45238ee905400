package api_test

// Slow request bodies: a body must arrive within BEAVER_BODY_READ_TIMEOUT,
// one address may send only BEAVER_MAX_BODIES_PER_IP anonymous bodies at
// once, and none of this may cut a response that streams for longer than
// the body timeout. Who pays for a body (pools, accounts, shedding) is
// tested in bodygate_test.go. The router is served by
// api.NewHTTPServer on a real TCP listener, as `beaver api` serves it, so
// the connection deadlines are real.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/api"
	"github.com/beaver-gateway/beaver/internal/config"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
)

const testBodyTimeout = 300 * time.Millisecond

// serveLikeBinary serves h's router through api.NewHTTPServer on the
// server's own listener (Listen), as `beaver api` does, and points
// h's helpers (do, stream, ...) at it. It returns the listen address.
func serveLikeBinary(t *testing.T, h *harness) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(h.Server.Handler())
	ts.Config = api.NewHTTPServer(h.Cfg, h.Server.Handler())
	ts.Listener = h.Server.Listen(ts.Listener)
	ts.Start()
	t.Cleanup(ts.Close)
	h.URL, h.Client = ts.URL, ts.Client()
	h.Client.Timeout = 30 * time.Second
	return ts.Listener.Addr().String()
}

// rawConn is one HTTP/1.1 connection written by hand, so a test can send
// headers and then as much of the body as it likes, as slowly as it likes.
type rawConn struct {
	t    *testing.T
	name string
	conn net.Conn
	br   *bufio.Reader
}

// dialRaw connects to addr, from fromIP when set (any 127/8 address is
// loopback on Linux); ok is false when that source address cannot be used.
func dialRaw(t *testing.T, addr, fromIP string) (rc *rawConn, ok bool) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if fromIP != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(fromIP)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		if fromIP != "" {
			return nil, false
		}
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{t: t, conn: c, br: bufio.NewReader(c)}, true
}

// head sends a POST's request line and headers, announcing n body bytes
// (n < 0: a chunked body).
func (rc *rawConn) head(path, token string, n int) {
	rc.t.Helper()
	rc.name = "POST " + path
	h := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: beaver.test\r\nContent-Type: application/json\r\n", path)
	if n >= 0 {
		h += fmt.Sprintf("Content-Length: %d\r\n", n)
	} else {
		h += "Transfer-Encoding: chunked\r\n"
	}
	if token != "" {
		h += "Authorization: Bearer " + token + "\r\n"
	}
	if err := rc.send(h + "\r\n"); err != nil {
		rc.t.Fatalf("%s: send headers: %v", rc.name, err)
	}
}

func (rc *rawConn) send(s string) error {
	_ = rc.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := io.WriteString(rc.conn, s)
	return err
}

// answer reads one response, waiting at most wait for it.
func (rc *rawConn) answer(wait time.Duration) (*resp, error) {
	_ = rc.conn.SetReadDeadline(time.Now().Add(wait))
	res, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	r := &resp{t: rc.t, req: rc.name, Status: res.StatusCode, Header: res.Header, Raw: raw}
	if len(raw) > 0 && raw[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		_ = dec.Decode(&r.JSON)
	}
	return r, nil
}

// mustAnswer is answer that fails the test when no response comes.
func (rc *rawConn) mustAnswer() *resp {
	rc.t.Helper()
	r, err := rc.answer(10 * time.Second)
	if err != nil {
		rc.t.Fatalf("%s: no answer: %v", rc.name, err)
	}
	return r
}

// closedByServer waits for the server to close the connection.
func (rc *rawConn) closedByServer() {
	rc.t.Helper()
	_ = rc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := rc.br.ReadByte()
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		rc.t.Fatalf("%s: the server kept the connection open (err %v)", rc.name, err)
	}
}

// metric reads one sample of the Prometheus text at /metrics (0 if absent).
func metric(h *harness, sample string) float64 {
	h.t.Helper()
	r := h.do("GET", "/metrics", "", nil).want(200)
	for _, line := range strings.Split(string(r.Raw), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				h.t.Fatalf("metric %s: %q", sample, line)
			}
			return f
		}
	}
	return 0
}

const (
	bodiesInFlight = "beaver_http_request_bodies_in_flight"
	bodiesTimedOut = `beaver_http_request_bodies_refused_total{reason="timeout"}`
)

func TestSlowBodyIsCutAfterBodyTimeout(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{}, func(c *config.Config) { c.BodyReadTimeout = testBodyTimeout })
		addr := serveLikeBinary(t, inf.harness)
		u, key := inf.fundedKey("10", nil)
		inf.do("POST", "/v1/chat/completions", key, chatBody("openai/gpt-4o-mini", "hello [[words:3]]")).want(200)
		before, _ := inf.balance(u.Token)
		inf.Fake.Reset()

		// Headers, then part of the body, then nothing: 408 in the
		// contract's shape, and the connection is closed.
		const part = `{"model":"openai/gpt-4o-mini",`
		for _, route := range []struct {
			path, token string
			length      int // -1: chunked
			sent        string
		}{
			{"/v1/chat/completions", key, 200, part},
			{"/v1/chat/completions", key, -1, fmt.Sprintf("%x\r\n%s\r\n", len(part), part)},
			{"/auth/login", "", 200, part},
			{"/auth/refresh", "", 200, part},
		} {
			rc, _ := dialRaw(t, addr, "")
			rc.head(route.path, route.token, route.length)
			if err := rc.send(route.sent); err != nil {
				t.Fatal(err)
			}
			rc.mustAnswer().wantError(http.StatusRequestTimeout, "request_timeout")
			rc.closedByServer()
		}

		// A body trickled one byte at a time (the attack: one byte every
		// 15 s keeps a deadline-less server reading forever) is cut once
		// the body timeout has passed, however steadily bytes come. The
		// answer may be lost when the connection is reset under bytes
		// still in flight; either way the server must end it.
		rc, _ := dialRaw(t, addr, "")
		rc.head("/v1/chat/completions", key, 1000)
		stop, stopped := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(stopped)
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for i := 0; i < 400; i++ { // at most 20 s, far past the 300 ms timeout
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if rc.send(" ") != nil {
					return
				}
			}
		}()
		r, err := rc.answer(10 * time.Second)
		close(stop)
		<-stopped
		var ne net.Error
		switch {
		case err == nil:
			r.wantError(http.StatusRequestTimeout, "request_timeout")
		case errors.As(err, &ne) && ne.Timeout():
			t.Fatalf("a trickled body kept its connection open for 10 s (body timeout %s)", testBodyTimeout)
		default:
			t.Logf("trickled body: the connection ended without a readable answer: %v", err)
		}

		// Nothing reached the upstream, nothing was charged or held, no
		// slot stays taken, and normal requests keep working.
		if n := len(inf.Fake.Requests()); n != 0 {
			t.Fatalf("the upstream was called %d times for bodies that never arrived", n)
		}
		if after, reserved := inf.balance(u.Token); after != before || reserved != 0 {
			t.Fatalf("balance %d -> %d, reserved %d", before, after, reserved)
		}
		eventually(t, 10*time.Second, "no body in flight", func() bool { return metric(inf.harness, bodiesInFlight) == 0 })
		if n := metric(inf.harness, bodiesTimedOut); n < 5 {
			t.Fatalf("%s = %v, want >= 5", bodiesTimedOut, n)
		}
		r = inf.do("POST", "/v1/chat/completions", key, chatBody("openai/gpt-4o-mini", "again [[words:3]]")).want(200)
		if r.num("usage.completion_tokens") != 3 {
			t.Fatalf("normal request after slow ones: %s", r.Raw)
		}
		inf.invariant(u.ID)
	})
}

// The body's read deadline is gone once the body has arrived: a response
// that takes (streamed or not) several times the body timeout completes, is
// not taken for a client disconnect, and is charged in full.
func TestResponseOutlastsBodyTimeout(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		const words, delay = 10, 100 * time.Millisecond // at least 1 s per answer: > 3× the body timeout
		inf := newInference(t, dialect, fakeupstream.Options{ChunkDelay: delay}, func(c *config.Config) { c.BodyReadTimeout = testBodyTimeout })
		serveLikeBinary(t, inf.harness)
		u, key := inf.fundedKey("10", nil)
		for _, model := range []string{"openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-20241022"} {
			start := time.Now()
			res, data := inf.stream(key, chatBody(model, fmt.Sprintf("stream slowly [[words:%d]]", words)))
			if took := time.Since(start); res.StatusCode != 200 || took < words*delay {
				t.Fatalf("%s: status %d after %s (test premise: the stream lasts >= %s)", model, res.StatusCode, took, words*delay)
			}
			chunks, done := parseChunks(t, data)
			if !done || len(chunks) < 2 {
				t.Fatalf("%s: stream did not complete: %v", model, data)
			}
			last := chunks[len(chunks)-1]
			if last.Usage == nil || last.Usage.CompletionTokens != words {
				t.Fatalf("%s: usage chunk %s", model, data[len(data)-2])
			}
			for _, c := range chunks {
				if c.Error != nil {
					t.Fatalf("%s: error chunk %+v", model, c.Error)
				}
			}
			g := inf.do("GET", "/v1/generation?id="+chunks[0].ID, key, nil).want(200)
			if g.get("data.cancelled") != false || g.get("data.error") != nil || g.num("data.completion_tokens") != words {
				t.Fatalf("%s: generation %s", model, g.Raw)
			}
		}
		r := inf.do("POST", "/v1/chat/completions", key, chatBody("openai/gpt-4o-mini", fmt.Sprintf("slowly [[words:%d]]", words))).want(200)
		if r.num("usage.completion_tokens") != words {
			t.Fatalf("non-streaming: %s", r.Raw)
		}
		if n := inf.Fake.Cancelled(); n != 0 {
			t.Fatalf("%d upstream responses were cancelled", n)
		}
		inf.invariant(u.ID)
		inf.waitReservedZero(u.ID)
	})
}

// One address may send only so many anonymous bodies at once: the next one
// is refused with 429 before its body is read, requests without a body are
// not counted, another address is not refused, and slots come back when
// bodies end (arrived in full, or the client gone).
func TestBodiesPerAddressAreCapped(t *testing.T) {
	const slots = 2
	const perIPRefused = `beaver_http_request_bodies_refused_total{reason="per_ip"}`
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect, harnessOpts{Config: func(c *config.Config) {
			c.BodyReadTimeout = 20 * time.Second // the stalled bodies must outlive the test's steps
			c.MaxBodiesPerIP = slots
		}})
		addr := serveLikeBinary(t, h)
		const body = `{"refresh_token":"not-a-token"}`
		stall := func(from string) (*rawConn, bool) {
			rc, ok := dialRaw(t, addr, from)
			if ok {
				rc.head("/auth/refresh", "", len(body))
				if err := rc.send(body[:10]); err != nil {
					t.Fatal(err)
				}
			}
			return rc, ok
		}
		s1, _ := stall("")
		s2, _ := stall("")
		eventually(t, 10*time.Second, "two bodies in flight", func() bool { return metric(h, bodiesInFlight) == slots })

		// The third body from the same address is refused at once, though
		// its body has not arrived (nor ever will).
		p, _ := stall("")
		r := p.mustAnswer().wantError(http.StatusTooManyRequests, "rate_limit_exceeded")
		if r.Header.Get("Retry-After") != "1" {
			t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
		}
		p.closedByServer()
		if n := metric(h, perIPRefused); n != 1 {
			t.Fatalf("%s = %v", perIPRefused, n)
		}

		// Requests without a body are not counted.
		h.do("GET", "/health", "", nil).want(200)
		if r := h.do("POST", "/auth/refresh", "", ""); r.Status == http.StatusTooManyRequests {
			t.Fatalf("a POST without a body was refused: %s", r.Raw)
		}

		// Another address is not refused.
		if o, ok := stall("127.0.0.2"); ok {
			eventually(t, 10*time.Second, "the other address's body in flight", func() bool { return metric(h, bodiesInFlight) == slots+1 })
			_ = o.conn.Close()
		} else {
			t.Log("127.0.0.2 is not usable as a source address here; skipping the other-address check")
		}

		// Slots come back: one body arrives in full (and is answered as
		// usual), the other client goes away.
		if err := s1.send(body[10:]); err != nil {
			t.Fatal(err)
		}
		if r := s1.mustAnswer(); r.Status == http.StatusTooManyRequests || r.Status < 400 {
			t.Fatalf("the completed body: %d %s", r.Status, r.Raw)
		}
		_ = s2.conn.Close()
		eventually(t, 10*time.Second, "no body in flight", func() bool { return metric(h, bodiesInFlight) == 0 })
		for i := 0; i < slots; i++ {
			if r := h.do("POST", "/auth/refresh", "", body); r.Status == http.StatusTooManyRequests {
				t.Fatalf("refused after the slots were freed: %s", r.Raw)
			}
		}
	})
}
