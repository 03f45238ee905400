package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/embedding"
	"github.com/beaver-gateway/beaver/internal/gateway"
)

// The inference pipeline as the HTTP layer sees it: one handler skeleton,
// serve (check → parse → run → render), for every dialect a client may
// speak (OpenAI chat and embeddings, Anthropic messages, OpenAI Responses,
// Gemini). A dialect gives its parse, its sink, its render and its error
// envelope; every money rule is in internal/gateway.

// authWith authenticates a dialect's request by the first of tokens that
// is set (its SDKs' credentials, in the order the dialect prefers them),
// answering failures in the dialect's envelope (fail); missing is the
// message when none is set.
func (s *Server) authWith(c *gin.Context, fail func(*gin.Context, error), missing string, tokens ...string) {
	token := ""
	for _, t := range tokens {
		if token = strings.TrimSpace(t); token != "" {
			break
		}
	}
	if token == "" {
		fail(c, apierr.Unauthorized("%s", missing))
		return
	}
	p, err := s.authenticateToken(c.Request.Context(), token)
	if err != nil {
		fail(c, err)
		return
	}
	setPrincipal(c, p)
	c.Next()
}

// bearer is the token of an Authorization: Bearer header ("" = none).
func bearer(c *gin.Context) string {
	if t, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer "); ok {
		return t
	}
	return ""
}

// serve runs one inference request: the limit check (a verified email
// where required, and the per-minute limit, counted before the body is
// read so malformed requests count too) → parse (the body, at most the
// size the body gate allows) → run; any error is answered by fail, the
// dialect's envelope. No inference handler reads a body or calls the
// gateway outside serve, so none can skip the check.
func serve[R any](s *Server, c *gin.Context, fail func(*gin.Context, error),
	parse func(p *auth.Principal, body []byte) (R, error), run func(p *auth.Principal, req R) error) {
	p, err := s.checkLimits(c)
	if err == nil {
		var req R
		if req, err = readRequest(c, func(b []byte) (R, error) { return parse(p, b) }); err == nil {
			err = run(p, req)
		}
	}
	if err != nil {
		fail(c, err)
	}
}

// chatDialect is a dialect served by the gateway's chat calls (Complete,
// Stream): R is its parsed request.
type chatDialect[R any] struct {
	fail  func(*gin.Context, error)
	parse func(p *auth.Principal, body []byte) (R, error)
	// call is the chat request and the model it asks for ("" = the first
	// of its models); an error refuses it (400).
	call func(req R) (*chat.Request, string, error)
	// sink writes the stream to w; after, when set, runs once the stream
	// ended. ctx is the stream's: it outlives the handler when the stream
	// is detached (detach.go).
	sink func(w streamWriter, ctx context.Context, p *auth.Principal, req R) (s gateway.Sink, after func())
	// render is a non-streamed answer in the dialect's shape and the
	// generation id its X-Beaver-Generation-Id names.
	render func(p *auth.Principal, req R, done *gateway.Completion) (body any, genID string)
	// divert, when set, may serve a valid request itself instead of the
	// gateway (the Responses API's background mode): true = served.
	divert func(p *auth.Principal, req R) bool
	// runError, when set, maps the gateway's errors (not parse's).
	runError func(error) error
}

// serveDialect is serve for a chat dialect.
func serveDialect[R any](s *Server, c *gin.Context, d chatDialect[R]) {
	serve(s, c, d.fail, d.parse, func(p *auth.Principal, req R) error {
		err := runChat(s, c, p, req, d)
		if err != nil && d.runError != nil {
			err = d.runError(err)
		}
		return err
	})
}

// runChat runs a parsed chat request, streamed or not, and renders it.
func runChat[R any](s *Server, c *gin.Context, p *auth.Principal, req R, d chatDialect[R]) error {
	creq, model, err := d.call(req)
	if err != nil {
		return err
	}
	if d.divert != nil && d.divert(p, req) {
		return nil
	}
	call := gateway.Call{Principal: p, Request: creq, Model: model, ClientIP: clientIP(c), RequestID: requestID(c),
		OnAttempts: onAttempts(c)}
	ctx := c.Request.Context()
	if creq.Stream {
		// The stream's context ends with the request until the stream is
		// detached from it (detach.go), then when its client leaves.
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		unlink := context.AfterFunc(ctx, cancel)
		op, err := s.gateway.Open(sctx, call)
		if err != nil {
			unlink()
			cancel()
			return err
		}
		s.relayStream(c, op, sctx, cancel, unlink, func(w streamWriter, ctx context.Context) (gateway.Sink, func()) {
			return d.sink(w, ctx, p, req)
		})
		return nil
	}
	done, err := s.gateway.Complete(ctx, call)
	if err != nil {
		return err
	}
	body, genID := d.render(p, req, done)
	setChargeHeaders(c, done.Settlement, genID)
	c.JSON(http.StatusOK, body)
	return nil
}

// onAttempts sets X-Beaver-Attempts when the gateway tells of the attempts.
func onAttempts(c *gin.Context) func(gateway.Attempts) {
	return func(a gateway.Attempts) { c.Header("X-Beaver-Attempts", a.String()) }
}

// serveCount is serve for a token count (Anthropic's count_tokens,
// Gemini's :countTokens): not billed, rate limited like inference. key
// names the count in the answer ({key: n}).
func serveCount(s *Server, c *gin.Context, fail func(*gin.Context, error),
	parse func(p *auth.Principal, body []byte) (*chat.Request, error), model func(*chat.Request) string, key string) {
	serve(s, c, fail, parse, func(p *auth.Principal, req *chat.Request) error {
		n, exact, err := s.gateway.Count(c.Request.Context(), gateway.Call{Principal: p, Request: req, Model: model(req),
			ClientIP: clientIP(c), RequestID: requestID(c)})
		if err != nil {
			return err
		}
		how := "provider"
		if !exact {
			how = "estimated"
		}
		c.Header("X-Beaver-Token-Count", how)
		c.JSON(http.StatusOK, gin.H{key: n})
		return nil
	})
}

// serveEmbed is serve for an embeddings dialect (OpenAI's, Gemini's):
// render is the answer in its shape.
func serveEmbed(s *Server, c *gin.Context, fail func(*gin.Context, error),
	parse func(p *auth.Principal, body []byte) (*embedding.Request, error), render func(*embedding.Response) any) {
	serve(s, c, fail, parse, func(p *auth.Principal, req *embedding.Request) error {
		done, err := s.gateway.Embed(c.Request.Context(), gateway.EmbedCall{Principal: p, Request: req, ClientIP: clientIP(c),
			RequestID: requestID(c), OnAttempts: onAttempts(c)})
		if err != nil {
			return err
		}
		setChargeHeaders(c, done.Settlement, done.Response.ID)
		c.JSON(http.StatusOK, render(done.Response))
		return nil
	})
}
