package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/geminiapi"
	"github.com/beaver-gateway/beaver/internal/messages"
)

// fail renders err in the contract's error shape. Errors that are not
// *apierr.Error are logged with the request id and become a plain 500.
func (s *Server) fail(c *gin.Context, err error) {
	if e := s.apiError(c, err); e != nil {
		writeError(c, e)
	}
}

// apiError is err as the *apierr.Error to answer with: an error that is
// not one is logged with the request id and answered as a plain 500. It
// is nil when the client has left (the request is aborted: nobody reads
// an answer).
func (s *Server) apiError(c *gin.Context, err error) *apierr.Error {
	e, ok := apierr.As(err)
	if !ok {
		if errors.Is(err, context.Canceled) && c.Request.Context().Err() != nil {
			c.Abort()
			return nil
		}
		s.log.Error("request failed", "request_id", requestID(c), "method", c.Request.Method,
			"path", c.FullPath(), "err", err)
		_ = c.Error(err) // for error tracking (telemetry.go)
		e = apierr.Internal()
	}
	return e
}

// setRetryAfter sets Retry-After in whole seconds, rounded up, for an
// error that has one.
func setRetryAfter(c *gin.Context, e *apierr.Error) {
	if e.RetryAfter > 0 {
		secs := int64((e.RetryAfter + 999_999_999) / 1_000_000_000)
		c.Header("Retry-After", strconv.FormatInt(secs, 10))
	}
}

// writeError renders OpenAI's error object: message, type, param (the
// offending field, or null: OpenAI's schema requires the key) and code, plus
// the error's extra fields. Every error Beaver answers goes through here.
func writeError(c *gin.Context, e *apierr.Error) {
	body := gin.H{}
	for k, v := range e.Extra {
		body[k] = v
	}
	body["message"], body["type"], body["param"], body["code"] = e.Message, e.Type, e.ParamValue(), e.Code
	setRetryAfter(c, e)
	c.AbortWithStatusJSON(e.Status, gin.H{"error": body})
}

func methodNotAllowed(c *gin.Context) {
	routeError(c, &apierr.Error{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error",
		Code: "method_not_allowed", Message: "method " + c.Request.Method + " is not allowed on " + c.Request.URL.Path})
}

// routeError answers a request no route takes, in the envelope of the
// surface its path is under: Anthropic's under /v1/messages, OpenAI's
// everywhere else.
func routeError(c *gin.Context, e *apierr.Error) {
	if p := c.Request.URL.Path; p == "/v1/messages" || strings.HasPrefix(p, "/v1/messages/") {
		c.Header("Request-Id", requestID(c))
		c.AbortWithStatusJSON(e.Status, messages.ErrorBody(e, requestID(c)))
		return
	}
	if isGeminiRequest(c.Request) {
		c.AbortWithStatusJSON(e.Status, geminiapi.ErrorBody(e))
		return
	}
	writeError(c, e)
}
