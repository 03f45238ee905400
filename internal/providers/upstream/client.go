// Package upstream is the shared machinery of the provider adapters: the
// tuned HTTP client with its timeouts and retries, the Error type, and the
// generic event-stream reader that adapters plug a translator into. Package
// providers re-exports its public types; the adapters live in subpackages.
package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/beaver-gateway/beaver/internal/chat"
)

// Config describes one provider.
type Config struct {
	Name    string // "openai", "deepseek", "perplexity", "xai", "anthropic", "google"
	Format  string // "openai", "anthropic", "gemini"
	BaseURL string // the adapter appends its own path (see the contract)
	APIKey  string // may be empty (fake upstreams)

	ConnectTimeout   time.Duration // TCP+TLS connect; default 10s
	FirstByteTimeout time.Duration // until response headers; default 60s
	IdleTimeout      time.Duration // max gap between reads of the body; default 60s
	// MaxRetries is how often a call is repeated, only before anything was
	// returned to the caller, on network errors and 502/503/504. 0 means the
	// default (1); a negative value disables retries.
	MaxRetries int
}

// Defaults of Config.
const (
	DefaultConnectTimeout   = 10 * time.Second
	DefaultFirstByteTimeout = 60 * time.Second
	DefaultIdleTimeout      = 60 * time.Second
	DefaultMaxRetries       = 1
)

// retryBackoff is the first pause between attempts; it doubles, with jitter.
const retryBackoff = 100 * time.Millisecond

// Upper bounds of bodies read into memory.
const (
	maxResponseBytes = 32 << 20
	maxErrorBytes    = 64 << 10
)

// WithDefaults fills zero fields with the defaults and trims the base URL's
// trailing slash.
func (c Config) WithDefaults() Config {
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.FirstByteTimeout <= 0 {
		c.FirstByteTimeout = DefaultFirstByteTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = DefaultMaxRetries
	case c.MaxRetries < 0:
		c.MaxRetries = 0
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	return c
}

// Client sends requests to one provider over its own tuned transport.
type Client struct {
	cfg    Config
	h1     *h1Transport // nil when a proxy is configured: then hc
	hc     *http.Client
	scheme string // of the base URL
	host   string
	origin string // scheme://host
}

// NewClient checks the config, applies defaults and builds the provider's
// transport: Beaver's own HTTP/1.1 keep-alive pool (transport.go), or, when
// the environment names a proxy for the provider, net/http's Transport
// with HTTP/2 when the server offers it. Both apply the connect timeout to
// dialing and the TLS handshake.
func NewClient(cfg Config) (*Client, error) {
	cfg = cfg.WithDefaults()
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("provider %q: base URL %q must be an absolute http(s) URL", cfg.Name, cfg.BaseURL)
	}
	c := &Client{cfg: cfg, scheme: u.Scheme, host: u.Host, origin: u.Scheme + "://" + u.Host}
	if proxy, err := http.ProxyFromEnvironment(&http.Request{URL: u}); err == nil && proxy == nil {
		c.h1 = newH1Transport(cfg.ConnectTimeout)
		return c, nil
	}
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ExpectContinueTimeout: time.Second,
	}
	c.hc = &http.Client{Transport: t}
	return c, nil
}

// CloseIdle closes the client's idle connections.
func (c *Client) CloseIdle() {
	if c.h1 != nil {
		c.h1.closeIdle()
	} else {
		c.hc.CloseIdleConnections()
	}
}

// send makes one HTTP exchange of req on ctx.
func (c *Client) send(ctx context.Context, req Request) (*http.Response, error) {
	if c.h1 != nil {
		if path, ok := strings.CutPrefix(req.URL, c.origin); ok && (path == "" || path[0] == '/') {
			if path == "" {
				path = "/"
			}
			return c.h1.roundTrip(h1Request{ctx: ctx, scheme: c.scheme, host: c.host, path: path, header: req.Header, body: req.Body})
		}
		u, err := url.Parse(req.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("bad upstream URL %q", req.URL)
		}
		return c.h1.roundTrip(h1Request{ctx: ctx, scheme: u.Scheme, host: u.Host, path: u.RequestURI(), header: req.Header, body: req.Body})
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, req.URL, bytes.NewReader(req.Body))
	if err != nil {
		return nil, err
	}
	hreq.Header = req.Header.Clone()
	return c.hc.Do(hreq)
}

// Config returns the client's config, defaults applied.
func (c *Client) Config() Config { return c.cfg }

// Request is one upstream call. The body is kept so that it can be re-sent.
type Request struct {
	URL        string
	Header     http.Header
	Body       []byte
	ParseError ErrorParser // builds the *Error of a non-2xx answer
}

// Open sends the request and returns the body of a 2xx answer. Failures are
// *Error. Retries happen here and only here: once Open returns a body,
// nothing is repeated.
func (c *Client) Open(ctx context.Context, req Request) (*Body, error) {
	for attempt := 0; ; attempt++ {
		b, err := c.try(ctx, req)
		if err == nil {
			return b, nil
		}
		if attempt >= c.cfg.MaxRetries || !err.Retryable() || ctx.Err() != nil {
			return nil, err
		}
		pause := retryBackoff << attempt
		pause += rand.N(pause / 2)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, cancelled(ctx)
		case <-t.C:
		}
	}
}

// Do sends the request and reads the whole 2xx body (non-streaming calls).
func (c *Client) Do(ctx context.Context, req Request) ([]byte, error) {
	b, err := c.Open(ctx, req)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	data, err := io.ReadAll(io.LimitReader(b, maxResponseBytes))
	if err != nil {
		return nil, err // already an *Error
	}
	return data, nil
}

