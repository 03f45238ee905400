package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/gateway"
)

// The inference endpoints: parse → gateway → render. Every money rule of a
// request lives in internal/gateway.

// chatCompletions serves POST /v1/chat/completions.
func (s *Server) chatCompletions(c *gin.Context) {
	s.serveChat(c, "")
}

// modelChat serves POST /v1/models/{provider}/{model}/chat and
// /v1/models/{model_id}/chat (model id with %2F, or a bare name).
func (s *Server) modelChat(c *gin.Context) {
	path := strings.Trim(c.Param("path"), "/")
	model, ok := strings.CutSuffix(path, "/chat")
	if !ok || model == "" {
		routeError(c, apierr.NotFound("no route for %s %s", c.Request.Method, c.Request.URL.Path))
		return
	}
	s.serveChat(c, model)
}

// serveChat runs one inference request; pathModel is the model named by the
// path ("" = the body's).
func (s *Server) serveChat(c *gin.Context, pathModel string) {
	serveDialect(s, c, chatDialect[*chat.Request]{
		fail:  s.fail,
		parse: func(_ *auth.Principal, b []byte) (*chat.Request, error) { return chat.ParseRequest(b) },
		call: func(req *chat.Request) (*chat.Request, string, error) {
			if pathModel != "" {
				return req, pathModel, nil
			}
			if req.Model == "" && len(req.Models) == 0 {
				return nil, "", apierr.Invalid("model is required").WithParam("model")
			}
			return req, req.Model, nil // "" = the first of models
		},
		sink: func(w streamWriter, _ context.Context, _ *auth.Principal, _ *chat.Request) (gateway.Sink, func()) {
			return &sseSink{w: w}, nil
		},
		render: func(_ *auth.Principal, _ *chat.Request, done *gateway.Completion) (any, string) {
			return done.Response, done.Response.ID
		},
	})
}

// setChargeHeaders sets the headers of a non-streamed answer that say what
// it cost and what the balance is now.
func setChargeHeaders(c *gin.Context, st *billing.Settlement, generationID string) {
	h := c.Writer.Header()
	h.Set("X-Beaver-Cost-Micros", strconv.FormatInt(st.ChargedMicros, 10))
	h.Set("X-Beaver-Balance-Micros", strconv.FormatInt(st.BalanceAfterMicros, 10))
	h.Set("X-Beaver-Generation-Id", generationID)
}

// setRateLimitHeaders sets the contract's X-RateLimit-* headers and OpenAI's
// x-ratelimit-*-requests, whose reset is the time until the window reopens
// as a duration ("1s", "59s", "1m0s"), the same whole seconds a 429's
// Retry-After gives.
func setRateLimitHeaders(h http.Header, rl gateway.RateLimit) {
	limit, remaining := strconv.FormatInt(rl.Limit, 10), strconv.FormatInt(rl.Remaining, 10)
	h.Set("X-RateLimit-Limit", limit)
	h.Set("X-RateLimit-Remaining", remaining)
	h.Set("X-RateLimit-Reset", strconv.FormatInt(rl.Reset.Unix(), 10))
	h.Set("X-Ratelimit-Limit-Requests", limit)
	h.Set("X-Ratelimit-Remaining-Requests", remaining)
	h.Set("X-Ratelimit-Reset-Requests", rl.ResetIn.String())
}

// checkLimits counts an inference request against its key's (or
// session's) per-minute limit and sets the rate-limit headers. It runs
// before the body is parsed, so malformed requests count too.
func (s *Server) checkLimits(c *gin.Context) (*auth.Principal, error) {
	p := principal(c)
	rl, err := s.gateway.Check(c.Request.Context(), p)
	if rl.Applied {
		setRateLimitHeaders(c.Writer.Header(), rl)
	}
	return p, err
}

// readAll reads a request body: 413 when it is larger than the limit the
// body gate or a handler put on it, 400 when it could not be read.
func readAll(body io.Reader) ([]byte, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(mbe.Limit)
		}
		return nil, apierr.Invalid("could not read the request body")
	}
	return b, nil
}

// readRequest reads an inference body and parses it with parse (chat,
// Anthropic messages, Responses): 413 when too large, a field's 400 (with
// its param) for what parse refuses.
func readRequest[R any](c *gin.Context, parse func([]byte) (R, error)) (R, error) {
	var zero R
	body, err := readAll(c.Request.Body)
	if err != nil {
		return zero, err
	}
	req, err := parse(body)
	if err != nil {
		var ie *chat.InvalidError
		if errors.As(err, &ie) {
			return zero, gateway.InvalidRequest(ie)
		}
		if e, ok := apierr.As(err); ok { // the parser's own answer (a stored response not found, ...)
			return zero, e
		}
		return zero, apierr.Invalid("invalid request: %s", err.Error())
	}
	return req, nil
}
