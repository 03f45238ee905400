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
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beaver-gateway/beaver/internal/chat"
)

// Config describes one provider.
type Config struct {
	Name    string // "openai", "deepseek", "perplexity", "xai", "anthropic", "google"
	Format  string // "openai", "openai-responses", "anthropic", "gemini"
	BaseURL string // the adapter appends its own path (see the contract)
	APIKey  string // may be empty (fake upstreams)
	// ResponsesPath is where the OpenAI Responses adapter posts, after the
	// base URL: "" = "/responses", for base URLs that end in /v1 as
	// OpenAI's does; Perplexity's Agent API is "/v1/responses" under
	// https://api.perplexity.ai.
	ResponsesPath string
	// Usage is how the provider's usage numbers differ from OpenAI's
	// convention, which adapters normalize them to.
	Usage UsageConvention
	// SendReasoningBack: the provider wants each assistant message's
	// reasoning_content back in later requests (DeepSeek's thinking mode
	// answers 400 to a tool loop without it); other providers never get it.
	SendReasoningBack bool
	// Headers are sent with every request, after the adapter's own and the
	// key's, none of which they replace (an operator's provider that wants
	// an organisation or routing header, e.g. OpenRouter's HTTP-Referer).
	Headers map[string]string
	// Endpoints are the provider's base URLs and keys when it has several;
	// empty = one, BaseURL and APIKey. When set, BaseURL and APIKey become
	// its first entry's.
	Endpoints []Endpoint

	ConnectTimeout   time.Duration // TCP+TLS connect; default 10s
	FirstByteTimeout time.Duration // until response headers; default 60s
	IdleTimeout      time.Duration // max gap between reads of the body; default 60s
	// MaxRetries is how often a call is repeated, only before anything was
	// returned to the caller (see Error.Retryable). 0 means the default (2);
	// a negative value disables retries.
	MaxRetries int
	// RetryBudget bounds the retries of a call (of a Route, when the
	// context carries one): no pause starts that would end after it. 0
	// means the default (10s).
	RetryBudget time.Duration
	// An endpoint's circuit breaker opens on its recent failures (network
	// errors, timeouts, 408, 5xx, a body cut midway) when, within
	// BreakerWindow, it had at least BreakerMinRequests attempts, at least
	// BreakerFailures of them failed, that is at least BreakerFailureRate
	// of them, and the failures came from at least BreakerMinAccounts
	// distinct accounts (Route.Account): one account's requests, whatever
	// they make the upstream answer, never open it. An open endpoint gets
	// no request that has a fallback model for BreakerCooldown, then one
	// probe at a time until an answer closes it; a request without a
	// fallback model is sent all the same. BreakerFailures 0 means the
	// default (5), a negative value disables the breaker; the other zero
	// values mean their defaults (10, 0.5, 3, 60s, 30s).
	BreakerFailures    int
	BreakerMinRequests int
	BreakerFailureRate float64
	BreakerMinAccounts int
	BreakerWindow      time.Duration
	BreakerCooldown    time.Duration
	// Quick500 is how fast a 500 (or a 5xx other than 502, 503, 504, 529)
	// must come for the call not to be repeated on the endpoint that sent
	// it: a quick error is most likely the request's own, and would come
	// again; another endpoint may still be tried. 0 means the default (2s),
	// a negative value repeats every 5xx.
	Quick500 time.Duration
	// KeyCooldown is how long a key rejected with 401/403 is passed over
	// while the provider has others, and the most a 429 cools a key (for
	// its Retry-After, 1s when none). Default 60s.
	KeyCooldown time.Duration

	// Clock is the time the client goes by (retry budget, breakers,
	// cooldowns, the Quick500 measure); nil = time.Now. Pauses between
	// attempts are real whatever it says.
	Clock func() time.Time
	// Logger gets the breakers' openings and closings; nil = slog.Default().
	Logger *slog.Logger

	// Tokenizers names the public tokenizer (a tiktoken encoding, see
	// package tokens) the provider bills each model's tokens in, by prefix
	// of its model name: the longest matching prefix wins. A model with
	// none is counted by the provider's count endpoint, if it has one.
	Tokenizers map[string]string
}