var (
	errFirstByte = errors.New("first byte timeout")
	errIdle      = errors.New("idle timeout")
	errClosed    = errors.New("stream closed")
)

// try makes one attempt. The attempt's context is cancelled with a cause when
// the first-byte timer fires, so the error can say which limit was hit.
func (c *Client) try(ctx context.Context, req Request) (*Body, *Error) {
	actx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(c.cfg.FirstByteTimeout, func() { cancel(errFirstByte) })
	resp, err := c.send(actx, req)
	if !timer.Stop() {
		if err == nil {
			resp.Body.Close()
		}
		if ctx.Err() != nil {
			return nil, cancelled(ctx)
		}
		return nil, &Error{Timeout: true, Err: errFirstByte,
			Message: fmt.Sprintf("no response headers within %s", c.cfg.FirstByteTimeout)}
	}
	if err != nil {
		cancel(err)
		if ctx.Err() != nil {
			return nil, cancelled(ctx)
		}
		return nil, networkError(err)
	}

	body := newBody(resp, ctx, actx, cancel, c.cfg.IdleTimeout)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return body, nil
	}

	data, rerr := io.ReadAll(io.LimitReader(body, maxErrorBytes))
	body.Close()
	parse := req.ParseError
	if parse == nil {
		parse = GenericError
	}
	e := parse(resp.StatusCode, resp.Header, data)
	if e == nil {
		e = GenericError(resp.StatusCode, resp.Header, data)
	}
	if e.Status == 0 {
		e.Status = resp.StatusCode
	}
	if e.RetryAfter == 0 {
		e.RetryAfter = RetryAfterHeader(resp.Header)
	}
	if e.Message == "" && rerr != nil {
		e.Message = rerr.Error()
	}
	return nil, e
}

// cancelled is the error of a call whose caller went away (or whose own
// deadline passed, which counts as a timeout).
func cancelled(ctx context.Context) *Error {
	err := ctx.Err()
	return &Error{Message: "request cancelled: " + err.Error(), Err: err,
		Timeout: errors.Is(err, context.DeadlineExceeded)}
}

func networkError(err error) *Error {
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		msg = ue.Err.Error() // without the URL
	}
	return &Error{Message: msg, Err: err}
}

// Body is the body of a 2xx answer. Each Read must complete within the idle
// timeout; read errors come back as *Error (io.EOF stays io.EOF). Close it.
type Body struct {
	Header http.Header
	Status int

	rc     io.ReadCloser
	parent context.Context // the caller's context
	ctx    context.Context // this attempt's, cancelled with a cause
	cancel context.CancelCauseFunc
	idle   time.Duration
	timer  *time.Timer
	eof    atomic.Bool // read to the end; Close may run concurrently with Read
}

func newBody(resp *http.Response, parent, ctx context.Context, cancel context.CancelCauseFunc, idle time.Duration) *Body {
	b := &Body{Header: resp.Header, Status: resp.StatusCode, rc: resp.Body,
		parent: parent, ctx: ctx, cancel: cancel, idle: idle}
	b.timer = time.AfterFunc(idle, func() { cancel(errIdle) })
	b.timer.Stop() // armed only while a Read waits
	return b
}

// Read reads with the idle timer running only while waiting on the upstream,
// so a slow consumer never looks like an idle upstream.
func (b *Body) Read(p []byte) (int, error) {
	b.timer.Reset(b.idle)
	n, err := b.rc.Read(p)
	b.timer.Stop()
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, io.EOF):
		b.eof.Store(true)
		return n, io.EOF
	}
	return n, b.wrap(err)
}

func (b *Body) wrap(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if b.parent.Err() != nil {
		return cancelled(b.parent)
	}
	if context.Cause(b.ctx) == errIdle {
		return &Error{Timeout: true, Err: errIdle,
			Message: fmt.Sprintf("no data from upstream for %s", b.idle)}
	}
	return &Error{Message: "upstream connection lost: " + err.Error(), Err: err}
}

// Close releases the connection. A body read to its end goes back to the
// connection pool; otherwise the request is aborted at once.
func (b *Body) Close() error {
	b.timer.Stop()
	if !b.eof.Load() {
		b.cancel(errClosed)
	}
	err := b.rc.Close()
	b.cancel(errClosed)
	return err
}

// Drain reads what is left of a body whose protocol-level end was seen (for
// example OpenAI's [DONE]) so that the connection can be reused. It reads at
// most a few KiB and gives up after 100ms.
func (b *Body) Drain() {
	if b.eof.Load() {
		return
	}
	t := time.AfterFunc(100*time.Millisecond, func() { b.cancel(errClosed) })
	defer t.Stop()
	var buf [512]byte
	for range 8 {
		if _, err := b.rc.Read(buf[:]); err != nil {
			b.eof.Store(errors.Is(err, io.EOF))
			return
		}
	}
}

// Stream is a streamed completion (providers.Stream).
type Stream interface {
	Recv() (*chat.Chunk, error)
	// Usage is the usage the upstream has reported so far (nil if none):
	// after a normal end it is the final usage; after a cut or an error it
	// holds whatever counts arrived before (e.g. Anthropic's message_start
	// input tokens, Gemini's promptTokenCount), with CompletionTokens as last
	// reported. Each call returns a new value; call it from the goroutine
	// that calls Recv.
	Usage() *chat.Usage
	Close() error
}
