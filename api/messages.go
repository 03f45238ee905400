package api

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/chat"
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

// messageSink writes a gateway stream as Anthropic's server-sent events
// (messages.Stream does the translation), flushing each chunk's events.
type messageSink struct {
	w    gin.ResponseWriter
	st   *messages.Stream
	buf  []byte
	gone bool
}

func (s *messageSink) Open(generationID string) {
	s.st = messages.NewStream(generationID)
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Beaver-Generation-Id", generationID)
	s.w.WriteHeader(http.StatusOK)
	s.w.Flush()
}

func (s *messageSink) Send(c *chat.Chunk) bool { return s.write(s.st.Chunk(c)) }

func (s *messageSink) SendError(e *chat.ErrorEvent) bool { return s.write(s.st.Error(e)) }

func (s *messageSink) Done() { s.write(s.st.Done()) }

// write sends events in one write; false means the client is gone. A chunk
// that makes no event (the gateway's error chunk) writes nothing.
func (s *messageSink) write(events []messages.Event) bool {
	if s.gone {
		return false
	}
	if len(events) == 0 {
		return true
	}
	s.buf = s.buf[:0]
	for _, e := range events {
		if b, err := e.AppendSSE(s.buf); err == nil { // cannot fail for these events; one that did would be skipped
			s.buf = b
		}
	}
	if _, err := s.w.Write(s.buf); err != nil {
		s.gone = true
		return false
	}
	s.w.Flush()
	return true
}
