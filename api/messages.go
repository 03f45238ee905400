package api

import (
	"context"
	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/auth"
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
	s.authWith(c, s.failMessage, "missing credentials: send x-api-key: <Beaver API key> or Authorization: Bearer <API key or access token>",
		c.GetHeader("X-Api-Key"), bearer(c))
}

// createMessage serves POST /v1/messages.
func (s *Server) createMessage(c *gin.Context) {
	serveDialect(s, c, chatDialect[*chat.Request]{
		fail:  s.failMessage,
		parse: func(_ *auth.Principal, b []byte) (*chat.Request, error) { return messages.Parse(b) },
		call:  func(req *chat.Request) (*chat.Request, string, error) { return req, req.Model, nil },
		sink: func(w streamWriter, _ context.Context, _ *auth.Principal, _ *chat.Request) (gateway.Sink, func()) {
			return &messageSink{w: w}, nil
		},
		render: func(_ *auth.Principal, _ *chat.Request, done *gateway.Completion) (any, string) {
			return messages.FromResponse(done.Response), done.Response.ID
		},
	})
}

// countMessageTokens serves POST /v1/messages/count_tokens (Anthropic's
// shape: a messages request without max_tokens → {input_tokens}) for every
// model: counted by the provider's own tokenizer or count endpoint where it
// has one, else Beaver's estimate (X-Beaver-Token-Count: estimated). Not
// billed; rate limited like inference.
func (s *Server) countMessageTokens(c *gin.Context) {
	serveCount(s, c, s.failMessage, func(_ *auth.Principal, b []byte) (*chat.Request, error) { return messages.ParseCount(b) },
		func(req *chat.Request) string { return req.Model }, "input_tokens")
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
