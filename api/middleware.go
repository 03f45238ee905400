package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/models"
)

const (
	ctxRequestID = "beaver.request_id"
	ctxPrincipal = "beaver.principal"
)

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// requestIDMiddleware keeps a sane caller id or makes one, and echoes it.
func requestIDMiddleware(c *gin.Context) {
	id := c.GetHeader("X-Request-Id")
	if !validRequestID.MatchString(id) {
		id = ids.New("req")
	}
	c.Set(ctxRequestID, id)
	c.Header("X-Request-Id", id)
	c.Next()
}

func requestID(c *gin.Context) string { return c.GetString(ctxRequestID) }

// recoverMiddleware turns a panic into a logged 500 in the contract's shape.
func (s *Server) recoverMiddleware(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r) // the client is gone; let net/http close the connection quietly
			}
			s.log.Error("panic", "request_id", requestID(c), "path", c.Request.URL.Path, "panic", fmt.Sprint(r),
				"stack", string(debug.Stack()))
			if !c.Writer.Written() {
				writeError(c, apierr.Internal())
			}
			c.Abort()
		}
	}()
	c.Next()
}

// bodyLimitMiddleware reads a request body into memory before anything
// else sees it, within bounds: at most MaxBodyBytes (else 413), complete
// within BodyReadTimeout of reaching this middleware (else 408), and only
// while the client's address (the TCP peer) is sending fewer than
// MaxBodiesPerIP bodies and the process fewer than MaxBodiesInFlight (else
// 429 with Retry-After, before a byte of the body is read). A refused or
// failed body closes the connection.
//
// So a client that trickles its body holds a connection for BodyReadTimeout
// at most, never a handler, and its slot only while bytes are arriving (not
// while auth or the handler works). The connection's read deadline is
// cleared before the handler runs: a streamed response may last minutes, and
// net/http watches the connection for a client disconnect while it does.
// Requests without a body (GET, Content-Length: 0) pass untouched and are not
// counted.
func (s *Server) bodyLimitMiddleware() gin.HandlerFunc {
	gate := newBodyGate(s.cfg.MaxBodiesPerIP, s.cfg.MaxBodiesInFlight)
	refusals := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "beaver_http_request_bodies_refused_total",
		Help: "Request bodies refused or cut off, by reason."}, []string{"reason"})
	s.Registry.MustRegister(refusals, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "beaver_http_request_bodies_in_flight", Help: "Request bodies being received now."},
		func() float64 { return float64(gate.inFlight.Load()) }))
	refused := map[string]prometheus.Counter{}
	for _, r := range []string{bodyPerIP, bodyInFlight, "timeout", "too_large"} {
		refused[r] = refusals.WithLabelValues(r)
	}
	limit, timeout := s.cfg.MaxBodyBytes, s.cfg.BodyReadTimeout
	return func(c *gin.Context) {
		r := c.Request
		if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			c.Next()
			return
		}
		rc := http.NewResponseController(c.Writer)
		if r.ContentLength > limit {
			refused["too_large"].Inc()
			refuseBody(c, rc, tooLarge(limit))
			return
		}
		ip := clientIP(c)
		if full := gate.acquire(ip); full != "" {
			refused[full].Inc()
			refuseBody(c, rc, tooManyBodies(full))
			return
		}
		body, err := func() ([]byte, error) {
			defer gate.release(ip)
			return readBody(rc, r.Body, r.ContentLength, limit, timeout)
		}()
		if err != nil {
			e := bodyReadError(err, timeout)
			switch e.Status {
			case http.StatusRequestTimeout:
				refused["timeout"].Inc()
			case http.StatusRequestEntityTooLarge:
				refused["too_large"].Inc()
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

// readBody reads body to its end, at most limit bytes, with the
// connection's read deadline timeout from now; on success the deadline is
// cleared again. Where the ResponseWriter cannot set deadlines (an
// in-process recorder) the body is read without one. The buffer starts at
// the declared length, up to 64 KiB (a declared length costs the client
// nothing), and grows as bytes arrive.
func readBody(rc *http.ResponseController, body io.Reader, declared, limit int64, timeout time.Duration) ([]byte, error) {
	deadline := rc.SetReadDeadline(time.Now().Add(timeout)) == nil
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
		if int64(len(buf)) > limit {
			return nil, &http.MaxBytesError{Limit: limit}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if deadline {
		if err := rc.SetReadDeadline(time.Time{}); err != nil {
			return nil, err
		}
	}
	return buf, nil
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
// the read deadline → 408, anything else (a cut connection, a bad chunk) →
// 400.
func bodyReadError(err error, timeout time.Duration) *apierr.Error {
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		return tooLarge(mbe.Limit)
	case errors.As(err, &ne) && ne.Timeout():
		return &apierr.Error{Status: http.StatusRequestTimeout, Type: "invalid_request_error", Code: "request_timeout",
			Message: fmt.Sprintf("the request body did not arrive within %s", timeout)}
	}
	return apierr.Invalid("could not read the request body")
}

func tooManyBodies(which string) *apierr.Error {
	if which == bodyPerIP {
		return apierr.RateLimited(time.Second, "too many request bodies are being sent from your address at once; retry in a second")
	}
	return apierr.RateLimited(time.Second, "the server is receiving too many request bodies at once; retry in a second")
}

// memBody is a request body already read into memory.
type memBody struct{ bytes.Reader }

func (*memBody) Close() error { return nil }

// Which cap refused a body (also the refusal metric's reason label).
const (
	bodyPerIP    = "per_ip"
	bodyInFlight = "in_flight"
)

// bodyGate counts the request bodies being received, per client address
// and in all. A cap of 0 means none.
type bodyGate struct {
	perIP, total int64
	inFlight     atomic.Int64
	mu           sync.Mutex
	byIP         map[string]int64
}

func newBodyGate(perIP, total int64) *bodyGate {
	return &bodyGate{perIP: perIP, total: total, byIP: map[string]int64{}}
}

// acquire takes a slot for one body from ip; it returns "" when taken, else
// which cap is full. Every "" must be followed by one release(ip).
func (g *bodyGate) acquire(ip string) string {
	if n := g.inFlight.Add(1); g.total > 0 && n > g.total {
		g.inFlight.Add(-1)
		return bodyInFlight
	}
	if g.perIP > 0 {
		g.mu.Lock()
		n := g.byIP[ip]
		if n >= g.perIP {
			g.mu.Unlock()
			g.inFlight.Add(-1)
			return bodyPerIP
		}
		g.byIP[ip] = n + 1
		g.mu.Unlock()
	}
	return ""
}

func (g *bodyGate) release(ip string) {
	if g.perIP > 0 {
		g.mu.Lock()
		if n := g.byIP[ip]; n > 1 {
			g.byIP[ip] = n - 1
		} else {
			delete(g.byIP, ip)
		}
		g.mu.Unlock()
	}
	g.inFlight.Add(-1)
}

func tooLarge(n int64) *apierr.Error {
	return &apierr.Error{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error",
		Code: "request_too_large", Message: fmt.Sprintf("request body is larger than %d bytes", n)}
}

// corsMiddleware allows the configured browser origins, with preflight.
func (s *Server) corsMiddleware(c *gin.Context) {
	origin := c.GetHeader("Origin")
	if origin == "" || len(s.cfg.CORSOrigins) == 0 {
		c.Next()
		return
	}
	allowed := slices.Contains(s.cfg.CORSOrigins, "*") || slices.Contains(s.cfg.CORSOrigins, strings.TrimRight(origin, "/"))
	if allowed {
		h := c.Writer.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Expose-Headers", "X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, x-ratelimit-limit-requests, x-ratelimit-remaining-requests, x-ratelimit-reset-requests, Retry-After, X-Beaver-Cost-Micros, X-Beaver-Balance-Micros")
	}
	if c.Request.Method == http.MethodOptions && c.GetHeader("Access-Control-Request-Method") != "" {
		if allowed {
			h := c.Writer.Header()
			h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id, Idempotency-Key, X-Api-Key, Anthropic-Version, Anthropic-Beta")
			h.Set("Access-Control-Max-Age", "600")
		}
		c.AbortWithStatus(http.StatusNoContent)
		return
	}
	c.Next()
}

// metricsMiddleware counts requests and observes latency per route.
func (s *Server) metricsMiddleware(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := strconv.Itoa(c.Writer.Status())
	s.metrics.requests.WithLabelValues(c.Request.Method, route, status).Inc()
	s.metrics.latency.WithLabelValues(c.Request.Method, route).Observe(time.Since(start).Seconds())
}

// authenticate requires a valid bearer token (API key or session).
func (s *Server) authenticate(c *gin.Context) {
	h := c.GetHeader("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		writeError(c, apierr.Unauthorized("missing credentials: send Authorization: Bearer <API key or access token>"))
		return
	}
	p, err := s.auth.Authenticate(c.Request.Context(), strings.TrimSpace(token))
	if err != nil {
		s.fail(c, err)
		c.Abort()
		return
	}
	c.Set(ctxPrincipal, p)
	c.Next()
}

func principal(c *gin.Context) *auth.Principal {
	p, _ := c.Get(ctxPrincipal)
	pp, _ := p.(*auth.Principal)
	return pp
}

// sessionOnly refuses API keys on routes that need a signed-in person.
func sessionOnly(c *gin.Context) {
	if p := principal(c); p == nil || !p.IsSession() {
		writeError(c, apierr.Forbidden("this endpoint needs a signed-in session, not an API key"))
		return
	}
	c.Next()
}

// adminOnly requires a session of an admin.
func adminOnly(c *gin.Context) {
	p := principal(c)
	if p == nil || !p.IsSession() || p.Account.Role != models.RoleAdmin {
		writeError(c, apierr.Forbidden("admin role required"))
		return
	}
	c.Next()
}

// bindJSON decodes a JSON body into dst. strict refuses unknown fields (PATCH
// endpoints: a read-only or misspelt field must not be silently ignored).
func bindJSON(c *gin.Context, dst any, strict bool) error {
	// The same strict reader as the auth routes: exactly one JSON object,
	// nothing after it (a stray "]" or "}" is refused, not ignored).
	return bindBody(c, dst, strict)
}
