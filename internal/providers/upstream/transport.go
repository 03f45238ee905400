package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// h1Transport is the provider calls' HTTP/1.1 transport. The request's own
// goroutine writes the request and reads the answer on a pooled keep-alive
// connection; net/http's Transport hands every request to two goroutines of
// its own (a connection's write and read loops) and back, which on a quiet
// machine costs several thread wake-ups per call and a fifth of a
// request's CPU at load. A gateway talks to a handful of hosts over many
// connections, so HTTP/2's multiplexing buys it nothing.
//
// Only plain POSTs with an in-memory body come here (Client.try); with a
// proxy configured, Client uses net/http's Transport instead.
type h1Transport struct {
	dialer      *net.Dialer
	tlsTimeout  time.Duration
	idleTimeout time.Duration // idle connections older than this are closed
	maxIdle     int           // per host
	tlsConfig   *tls.Config   // base for https; nil = system roots (tests set their own)

	mu      sync.Mutex
	idle    map[string][]*h1Conn // by scheme://host:port, most recent last
	janitor bool
	closed  bool

	dials atomic.Int64 // connections opened (tests)
}

func newH1Transport(connectTimeout time.Duration) *h1Transport {
	return &h1Transport{dialer: &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second},
		tlsTimeout: connectTimeout, idleTimeout: 50 * time.Second, maxIdle: 256, idle: map[string][]*h1Conn{}}
}

type h1Conn struct {
	net.Conn
	key       string
	br        *bufio.Reader
	idleSince time.Time
	reused    bool
}

// h1Request is one call: method POST, an absolute http(s) URL, a body in
// memory.
type h1Request struct {
	ctx    context.Context
	scheme string
	host   string // host[:port] as in the URL
	path   string // path and query, as sent
	header http.Header
	body   []byte
}

// roundTrip sends r and returns the answer; its Body owns the connection
// until read to the end (then the connection is pooled) or closed (then
// the connection is closed, which also aborts the upstream request). A
// connection the server closed while idle is detected by the first read of
// the answer and the request is sent once more on a new one: nothing was
// read, so the server never answered it.
func (t *h1Transport) roundTrip(r h1Request) (*http.Response, error) {
	key := r.scheme + "://" + r.host
	for attempt := 0; ; attempt++ {
		c, err := t.get(r.ctx, key, r)
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(c, r)
		if err == nil {
			return resp, nil
		}
		if c.reused && attempt == 0 && r.ctx.Err() == nil && staleConn(err) {
			continue
		}
		return nil, err
	}
}

// staleConn reports errors of a kept-alive connection the server had closed.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (t *h1Transport) exchange(c *h1Conn, r h1Request) (*http.Response, error) {
	// Cancelling the context closes the connection, which ends any read or
	// write on it at once.
	stop := context.AfterFunc(r.ctx, func() { _ = c.Close() })
	fail := func(err error) (*http.Response, error) {
		stop()
		_ = c.Close()
		if cerr := r.ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(c)
	writeRequest(bw, r)
	err := bw.Flush()
	bw.Reset(nil)
	writers.Put(bw)
	if err != nil {
		return fail(err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return fail(err)
	}
	resp.Body = &h1Body{t: t, c: c, rc: resp.Body, stop: stop, keep: !resp.Close}
	return resp, nil
}

// connReadBuffer is a connection's read buffer, held for as long as a
// stream lasts. 2 KiB saved 2 KB per open stream but cost plain requests
// 4 % of their throughput (an answer's headers and body no longer came in
// one read), so it stays at net/http's 4 KiB.
const connReadBuffer = 4 << 10

// writers buffer requests as they are written: a connection needs its
// writer only while it sends, and a stream keeps its connection (and its
// read buffer) for as long as it lasts.
var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 8<<10) }}

