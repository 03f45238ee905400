package api

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/internal/messages"
)

// The Anthropic-compatible surface, POST /v1/messages: parse (Anthropic →
// chat) → the same gateway calls as chat → render (chat → Anthropic). It
// answers in Anthropic's shapes throughout, errors included, and takes
// Anthropic's SDKs' credentials (x-api-key) as well as Beaver's.

// messagesAuth authenticates like authenticate, from x-api-key (what
// Anthropic's SDKs send) or Authorization: Bearer, and answers failures in
// Anthropic's error shape. anthropic-version and anthropic-beta are ignored.
func (s *Server) messagesAuth(c *gin.Context) {
	c.Header("Request-Id", requestID(c)) // the header Anthropic's SDKs report as the request id
	token := strings.TrimSpace(c.GetHeader("X-Api-Key"))
	if token == "" {
		if t, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer "); ok {
			token = strings.TrimSpace(t)
		}
	}
	if token == "" {
		s.failMessage(c, apierr.Unauthorized("missing credentials: send x-api-key: <Beaver API key> or Authorization: Bearer <API key or access token>"))
		return
	}
	p, err := s.auth.Authenticate(c.Request.Context(), token)
	if err != nil {
		s.failMessage(c, err)
		return
	}
	c.Set(ctxPrincipal, p)
	c.Next()
}

// createMessage serves POST /v1/messages.
func (s *Server) createMessage(c *gin.Context) {
	p, err := s.checkLimits(c)
	if err != nil {
		s.failMessage(c, err)
		return
	}
	req, err := readRequest(c, messages.Parse)
	if err != nil {
		s.failMessage(c, err)
		return
	}
	call := gateway.Call{Principal: p, Request: req, Model: req.Model, ClientIP: clientIP(c), RequestID: requestID(c),
		OnAttempts: func(a gateway.Attempts) { c.Header("X-Beaver-Attempts", a.String()) }}
	if req.Stream {
		if err := s.gateway.Stream(c.Request.Context(), call, &messageSink{w: c.Writer}); err != nil {
			s.failMessage(c, err)
		}
		return
	}
	done, err := s.gateway.Complete(c.Request.Context(), call)
	if err != nil {
		s.failMessage(c, err)
		return
	}
	setChargeHeaders(c, done.Settlement, done.Response.ID)
	c.JSON(http.StatusOK, messages.FromResponse(done.Response))
}

// countMessageTokens serves POST /v1/messages/count_tokens (Anthropic's
// shape: a messages request without max_tokens → {input_tokens}) for every
// model: counted by the provider's own tokenizer or count endpoint where it
// has one, else Beaver's estimate (X-Beaver-Token-Count: estimated). Not
// billed; rate limited like inference.
func (s *Server) countMessageTokens(c *gin.Context) {
	p, err := s.checkLimits(c)
	if err != nil {
		s.failMessage(c, err)
		return
	}
	req, err := readRequest(c, messages.ParseCount)
	if err != nil {
		s.failMessage(c, err)
		return
	}
	n, exact, err := s.gateway.Count(c.Request.Context(), gateway.Call{Principal: p, Request: req, Model: req.Model,
		ClientIP: clientIP(c), RequestID: requestID(c)})
	if err != nil {
		s.failMessage(c, err)
		return
	}
	how := "provider"
	if !exact {
		how = "estimated"
	}
	c.Header("X-Beaver-Token-Count", how)
	c.JSON(http.StatusOK, gin.H{"input_tokens": n})
}

// failMessage is fail in Anthropic's error shape (messages.ErrorBody), with
// the same statuses and Retry-After.
func (s *Server) failMessage(c *gin.Context, err error) {
	e := s.apiError(c, err)
	if e == nil {
		return
	}
	setRetryAfter(c, e)
	c.AbortWithStatusJSON(e.Status, messages.ErrorBody(e, requestID(c)))
}
