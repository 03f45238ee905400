package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/beaver-gateway/beaver/internal/gateway"
)

// Detached streams. A stream holds its client's connection for as long as
// the model writes, minutes for a long answer, and an open stream is what
// decides how many one machine carries. Left to net/http, each keeps the
// handler's goroutine, grown deep under the middleware chain, its
// background reader, and the connection's read and write buffers. So a
// stream is relayed on a goroutine of its own, and one still running after
// StreamDetachAfter has its connection taken over (hijacked) between two
// writes: the handler returns, the chunks go straight to the connection,
// and one epoll set for all streams (hangups; a one-byte read per stream
// where there is none) notices the client leaving, which cancels the
// upstream request at once, as before. At the stream's end a connection
// the client keeps alive goes back to the server (connPool) to read its
// next request. A short stream ends in its handler's time and is answered
// by it like any request; HTTP/2, HTTP/1.0 and responses recorded in tests
// stay with their handler too.

// streamWriter is what a stream's sink writes to: the handler's response
// or a detached stream.
type streamWriter interface {
	http.ResponseWriter
	http.Flusher
}

// ctxDetached marks a request whose stream was detached (see afterStream).
const ctxDetached = "beaver.detached"

// detached is the end of a detached stream, which middleware waits for to
// measure the whole request (afterStream).
type detached struct {
	mu    sync.Mutex
	done  bool
	after []func()
}

// then runs f when the stream ends, or now if it has.
func (d *detached) then(f func()) {
	d.mu.Lock()
	if !d.done {
		d.after = append(d.after, f)
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	f()
}

func (d *detached) finish() {
	d.mu.Lock()
	d.done = true
	after := d.after
	d.after = nil
	d.mu.Unlock()
	for _, f := range after {
		f()
	}
}

// afterStream runs f when the request is over: now, or when its detached
// stream ends. Middleware that measures a request ends it here.
func afterStream(c *gin.Context, f func()) {
	if v, ok := c.Get(ctxDetached); ok {
		v.(*detached).then(f)
		return
	}
	f()
}

// relayStream runs an opened stream to its end. It relays on a goroutine
// of its own while the handler waits: a stream that ends within
// StreamDetachAfter is answered by the handler as any other request (a
// short stream costs nothing more); a longer one is detached then, if its
// connection can be taken over, and the handler returns. With
// StreamDetachAfter 0 the stream is detached before its first byte. ctx is
// the one op was opened with, cancel ends it, and unlink stops the
// request's end from ending it (see runChat). sink makes the dialect's
// sink on a writer; after, when set, runs once the stream ended.
func (s *Server) relayStream(c *gin.Context, op *gateway.Opened, ctx context.Context, cancel context.CancelFunc,
	unlink func() bool, sink func(streamWriter, context.Context) (gateway.Sink, func())) {
	sw := &switchWriter{w: c.Writer}
	if s.cfg.StreamDetachAfter <= 0 {
		s.switchTo(c, sw, op, unlink, cancel)
	}
	sk, after := sink(sw, ctx)
	reqID := requestID(c)         // c is the router's again once the handler returns
	finished := make(chan any, 1) // a relay in the handler's time: its panic, or nil
	go func() {
		var panicked any
		func() {
			defer func() { panicked = recover() }()
			op.Relay(ctx, sk)
			if after != nil {
				after()
			}
		}()
		sw.mu.Lock()
		ds, d, release := sw.ds, sw.detached, sw.release
		sw.ended = true
		sw.mu.Unlock()
		if ds == nil {
			finished <- panicked // the handler answers it, as for any request
			return
		}
		if panicked != nil {
			ds.failed = true
			s.log.Error("panic", "request_id", reqID, "panic", fmt.Sprint(panicked), "stack", string(debug.Stack()))
		}
		ds.close(s.conns)
		cancel()
		release()
		s.metrics.detached.Dec()
		d.finish()
	}()
	if sw.ds != nil { // detached before the first byte
		return
	}
	wait := s.cfg.StreamDetachAfter
	if wait <= 0 { // it could not be detached: relayed in the handler to its end
		wait = 24 * time.Hour
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case p := <-finished:
			s.metrics.streams.WithLabelValues("handler").Inc()
			unlink()
			cancel()
			if p != nil {
				panic(p)
			}
			return
		case <-timer.C:
		}
		switch s.switchTo(c, sw, op, unlink, cancel) {
		case switched:
			return
		case notYet: // its headers are not out yet: soon
			timer.Reset(wait)
		case cannot:
			timer.Reset(24 * time.Hour) // relayed in the handler to its end
		}
	}
}

