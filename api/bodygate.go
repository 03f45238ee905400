package api

// Request bodies are read into memory before a handler runs, within bounds
// (BEAVER_MAX_BODY_BYTES, else 413; BEAVER_BODY_READ_TIMEOUT from reaching
// the gate, else 408) and under the budget of whoever sends them, decided
// from the headers before a byte of the body is read:
//
//   - a route that needs credentials authenticates first (authenticate,
//     messagesAuth read headers only) and refuses bad ones unread (401); its
//     body is then received under its account's budget (all its keys and
//     sessions: MaxBodiesPerAccount), in the pool of authenticated bodies
//     (MaxBodiesInFlight);
//   - the anonymous routes (login, register, refresh, email and password
//     tokens) receive theirs in the anonymous pool: MaxBodiesPerIP per client
//     address, MaxAnonBodies in all;
//   - Stripe's webhooks, signed inside their body, in a pool of their own
//     (MaxWebhookBodies, MaxBodiesPerIP per address), so that strangers on
//     the anonymous routes cannot keep them out.
//
// A key (address, account) at its cap is refused with 429 before its body is
// read. A pool at its total sheds the body that has waited longest for a
// byte (408, connection closed) to admit the new one, rather than refusing
// it: idle connections cannot keep anyone out, and a body whose bytes keep
// arriving is shed only after every idler one.
//
// Each body holds its slot only while its bytes arrive (not while auth or
// the handler works). The connection's read deadline is cleared before the
// handler runs: a streamed response may last minutes, and net/http watches
// the connection for a client disconnect while it does. Requests without a
// body (GET, Content-Length: 0) pass untouched and are not counted; routes
// that read no body (GET /health, a 404) have no gate, and guard has their
// connection closed after the answer instead of waiting for the body.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/beaver-gateway/beaver/internal/apierr"
)

// Why a body was refused or cut: the refusal metric's reason label.
const (
	bodyPerIP      = "per_ip"      // its address is at MaxBodiesPerIP
	bodyPerAccount = "per_account" // its account is at MaxBodiesPerAccount
	bodyInFlight   = "in_flight"   // its pool is full and nothing in it can be shed
	bodyShed       = "shed"        // it was idle in a full pool and made room for another
	bodyTimeout    = "timeout"
	bodyTooLarge   = "too_large"
)

// bodyGates are the body pools and their metrics.
type bodyGates struct {
	log                         *slog.Logger
	limit                       int64
	uploadLimit                 int64 // POST /v1/files: BEAVER_FILES_MAX_BYTES and room for the multipart framing
	timeout                     time.Duration
	anonymous, webhook, account *bodyPool
	refused                     map[string]prometheus.Counter
}

func (s *Server) newBodyGates() *bodyGates {
	cfg := s.cfg
	g := &bodyGates{log: s.log, limit: cfg.MaxBodyBytes, uploadLimit: max(cfg.FilesMaxBytes, 200_000_000) + 1<<20, timeout: cfg.BodyReadTimeout,
		anonymous: newBodyPool("anonymous", cfg.MaxBodiesPerIP, cfg.MaxAnonBodies, bodyPerIP),
		webhook:   newBodyPool("webhook", cfg.MaxBodiesPerIP, cfg.MaxWebhookBodies, bodyPerIP),
		account:   newBodyPool("account", cfg.MaxBodiesPerAccount, cfg.MaxBodiesInFlight, bodyPerAccount),
		refused:   map[string]prometheus.Counter{}}
	pools := []*bodyPool{g.anonymous, g.webhook, g.account}
	refusals := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "beaver_http_request_bodies_refused_total",
		Help: "Request bodies refused, cut off or shed, by reason."}, []string{"reason"})
	collectors := []prometheus.Collector{refusals, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "beaver_http_request_bodies_in_flight", Help: "Request bodies being received now, in all pools."},
		func() float64 {
			var n int64
			for _, p := range pools {
				n += p.n.Load()
			}
			return float64(n)
		})}
	for _, p := range pools {
		collectors = append(collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "beaver_http_request_bodies_in_pool",
			Help: "Request bodies being received now, by pool.", ConstLabels: prometheus.Labels{"pool": p.name}},
			func() float64 { return float64(p.n.Load()) }))
	}
	s.Registry.MustRegister(collectors...)
	for _, r := range []string{bodyPerIP, bodyPerAccount, bodyInFlight, bodyShed, bodyTimeout, bodyTooLarge} {
		g.refused[r] = refusals.WithLabelValues(r)
	}
	return g
}