// writeRequest writes r's request line, headers and body to w.
func writeRequest(w *bufio.Writer, r h1Request) {
	w.WriteString("POST ")
	w.WriteString(r.path)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(r.host)
	w.WriteString("\r\n")
	if _, ok := r.header["User-Agent"]; !ok {
		w.WriteString("User-Agent: beaver\r\n")
	}
	for k, vs := range r.header {
		if k == "Host" || k == "Content-Length" || k == "Connection" || k == "Transfer-Encoding" {
			continue
		}
		for _, v := range vs {
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	w.WriteString("Content-Length: ")
	w.WriteString(strconv.Itoa(len(r.body)))
	w.WriteString("\r\n\r\n")
	w.Write(r.body)
}

// get returns a pooled connection to key, or dials one.
func (t *h1Transport) get(ctx context.Context, key string, r h1Request) (*h1Conn, error) {
	now := time.Now()
	t.mu.Lock()
	for list := t.idle[key]; len(list) > 0; list = t.idle[key] {
		c := list[len(list)-1]
		t.idle[key] = list[:len(list)-1]
		if now.Sub(c.idleSince) < t.idleTimeout {
			t.mu.Unlock()
			c.reused = true
			return c, nil
		}
		_ = c.Close()
	}
	t.mu.Unlock()
	return t.dial(ctx, key, r)
}

func (t *h1Transport) dial(ctx context.Context, key string, r h1Request) (*h1Conn, error) {
	addr := r.host
	if _, _, err := net.SplitHostPort(addr); err != nil {
		port := "80"
		if r.scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(addr, port)
	}
	conn, err := t.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if r.scheme == "https" {
		host, _, _ := net.SplitHostPort(addr)
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if t.tlsConfig != nil {
			cfg = t.tlsConfig.Clone()
		}
		cfg.ServerName, cfg.NextProtos = host, []string{"http/1.1"}
		tc := tls.Client(conn, cfg)
		hctx, cancel := context.WithTimeout(ctx, t.tlsTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		conn = tc
	}
	t.dials.Add(1)
	return &h1Conn{Conn: conn, key: key, br: bufio.NewReaderSize(conn, connReadBuffer)}, nil
}

// put pools a connection whose last answer was read to the end.
func (t *h1Transport) put(c *h1Conn) {
	if c.br.Buffered() > 0 { // bytes beyond the answer: the stream is out of step
		_ = c.Close()
		return
	}
	c.idleSince = time.Now()
	t.mu.Lock()
	if t.closed || len(t.idle[c.key]) >= t.maxIdle {
		t.mu.Unlock()
		_ = c.Close()
		return
	}
	t.idle[c.key] = append(t.idle[c.key], c)
	if !t.janitor {
		t.janitor = true
		go t.sweep()
	}
	t.mu.Unlock()
}

// sweep closes connections idle for longer than the idle timeout, so that
// a provider no longer called does not keep sockets open.
func (t *h1Transport) sweep() {
	tick := time.NewTicker(t.idleTimeout / 2)
	defer tick.Stop()
	for range tick.C {
		now := time.Now()
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return
		}
		for key, list := range t.idle {
			kept := list[:0]
			for _, c := range list {
				if now.Sub(c.idleSince) >= t.idleTimeout {
					_ = c.Close()
				} else {
					kept = append(kept, c)
				}
			}
			t.idle[key] = kept
		}
		t.mu.Unlock()
	}
}

// closeIdle closes every pooled connection and stops pooling.
func (t *h1Transport) closeIdle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for key, list := range t.idle {
		for _, c := range list {
			_ = c.Close()
		}
		delete(t.idle, key)
	}
}

// h1Body is an answer's body. At its end the connection goes back to the
// pool; closed before that, the connection is closed.
type h1Body struct {
	t    *h1Transport
	c    *h1Conn
	rc   io.ReadCloser
	stop func() bool // unregisters the context's close
	keep bool        // the server allows another request on the connection
	mu   sync.Mutex
	done bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.finish(true)
	}
	return n, err
}

// Close may run while a Read waits (an aborted stream): closing the
// connection ends that Read.
func (b *h1Body) Close() error {
	b.finish(false)
	return nil
}

func (b *h1Body) finish(eof bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.done = true
	if b.stop() && eof && b.keep {
		b.t.put(b.c)
		return
	}
	_ = b.c.Close()
}