type switchResult int

const (
	switched switchResult = iota
	notYet
	cannot
)

// switchTo detaches sw's stream: its connection taken over, its writes
// going to the connection from here on. Between two writes only: sw's lock
// is held, and net/http has sent all it was given (each write is flushed).
func (s *Server) switchTo(c *gin.Context, sw *switchWriter, op *gateway.Opened, unlink func() bool, cancel context.CancelFunc) switchResult {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.ended {
		return cannot
	}
	if sw.started && !sw.out {
		return notYet // between the sink's headers and their write: not a place to cut
	}
	ds := s.detach(c, sw.out, unlink, cancel) // out: net/http sent the status line and headers, and chunks after them
	if ds == nil {
		return cannot
	}
	d := &detached{}
	c.Set(ctxDetached, d)
	sw.w, sw.ds, sw.detached, sw.release = ds, ds, d, op.Detach(cancel)
	s.metrics.detached.Inc()
	return switched
}

// switchWriter is a stream's writer: the handler's response until the
// stream is detached, then the connection (detachedStream).
type switchWriter struct {
	mu       sync.Mutex
	w        streamWriter
	started  bool // the sink asked for the headers
	out      bool // the headers were written out
	unsent   bool // the status was set and not flushed yet
	ended    bool // the relay ended
	ds       *detachedStream
	detached *detached
	release  func() // the gateway's hold on shutdown (Opened.Detach)
}

func (w *switchWriter) Header() http.Header {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.started = true
	return w.w.Header()
}

func (w *switchWriter) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.started, w.unsent = true, true
	w.w.WriteHeader(code)
}

// Write writes p and flushes it under the lock, so that a switch never
// finds bytes in net/http's buffers.
func (w *switchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.started = true
	n, err := w.w.Write(p)
	w.w.Flush()
	w.out, w.unsent = true, false
	return n, err
}

// Flush sends the status line and headers when a write has not already
// (sse.Writer flushes after each write, which Write did).
func (w *switchWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.unsent {
		w.w.Flush()
		w.out, w.unsent = true, false
	}
}

// detach takes the request's connection over for its stream, or returns
// nil when it cannot (not HTTP/1.1, not a connection, the client gone).
// The request's end stops ending the stream (unlink): its hangup does
// instead.
func (s *Server) detach(c *gin.Context, headSent bool, unlink func() bool, cancel context.CancelFunc) *detachedStream {
	r := c.Request
	hj := innermost(c.Writer)
	if hj == nil || !r.ProtoAtLeast(1, 1) || r.ProtoMajor != 1 || r.Context().Err() != nil {
		return nil
	}
	var header http.Header
	if !headSent {
		header = c.Writer.Header().Clone()
	}
	// net/http's own, not gin's, which refuses once a body was written:
	// a stream detached midway has written its first chunks.
	conn, rw, err := hj.Hijack()
	if err != nil {
		return nil // answered in the handler as before
	}
	unlink()
	ds := &detachedStream{conn: conn, header: header, headSent: headSent, watched: make(chan struct{}),
		keepAlive: !r.Close && s.conns != nil, relayed: s.metrics.streams}
	if n := rw.Reader.Buffered(); n > 0 { // a pipelined request, read with this one: the server's next
		b, _ := rw.Reader.Peek(n)
		ds.next = append([]byte(nil), b...)
	}
	hungUp := func() {
		ds.hungUp.Store(true)
		cancel()
	}
	if unwatch, ok := processHangups().watch(conn, hungUp); ok {
		ds.unwatch = unwatch
	} else {
		go ds.watch(hungUp)
	}
	return ds
}