func hasBody(r *http.Request) bool {
	return r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody
}

// unadmitted is the read deadline of a body no gate has admitted: long past.
var unadmitted = time.Unix(1, 0)

// guard runs ahead of every route. It refuses a declared length over the
// limit (413), and puts the connection's read deadline in the past until a
// gate admits the body: a route that answers without reading it (a 401, a
// 404) has its connection closed after the answer, by net/http, rather than
// drained at the client's pace; and a handler on a route without a gate
// cannot read a body outside every budget.
func (g *bodyGates) guard(c *gin.Context) {
	r := c.Request
	if !hasBody(r) {
		c.Next()
		return
	}
	rc := http.NewResponseController(c.Writer)
	limit := g.limit
	if isUpload(r) {
		limit = g.uploadLimit
	}
	if r.ContentLength > limit {
		g.refused[bodyTooLarge].Inc()
		refuseBody(c, rc, tooLarge(limit))
		return
	}
	_ = rc.SetReadDeadline(unadmitted) // an in-process recorder has no deadlines: nothing to guard
	c.Next()
}

// anonymousBodies receives bodies in the anonymous pool, per client address.
func (g *bodyGates) anonymousBodies() gin.HandlerFunc { return g.gate(g.anonymous, clientIP) }

// webhookBodies receives bodies in the webhook pool, per client address.
func (g *bodyGates) webhookBodies() gin.HandlerFunc { return g.gate(g.webhook, clientIP) }

// accountBodies receives bodies under the account of the request's
// principal: it goes after the route's authentication.
func (g *bodyGates) accountBodies() gin.HandlerFunc {
	return g.gate(g.account, func(c *gin.Context) string {
		if p := principal(c); p != nil {
			return p.Account.ID
		}
		return ""
	})
}

// isUpload reports whether r is a file upload (POST /v1/files), whose body
// is streamed to the file store by uploadBodies.
func isUpload(r *http.Request) bool { return r.Method == http.MethodPost && r.URL.Path == "/v1/files" }

// uploadTimeout bounds the receipt of an upload's body.
const uploadTimeout = time.Hour

// uploadBodies receives a file upload under its account's budget, as
// accountBodies does, but hands the body to the handler as it arrives
// (bounded by uploadLimit) instead of reading it into memory first: the
// slot is held until the handler is done with it.
func (g *bodyGates) uploadBodies() gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		if !hasBody(r) {
			c.Next()
			return
		}
		p := principal(c)
		if p == nil {
			writeError(c, apierr.Internal())
			return
		}
		rc := http.NewResponseController(c.Writer)
		var cut func()
		if rc.SetReadDeadline(time.Now().Add(max(g.timeout, uploadTimeout))) == nil {
			cut = func() { _ = rc.SetReadDeadline(time.Now()) }
		}
		slot, refusal, shed := g.account.admit(p.Account.ID, cut)
		if shed {
			g.refused[bodyShed].Inc()
		}
		if refusal != "" {
			g.refused[refusal].Inc()
			refuseBody(c, rc, tooManyBodies(refusal))
			return
		}
		defer g.account.release(slot)
		r.Body = &touchedBody{ReadCloser: http.MaxBytesReader(c.Writer, r.Body, g.uploadLimit), touch: slot.touch}
		c.Next()
	}
}

// touchedBody tells its slot whenever bytes arrive.
type touchedBody struct {
	io.ReadCloser
	touch func()
}

func (b *touchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.touch()
	}
	return n, err
}