// Defaults of Config.
const (
	DefaultConnectTimeout     = 10 * time.Second
	DefaultFirstByteTimeout   = 60 * time.Second
	DefaultIdleTimeout        = 60 * time.Second
	DefaultMaxRetries         = 2
	DefaultRetryBudget        = 10 * time.Second
	DefaultBreakerFailures    = 5
	DefaultBreakerMinRequests = 10
	DefaultBreakerFailureRate = 0.5
	DefaultBreakerMinAccounts = 3
	DefaultBreakerWindow      = 60 * time.Second
	DefaultBreakerCooldown    = 30 * time.Second
	DefaultQuick500           = 2 * time.Second
	DefaultKeyCooldown        = 60 * time.Second
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
	if c.RetryBudget <= 0 {
		c.RetryBudget = DefaultRetryBudget
	}
	switch {
	case c.BreakerFailures == 0:
		c.BreakerFailures = DefaultBreakerFailures
	case c.BreakerFailures < 0:
		c.BreakerFailures = 0
	}
	if c.BreakerMinRequests <= 0 {
		c.BreakerMinRequests = DefaultBreakerMinRequests
	}
	if c.BreakerFailureRate <= 0 || c.BreakerFailureRate > 1 {
		c.BreakerFailureRate = DefaultBreakerFailureRate
	}
	if c.BreakerMinAccounts <= 0 {
		c.BreakerMinAccounts = DefaultBreakerMinAccounts
	}
	if c.BreakerWindow <= 0 {
		c.BreakerWindow = DefaultBreakerWindow
	}
	if c.BreakerCooldown <= 0 {
		c.BreakerCooldown = DefaultBreakerCooldown
	}
	if c.Quick500 == 0 {
		c.Quick500 = DefaultQuick500 // negative stays: every 5xx is repeated
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.KeyCooldown <= 0 {
		c.KeyCooldown = DefaultKeyCooldown
	}
	if len(c.Endpoints) > 0 {
		c.Endpoints = append([]Endpoint(nil), c.Endpoints...)
		c.BaseURL, c.APIKey = c.Endpoints[0].BaseURL, c.Endpoints[0].APIKey
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	return c
}

// Client sends requests to one provider over its own tuned transport: it
// picks an endpoint (base URL and key) per attempt, retries what may be
// retried within the budget, and keeps each endpoint's circuit breaker and
// key cooldown.
type Client struct {
	cfg     Config
	now     func() time.Time // cfg.Clock
	mu      sync.Mutex       // the endpoints' round robin credit
	eps     []*endpoint
	policy  breakerPolicy
	h1      *h1Transport // for endpoints without a proxy
	hc      *http.Client // for endpoints the environment names a proxy for
	retries atomic.Int64 // attempts that were retries
}

// NewClient checks the config, applies defaults and builds the provider's
// transports: Beaver's own HTTP/1.1 keep-alive pool (transport.go), or, for
// an endpoint the environment names a proxy for, net/http's Transport with
// HTTP/2 when the server offers it. Both apply the connect timeout to
// dialing and the TLS handshake.
func NewClient(cfg Config) (*Client, error) {
	cfg = cfg.WithDefaults()
	list := cfg.Endpoints
	if len(list) == 0 {
		list = []Endpoint{{BaseURL: cfg.BaseURL, APIKey: cfg.APIKey}}
	}
	c := &Client{cfg: cfg, now: cfg.Clock, policy: breakerPolicy{failures: cfg.BreakerFailures,
		minRequests: cfg.BreakerMinRequests, rate: cfg.BreakerFailureRate, minAccounts: cfg.BreakerMinAccounts,
		window: cfg.BreakerWindow, openFor: cfg.BreakerCooldown, keyCooldown: cfg.KeyCooldown}}
	proxied := false
	for i, ep := range list {
		e, err := newEndpoint(cfg.Name, i, ep, cfg.BreakerWindow)
		if err != nil {
			return nil, err
		}
		c.eps = append(c.eps, e)
		proxied = proxied || e.proxied
		if !e.proxied && c.h1 == nil {
			c.h1 = newH1Transport(cfg.ConnectTimeout)
		}
	}
	if !proxied {
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
	}
	if c.hc != nil {
		c.hc.CloseIdleConnections()
	}
}

// send makes one HTTP exchange of req with endpoint e on ctx: req.URL, or
// e's base URL + req.Path, with e's key in the header req.Key names.
func (c *Client) send(ctx context.Context, e *endpoint, req Request) (*http.Response, error) {
	target := req.URL
	switch {
	case target == "":
		target = e.BaseURL + req.Path
	case e.index > 0:
		// An absolute URL under the first endpoint's base URL goes to this
		// endpoint's instead.
		if rest, ok := strings.CutPrefix(target, c.cfg.BaseURL); ok && (rest == "" || rest[0] == '/' || rest[0] == '?') {
			target = e.BaseURL + rest
		}
	}
	header := req.Header
	key := req.Key
	if key.Header == "" {
		key = keySchemeFor(c.cfg.Format)
	}
	if key.Header != "" {
		if header == nil {
			header = http.Header{}
		}
		// Attempts run one after the other: the request's header is set
		// for each one's endpoint in place.
		if e.APIKey != "" {
			header.Set(key.Header, key.Prefix+e.APIKey)
		} else {
			header.Del(key.Header)
		}
	}
	if len(c.cfg.Headers) > 0 {
		if header == nil {
			header = http.Header{}
		}
		for name, value := range c.cfg.Headers {
			if header.Get(name) == "" {
				header.Set(name, value)
			}
		}
	}
	if !e.proxied {
		if req.URL == "" && strings.HasPrefix(req.Path, "/") { // the usual call: no URL to take apart
			return c.h1.roundTrip(h1Request{ctx: ctx, scheme: e.scheme, host: e.host, path: e.prefix + req.Path, header: header, body: req.Body})
		}
		if path, ok := strings.CutPrefix(target, e.origin); ok && (path == "" || path[0] == '/') {
			if path == "" {
				path = "/"
			}
			return c.h1.roundTrip(h1Request{ctx: ctx, scheme: e.scheme, host: e.host, path: path, header: header, body: req.Body})
		}
		u, err := url.Parse(target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("bad upstream URL %q", target)
		}
		return c.h1.roundTrip(h1Request{ctx: ctx, scheme: u.Scheme, host: u.Host, path: u.RequestURI(), header: header, body: req.Body})
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(req.Body))
	if err != nil {
		return nil, err
	}
	hreq.Header = header.Clone()
	return c.hc.Do(hreq)
}

// Config returns the client's config, defaults applied.
func (c *Client) Config() Config { return c.cfg }

// Request is one upstream call. The body is kept so that it can be re-sent.
type Request struct {
	// URL is the absolute URL to call; when empty, Path is appended to the
	// base URL of the endpoint each attempt goes to.
	URL    string
	Path   string
	Header http.Header
	// Key says how the endpoint's API key is sent; zero = the way of the
	// client's Format (keySchemeFor). Nothing is sent for an endpoint
	// without a key.
	Key        KeyScheme
	Body       []byte
	ParseError ErrorParser // builds the *Error of a non-2xx answer
	// ForEndpoint, when set, gives the request each attempt sends instead
	// of this one, by the index of the endpoint (base URL and key) the
	// attempt goes to: an adapter that speaks an older wire format to
	// some of a provider's endpoints (see openairesp's chat fallback). It
	// is called on the calling goroutine before each attempt; what it
	// returns is sent as it is (its own ForEndpoint is not called).
	ForEndpoint func(endpoint int) Request
	// MaxBytes bounds the 2xx body Do reads; 0 = 32 MiB (answers with
	// vectors or images set more).
	MaxBytes int64
}

// KeyScheme is how an adapter sends the key: header Header, value Prefix +
// key.
type KeyScheme struct{ Header, Prefix string }

// BearerKey sends the key as Authorization: Bearer <key>.
var BearerKey = KeyScheme{Header: "Authorization", Prefix: "Bearer "}

// keySchemeFor is how each wire format sends its key: OpenAI's bearer
// token, Anthropic's x-api-key, Gemini's x-goog-api-key.
func keySchemeFor(format string) KeyScheme {
	switch format {
	case "openai", "openai-responses":
		return BearerKey
	case "anthropic":
		return KeyScheme{Header: "x-api-key"}
	case "gemini":
		return KeyScheme{Header: "x-goog-api-key"}
	}
	return KeyScheme{}
}

// Open sends the request and returns the body of a 2xx answer. Failures are
// *Error. Retries happen here and only here: once Open returns a body,
// nothing is repeated.
//
// Each attempt goes to an endpoint picked in turn by weight (see pick):
// after a 429 or 401/403 the key cools down and another one is preferred;
// an endpoint whose breaker is open is passed over, unless the call has no
// fallback model (Route.Fallback) and no endpoint is left. A failure that
// may be retried (Error.Retryable; a 401/403 while an untried key remains)
// is, up to MaxRetries times, after an exponential pause with jitter
// (100ms, 200ms, ...) or the failure's Retry-After when it is longer and
// no other endpoint could take the attempt, unless that pause would end
// after the retry budget: then the failure is returned at once, for the
// caller to fall back on another model. A 500 that came within Quick500 is
// not repeated on the endpoint that sent it.
func (c *Client) Open(ctx context.Context, req Request) (*Body, error) {
	start := c.now()
	until := start.Add(c.cfg.RetryBudget)
	rt := routeOf(ctx)
	var account string
	force := true // without a fallback model, an open breaker refuses nothing
	if rt != nil {
		if rt.until.IsZero() {
			rt.until = until
		}
		until = rt.until
		account, force = rt.Account, !rt.Fallback
	}
	tried := make([]bool, len(c.eps))
	spent := make([]bool, len(c.eps)) // answered this content with a quick 500
	var last *Error
	for attempt := 0; ; attempt++ {
		now := c.now()
		e, probe := c.pick(now, tried, spent, force)
		if e == nil {
			if last != nil {
				return nil, last // our own failures opened it: say what they were
			}
			err := c.circuitOpen(now)
			if rt != nil && rt.OnAttempt != nil {
				rt.OnAttempt(Attempt{Provider: c.cfg.Name, Endpoint: -1, Err: err})
			}
			return nil, err
		}
		e.requests.Add(1)
		sent := req
		if req.ForEndpoint != nil {
			sent = req.ForEndpoint(e.index)
		}
		b, err := c.try(ctx, e, sent)
		end := c.now()
		status := 0
		if err == nil {
			status = b.Status
		} else {
			status = err.Status
		}
		e.report(resultOf(err, false, account, probe), end, c.policy, c.cfg.Logger, c.cfg.Name)
		if rt != nil && rt.OnAttempt != nil {
			rt.OnAttempt(Attempt{Provider: c.cfg.Name, Endpoint: e.index, Key: e.fp, Status: status, Err: err,
				Duration: end.Sub(now)})
		}
		if err == nil {
			b.onFail = func(err *Error) {
				e.report(resultOf(err, true, account, false), c.now(), c.policy, c.cfg.Logger, c.cfg.Name)
			}
			return b, nil
		}
		last = err
		tried[e.index] = true
		if err.Status >= 500 && !err.Unavailable() && end.Sub(now) < c.cfg.Quick500 {
			spent[e.index] = true
		}
		if attempt >= c.cfg.MaxRetries || ctx.Err() != nil || rt.abandoned() || !(err.Retryable() || err.KeyRejected() && c.otherKey(tried)) {
			return nil, err
		}
		pause := retryBackoff << min(attempt, 10) // ≤ 102s: beyond any sane budget, and no overflow
		pause += rand.N(pause / 2)
		if err.RetryAfter > pause && !c.ready(c.now(), tried) {
			pause = err.RetryAfter
		}
		if c.now().Add(pause).After(until) {
			return nil, err // out of budget: the caller may fall back now
		}
		if c.allOpen(c.now().Add(pause), spent) {
			// This failure opened the last breaker, or every endpoint left
			// answered this content with a quick 500: nothing to retry on.
			return nil, err
		}
		c.retries.Add(1)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, cancelled(ctx)
		case <-rt.abandonedC():
			t.Stop()
			return nil, err
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
	return b.readAll(req.MaxBytes)
}

// ReadAll reads the whole body (at most 32 MiB) and closes it; errors are
// *Error.
func (b *Body) ReadAll() ([]byte, error) { return b.readAll(0) }

// readAll reads the whole body, at most limit bytes (0 = 32 MiB), and
// closes it.
func (b *Body) readAll(limit int64) ([]byte, error) {
	defer b.Close()
	if limit <= 0 {
		limit = maxResponseBytes
	}
	data, err := io.ReadAll(io.LimitReader(b, limit))
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
func (c *Client) try(ctx context.Context, e *endpoint, req Request) (*Body, *Error) {
	actx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(c.cfg.FirstByteTimeout, func() { cancel(errFirstByte) })
	resp, err := c.send(actx, e, req)
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
		resp.Header = nil // the body keeps resp (for its trailers): let the headers go
		return body, nil
	}

	data, rerr := io.ReadAll(io.LimitReader(body, maxErrorBytes))
	body.Close()
	parse := req.ParseError
	if parse == nil {
		parse = GenericError
	}
	ue := parse(resp.StatusCode, resp.Header, data)
	if ue == nil {
		ue = GenericError(resp.StatusCode, resp.Header, data)
	}
	if ue.Status == 0 {
		ue.Status = resp.StatusCode
	}
	if ue.RetryAfter == 0 {
		ue.RetryAfter = RetryAfterHeader(resp.Header)
	}
	if ue.Message == "" && rerr != nil {
		ue.Message = rerr.Error()
	}
	return nil, ue
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
// The answer's headers are not kept: nothing reads them past the status,
// and a stream holds its body for minutes.
type Body struct {
	Status int

	rc     io.ReadCloser
	parent context.Context // the caller's context
	ctx    context.Context // this attempt's, cancelled with a cause
	cancel context.CancelCauseFunc
	idle   time.Duration
	timer  *time.Timer
	eof    atomic.Bool // read to the end; Close may run concurrently with Read
	// onFail tells the endpoint's breaker of the first read failure that is
	// the upstream's (not the caller leaving, not Close).
	onFail   func(*Error)
	reported bool
}

func newBody(resp *http.Response, parent, ctx context.Context, cancel context.CancelCauseFunc, idle time.Duration) *Body {
	b := &Body{Status: resp.StatusCode, rc: resp.Body, parent: parent, ctx: ctx, cancel: cancel, idle: idle}
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
	e := b.wrap(err)
	if b.onFail != nil && !b.reported && !e.Cancelled() && !errors.Is(context.Cause(b.ctx), errClosed) {
		b.reported = true
		b.onFail(e)
	}
	return n, e
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
