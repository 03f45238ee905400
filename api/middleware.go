package api

import (
	"fmt"
	"net/http"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/audit"
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

// auditMeta puts where a request came from into its context, for the
// audit entries recorded while it is served (audit.Record reads it).
func auditMeta(c *gin.Context) {
	m := audit.Meta{IP: c.ClientIP(), UserAgent: c.Request.UserAgent(), RequestID: requestID(c)}
	c.Request = c.Request.WithContext(audit.WithMeta(c.Request.Context(), m))
	c.Next()
}

// setPrincipal records who the request acts as, for handlers and as the
// actor of its audit entries.
func setPrincipal(c *gin.Context, p *auth.Principal) {
	c.Set(ctxPrincipal, p)
	tagAccount(c, p)
	m := audit.MetaFrom(c.Request.Context())
	m.Actor = audit.Subject(audit.KindAccount, p.Account.ID)
	if p.Key != nil {
		m.Actor = audit.Subject(audit.KindKey, p.Key.ID)
	}
	c.Request = c.Request.WithContext(audit.WithMeta(c.Request.Context(), m))
}

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
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id, Idempotency-Key, X-Api-Key, Anthropic-Version, Anthropic-Beta, X-Goog-Api-Key, X-Goog-Api-Client")
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
	method, status := c.Request.Method, strconv.Itoa(c.Writer.Status())
	afterStream(c, func() { // a detached stream counts when it ends
		s.metrics.requests.WithLabelValues(method, route, status).Inc()
		s.metrics.latency.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
	})
}

// authenticate requires a valid bearer token (API key or session).
func (s *Server) authenticate(c *gin.Context) {
	h := c.GetHeader("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		writeError(c, apierr.Unauthorized("missing credentials: send Authorization: Bearer <API key or access token>"))
		return
	}
	p, err := s.authenticateToken(c.Request.Context(), strings.TrimSpace(token))
	if err != nil {
		s.fail(c, err)
		c.Abort()
		return
	}
	setPrincipal(c, p)
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