// errShed is the read error of a body shed to admit another.
var errShed = errors.New("request body shed")

// gate receives a request's body in pool, in the budget of key(c).
func (g *bodyGates) gate(pool *bodyPool, key func(*gin.Context) string) gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		if !hasBody(r) {
			c.Next()
			return
		}
		k := key(c)
		if k == "" {
			g.log.Error("request body gate without a key: the route's authentication must come first",
				"request_id", requestID(c), "route", c.FullPath(), "pool", pool.name)
			writeError(c, apierr.Internal())
			return
		}
		rc := http.NewResponseController(c.Writer)
		// The deadline is set before the body is admitted, so that once
		// admitted it can only be brought forward (shed), never pushed back.
		var cut func()
		if rc.SetReadDeadline(time.Now().Add(g.timeout)) == nil {
			cut = func() { _ = rc.SetReadDeadline(time.Now()) }
		}
		slot, refusal, shed := pool.admit(k, cut)
		if shed {
			g.refused[bodyShed].Inc()
		}
		if refusal != "" {
			g.refused[refusal].Inc()
			refuseBody(c, rc, tooManyBodies(refusal))
			return
		}
		body, err := readBody(r.Body, r.ContentLength, g.limit, slot.touch)
		// A body shed after its last byte arrived is kept: only its read
		// deadline moved, and it is cleared below.
		if pool.release(slot) && err != nil {
			err = errShed
		}
		if err == nil && cut != nil {
			err = rc.SetReadDeadline(time.Time{})
		}
		if err != nil {
			e := bodyReadError(err, g.timeout)
			switch {
			case errors.Is(err, errShed): // counted when shed
			case e.Status == http.StatusRequestTimeout:
				g.refused[bodyTimeout].Inc()
			case e.Status == http.StatusRequestEntityTooLarge:
				g.refused[bodyTooLarge].Inc()
			}
			refuseBody(c, rc, e)
			return
		}
		_ = r.Body.Close()
		if len(body) == 0 {
			r.Body, r.ContentLength = http.NoBody, 0
		} else {
			mb := &memBody{}
			mb.Reset(body)
			r.Body, r.ContentLength = mb, int64(len(body))
		}
		c.Next()
	}
}