// processHangups is the process's one epoll set for detached streams
// (its goroutine waits in a system call for good, holding a thread),
// made on the first.
var processHangups = sync.OnceValue(newHangups)

// innermost is the response under w's wrappers when it can give up its
// connection (a recorder in tests cannot), else nil.
func innermost(w http.ResponseWriter) http.Hijacker {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			hj, _ := w.(http.Hijacker)
			return hj
		}
		w = u.Unwrap()
	}
}

// detachedStream is a stream's answer written straight to its connection
// as HTTP/1.1 chunks: each Write is one chunk and one write to the socket
// (the sinks write an event at a time).
type detachedStream struct {
	conn      net.Conn
	header    http.Header
	status    int
	headSent  bool
	keepAlive bool // the connection goes back to the server at the end
	frame     []byte
	err       error
	failed    bool // the relay panicked: the answer is not whole
	relayed   *prometheus.CounterVec

	unwatch func()        // ends the epoll watch (hangups), when not watched by a read
	hungUp  atomic.Bool   // the client left
	ending  atomic.Bool   // close is stopping the watcher
	watched chan struct{} // closed when the watcher returned; then peek is the watcher's
	peek    [1]byte       // the byte the watcher read, when peeked
	peeked  bool
	next    []byte // what was read of the client's next request
}

func (d *detachedStream) Header() http.Header { return d.header }

func (d *detachedStream) WriteHeader(code int) {
	if d.status == 0 {
		d.status = code
	}
}

// Write sends p as one chunk, after the status line and headers if they
// have not gone yet.
func (d *detachedStream) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	f := d.appendHead(d.frame[:0])
	if len(p) > 0 {
		f = strconv.AppendInt(f, int64(len(p)), 16)
		f = append(f, "\r\n"...)
		f = append(f, p...)
		f = append(f, "\r\n"...)
	}
	if _, d.err = d.conn.Write(f); d.err != nil {
		return 0, d.err
	}
	if len(p) > 0 {
		d.frame = f // kept for the next chunk; the first, with the head, was longer than a chunk needs
	}
	return len(p), nil
}

// Flush sends the status line and headers if nothing did yet: each Write
// has left already.
func (d *detachedStream) Flush() {
	if !d.headSent {
		_, _ = d.Write(nil)
	}
}

