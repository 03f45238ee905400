package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func newTestClient(t *testing.T, base string) *Client {
	t.Helper()
	c, err := NewClient(Config{Name: "test", BaseURL: base, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if c.h1 == nil {
		t.Fatal("expected Beaver's own transport (is a proxy set in the environment?)")
	}
	t.Cleanup(c.CloseIdle)
	return c
}

func call(t *testing.T, c *Client, path, body string) (int, string, error) {
	t.Helper()
	b, err := c.Open(context.Background(), Request{URL: c.cfg.BaseURL + path, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)})
	if err != nil {
		return 0, "", err
	}
	defer b.Close()
	data, err := io.ReadAll(b)
	return b.Status, string(data), err
}

// Sequential calls share one kept-alive connection; the request arrives as
// sent (method, path, headers, body), whether the answer has a length or
// is chunked.
func TestH1ReusesConnections(t *testing.T) {
	var seen atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen.Store(r.Method + " " + r.URL.RequestURI() + " " + r.Header.Get("Content-Type") + " " + string(b))
		if r.URL.Query().Get("chunked") != "" {
			w.Write([]byte("part one, "))
			w.(http.Flusher).Flush()
			w.Write([]byte("part two"))
			return
		}
		w.Write([]byte("ok:" + string(b)))
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL+"/v1")
	for i := 0; i < 5; i++ {
		st, body, err := call(t, c, "/chat?x=1", `{"n":1}`)
		if err != nil || st != 200 || body != `ok:{"n":1}` {
			t.Fatalf("call %d: %d %q %v", i, st, body, err)
		}
	}
	if got := seen.Load().(string); got != `POST /v1/chat?x=1 application/json {"n":1}` {
		t.Fatalf("upstream saw %q", got)
	}
	if _, body, err := call(t, c, "/chat?chunked=1", "{}"); err != nil || body != "part one, part two" {
		t.Fatalf("chunked: %q %v", body, err)
	}
	if n := c.h1.dials.Load(); n != 1 {
		t.Fatalf("%d connections for 6 sequential calls", n)
	}
}

// A kept-alive connection the server closed while idle is noticed when
// the answer cannot be read, and the request goes out again on a new one.
func TestH1RetriesAConnectionClosedWhileIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var served atomic.Int64
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func(conn net.Conn) {
				defer conn.Close()
				buf := make([]byte, 4096)
				if _, err := conn.Read(buf); err != nil {
					return
				}
				served.Add(1)
				io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				// keep-alive promised, then closed while idle
				time.Sleep(20 * time.Millisecond)
			}(conn)
		}
	}()
	c := newTestClient(t, "http://"+ln.Addr().String())
	for i := 0; i < 3; i++ {
		time.Sleep(50 * time.Millisecond) // the previous connection is gone by now
		if st, body, err := call(t, c, "/x", "{}"); err != nil || st != 200 || body != "ok" {
			t.Fatalf("call %d: %d %q %v", i, st, body, err)
		}
	}
	if served.Load() != 3 {
		t.Fatalf("served %d requests for 3 calls", served.Load())
	}
}

// Closing a body before its end (a client that went away) closes the
// connection, so the upstream stops generating; the next call dials anew.
// Cancelling the context ends a read that waits on the upstream.
func TestH1AbortAndCancel(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("first"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := newTestClient(t, srv.URL)
	b, err := c.Open(context.Background(), Request{URL: srv.URL + "/s", Body: []byte("{}")})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(b, buf); err != nil {
		t.Fatal(err)
	}
	b.Close()

	ctx, cancel := context.WithCancel(context.Background())
	b, err = c.Open(ctx, Request{URL: srv.URL + "/s", Body: []byte("{}")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(b, buf); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err = b.Read(buf)
	var ue *Error
	if err == nil || !errors.As(err, &ue) { // a Read the cancel did not end would never return
		t.Fatalf("read after cancel: %v", err)
	}
	b.Close()
	if n := c.h1.dials.Load(); n != 2 {
		t.Fatalf("%d connections; an aborted one must not be reused", n)
	}
}

// https goes over TLS with HTTP/1.1 (no HTTP/2 negotiation).
func TestH1TLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(r.Proto))
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c.h1.tlsConfig = &tls.Config{RootCAs: pool}
	for i := 0; i < 2; i++ {
		if st, body, err := call(t, c, "/", "{}"); err != nil || st != 200 || !strings.HasPrefix(body, "HTTP/1.1") {
			t.Fatalf("%d %q %v", st, body, err)
		}
	}
	if n := c.h1.dials.Load(); n != 1 {
		t.Fatalf("%d TLS connections for 2 calls", n)
	}
}