// readBody reads body to its end, at most limit bytes, calling progress
// whenever bytes arrive. The buffer starts at the declared length, up to 64
// KiB (a declared length costs the client nothing), and grows as bytes
// arrive.
func readBody(body io.Reader, declared, limit int64, progress func()) ([]byte, error) {
	size := int64(512)
	if declared > 0 {
		size = min(declared, 64<<10) + 1 // +1: room to see EOF without growing
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := body.Read(buf[len(buf):min(int64(cap(buf)), limit+1)])
		buf = buf[:len(buf)+n]
		if n > 0 {
			progress()
		}
		if int64(len(buf)) > limit {
			return nil, &http.MaxBytesError{Limit: limit}
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// refuseBody answers e and closes the connection: the rest of the body is
// not read (the read deadline is set to now, so net/http does not wait for
// it after the answer either).
func refuseBody(c *gin.Context, rc *http.ResponseController, e *apierr.Error) {
	_ = rc.SetReadDeadline(time.Now())
	c.Header("Connection", "close")
	writeError(c, e)
}

// bodyReadError maps an error from reading a request body: too large → 413,
// shed or the read deadline → 408, anything else (a cut connection, a bad
// chunk) → 400.
func bodyReadError(err error, timeout time.Duration) *apierr.Error {
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.Is(err, errShed):
		return &apierr.Error{Status: http.StatusRequestTimeout, Type: "invalid_request_error", Code: "request_timeout",
			Message: "the request body stalled while the server was receiving many others, and was dropped; send it again"}
	case errors.As(err, &mbe):
		return tooLarge(mbe.Limit)
	case errors.As(err, &ne) && ne.Timeout():
		return &apierr.Error{Status: http.StatusRequestTimeout, Type: "invalid_request_error", Code: "request_timeout",
			Message: fmt.Sprintf("the request body did not arrive within %s", timeout)}
	}
	return apierr.Invalid("could not read the request body")
}

func tooManyBodies(which string) *apierr.Error {
	switch which {
	case bodyPerIP:
		return apierr.RateLimited(time.Second, "too many request bodies are being sent from your address at once; retry in a second")
	case bodyPerAccount:
		return apierr.RateLimited(time.Second, "your account is sending too many request bodies at once; retry in a second")
	}
	return apierr.RateLimited(time.Second, "the server is receiving too many request bodies at once; retry in a second")
}

func tooLarge(n int64) *apierr.Error {
	return &apierr.Error{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error",
		Code: "request_too_large", Message: fmt.Sprintf("request body is larger than %d bytes", n)}
}

// memBody is a request body already read into memory.
type memBody struct{ bytes.Reader }

func (*memBody) Close() error { return nil }

// bodyPool counts the bodies being received under one budget: at most
// perKey from one key (a client address, an account) and total in all; 0 =
// no cap. At total, the body that has waited longest for a byte is shed to
// admit the new one.
type bodyPool struct {
	name     string
	keyFull  string // the refusal reason when a key is at perKey
	perKey   int64
	total    int64
	n        atomic.Int64 // bodies in the pool, for the gauges
	clock    atomic.Int64 // orders admissions and arrivals of bytes: the idlest body has the smallest reading
	mu       sync.Mutex
	byKey    map[string]int64
	receives map[*bodySlot]struct{}
}

func newBodyPool(name string, perKey, total int64, keyFull string) *bodyPool {
	return &bodyPool{name: name, keyFull: keyFull, perKey: perKey, total: total,
		byKey: map[string]int64{}, receives: map[*bodySlot]struct{}{}}
}

// bodySlot is one body being received.
type bodySlot struct {
	pool *bodyPool
	key  string
	seen atomic.Int64 // the pool's clock when it was admitted or its last bytes arrived
	// cut ends the body's read at once; nil: it cannot be, so it is never
	// shed. Called under the pool's lock, only while the slot is in the
	// pool: its request is still in its gate.
	cut  func()
	shed bool // guarded by pool.mu
}

// touch records that bytes of the body arrived.
func (s *bodySlot) touch() { s.seen.Store(s.pool.clock.Add(1)) }

// admit takes a slot for one body from key: refusal is "" when taken (then
// release it), else which cap is full. shed reports that another body was
// shed to make room.
func (p *bodyPool) admit(key string, cut func()) (s *bodySlot, refusal string, shed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.perKey > 0 && p.byKey[key] >= p.perKey {
		return nil, p.keyFull, false
	}
	if p.total > 0 && int64(len(p.receives)) >= p.total {
		v := p.idlest()
		if v == nil {
			return nil, bodyInFlight, false
		}
		p.remove(v)
		v.shed = true
		v.cut()
		shed = true
	}
	s = &bodySlot{pool: p, key: key, cut: cut}
	s.touch()
	p.receives[s] = struct{}{}
	p.byKey[key]++
	p.n.Add(1)
	return s, "", shed
}

// release gives s's slot back, and reports whether s was shed (its slot
// was given to another then).
func (p *bodyPool) release(s *bodySlot) (shed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.shed {
		return true
	}
	p.remove(s)
	return false
}

func (p *bodyPool) remove(s *bodySlot) {
	delete(p.receives, s)
	if n := p.byKey[s.key]; n > 1 {
		p.byKey[s.key] = n - 1
	} else {
		delete(p.byKey, s.key)
	}
	p.n.Add(-1)
}

// idlest is the sheddable body that has waited longest for a byte; nil when
// there is none. A scan: pools are small, and it runs only when one is full.
func (p *bodyPool) idlest() *bodySlot {
	var v *bodySlot
	var oldest int64
	for s := range p.receives {
		if seen := s.seen.Load(); s.cut != nil && (v == nil || seen < oldest) {
			v, oldest = s, seen
		}
	}
	return v
}