// appendHead appends the status line and headers, once, as net/http would
// write them for a chunked answer.
func (d *detachedStream) appendHead(b []byte) []byte {
	if d.headSent {
		return b
	}
	d.headSent = true
	if d.status == 0 {
		d.status = http.StatusOK
	}
	h := d.header
	h.Del("Content-Length")
	h.Set("Transfer-Encoding", "chunked")
	if !d.keepAlive {
		h.Set("Connection", "close")
	}
	if _, ok := h["Date"]; !ok {
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	b = fmt.Appendf(b, "HTTP/1.1 %d %s\r\n", d.status, http.StatusText(d.status))
	var buf bytes.Buffer
	_ = h.Write(&buf) // sorted, values cleaned of line breaks
	b = append(b, buf.Bytes()...)
	d.header = nil // sent: an open stream keeps no more than it needs
	return append(b, "\r\n"...)
}

// watch reads the connection while the stream runs: its end (or any
// error) is the client leaving, which cancels the stream. A byte read
// instead is the start of the client's next request (sent as soon as it
// had the answer, or pipelined): it is kept for the server (close), and
// the connection is no longer watched.
func (d *detachedStream) watch(cancel context.CancelFunc) {
	defer close(d.watched)
	n, _ := d.conn.Read(d.peek[:])
	switch {
	case n > 0:
		d.peeked = true
	case d.ending.Load(): // close stopped the read
	default:
		cancel()
	}
}

// close ends the answer (its last chunk) and hands a kept-alive
// connection back to the server, or closes it.
func (d *detachedStream) close(pool *connPool) {
	if !d.failed {
		d.Flush()
		if d.err == nil {
			_, d.err = d.conn.Write([]byte("0\r\n\r\n"))
		}
	}
	if d.unwatch != nil {
		d.unwatch()
	} else {
		d.ending.Store(true)
		_ = d.conn.SetReadDeadline(time.Unix(1, 0)) // ends the watcher's read
		<-d.watched
	}
	if d.failed || d.err != nil || !d.keepAlive || d.hungUp.Load() || pool == nil {
		d.relayed.WithLabelValues("detached_closed").Inc()
		_ = d.conn.Close()
		return
	}
	d.relayed.WithLabelValues("detached_kept").Inc()
	_ = d.conn.SetReadDeadline(time.Time{})
	if d.peeked {
		d.next = append(d.next, d.peek[0])
	}
	pool.back(d.conn, d.next)
}

// connPool is the API server's listener, which also accepts the
// connections of detached streams back once their answer is whole: the
// server reads their next request as it would on a kept-alive connection.
type connPool struct {
	net.Listener
	idle     time.Duration // a returned connection waits this long for its next request
	accepted chan acceptResult
	returned chan net.Conn
	done     chan struct{}
	once     sync.Once
}

type acceptResult struct {
	conn net.Conn
	err  error
}

// Listen wraps the API's listener so that detached streams can give their
// connections back (see detach); `beaver api` serves through it, with
// NewHTTPServer.
func (s *Server) Listen(ln net.Listener) net.Listener {
	p := &connPool{Listener: ln, idle: idleTimeout, accepted: make(chan acceptResult), returned: make(chan net.Conn),
		done: make(chan struct{})}
	go p.acceptLoop()
	s.conns = p
	return p
}

// acceptLoop hands the listener's connections (and errors) to Accept.
func (p *connPool) acceptLoop() {
	for {
		c, err := p.Listener.Accept()
		select {
		case p.accepted <- acceptResult{c, err}:
		case <-p.done:
			if c != nil {
				_ = c.Close()
			}
			return
		}
	}
}

func (p *connPool) Accept() (net.Conn, error) {
	select {
	case a := <-p.accepted:
		return a.conn, a.err
	case c := <-p.returned:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

func (p *connPool) Close() error {
	p.once.Do(func() { close(p.done) })
	return p.Listener.Close()
}

// back gives c to the server, with the first bytes of its next request
// when they were read already; closed when the server has stopped.
func (p *connPool) back(c net.Conn, next []byte) {
	if rc, ok := c.(*returnedConn); ok {
		c = rc.Conn
	}
	rc := &returnedConn{Conn: c, idle: p.idle, next: next}
	rc.first.Store(true)
	select {
	case p.returned <- rc:
	case <-p.done:
		_ = c.Close()
	}
}

// returnedConn is a connection back from a detached stream. The server
// takes it for a new one, whose first request must come within the header
// timeout; it is a kept-alive connection, whose client may wait the idle
// timeout before its next request, so its first deadline is moved by that.
// next is what was read of that request already.
type returnedConn struct {
	net.Conn
	idle  time.Duration
	first atomic.Bool
	next  []byte
}

func (c *returnedConn) Read(p []byte) (int, error) {
	if len(c.next) > 0 {
		n := copy(p, c.next)
		c.next = c.next[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *returnedConn) SetReadDeadline(t time.Time) error {
	if !t.IsZero() && c.first.Swap(false) {
		t = t.Add(c.idle)
	}
	return c.Conn.SetReadDeadline(t)
}

// SyscallConn lets a stream on it be watched by hangups.
func (c *returnedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// CloseWrite lets the server close its side gracefully, as on a TCP
// connection.
func (c *returnedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
