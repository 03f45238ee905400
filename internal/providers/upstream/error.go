package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is a failed upstream call: an HTTP error answer, a network failure, a
// timeout, or an error event in the middle of a stream.
type Error struct {
	Status     int           // upstream HTTP status; 0 for network errors and timeouts
	Message    string        // the provider's own message, kept
	Timeout    bool          // no answer, or no stream event, in time
	RetryAfter time.Duration // from Retry-After / retry-after-ms or Gemini's RetryInfo
	Err        error         // the underlying cause, when there is one
	// CircuitOpen: nothing was sent, because the circuit breaker of every
	// endpoint (base URL and key) of the provider is open.
	CircuitOpen bool
}

func (e *Error) Error() string {
	switch {
	case e.Timeout:
		return "upstream timeout: " + e.Message
	case e.CircuitOpen:
		return "upstream circuit open: " + e.Message
	case e.Status == 0:
		return "upstream request failed: " + e.Message
	}
	return fmt.Sprintf("upstream status %d: %s", e.Status, e.Message)
}

// Unwrap returns the cause, so errors.Is(err, context.Canceled) works.
func (e *Error) Unwrap() error { return e.Err }

// Error types and codes of the contract.
const (
	TypeInvalidRequest  = "invalid_request_error"
	TypeUpstream        = "upstream_error"
	TypeRateLimit       = "rate_limit_error"
	CodeInvalidRequest  = "invalid_request"
	CodeUpstreamError   = "upstream_error"
	CodeUpstreamLimited = "upstream_rate_limited"
	CodeUpstreamTimeout = "upstream_timeout"
)

// HTTP maps the error to the answer Beaver gives its own client:
//
//   - 400/404/413/422 → 400 invalid_request with the upstream's message (the
//     request itself is at fault);
//   - 401/403 → 502 upstream_error: those are the gateway's credentials, and
//     the upstream message may echo part of the key, so it is not passed on;
//   - 429 → 429 upstream_rate_limited with RetryAfter (1s when unknown); the
//     upstream message names the gateway's organisation, so it is replaced;
//   - timeouts → 504 upstream_timeout;
//   - an open circuit breaker → 502 upstream_error with Retry-After (until
//     the next probe);
//   - 5xx, other statuses and network errors → 502 upstream_error.
func (e *Error) HTTP() (status int, errType, code, message string, retryAfter time.Duration) {
	switch {
	case e.Timeout:
		return http.StatusGatewayTimeout, TypeUpstream, CodeUpstreamTimeout,
			"the upstream provider did not answer in time", 0
	case e.CircuitOpen:
		return http.StatusBadGateway, TypeUpstream, CodeUpstreamError,
			"the upstream provider is failing; Beaver stopped calling it for a moment (circuit breaker open)", e.RetryAfter
	case e.Status == 400 || e.Status == 404 || e.Status == 413 || e.Status == 422:
		msg := e.Message
		if msg == "" {
			msg = "the upstream provider rejected the request"
		}
		return http.StatusBadRequest, TypeInvalidRequest, CodeInvalidRequest, msg, 0
	case e.Status == 401 || e.Status == 403:
		return http.StatusBadGateway, TypeUpstream, CodeUpstreamError,
			"upstream rejected the gateway's credentials", 0
	case e.Status == 429:
		ra := e.RetryAfter
		if ra <= 0 {
			ra = time.Second
		}
		return http.StatusTooManyRequests, TypeRateLimit, CodeUpstreamLimited,
			"the upstream provider is rate limiting requests; retry later", ra
	case e.Status == 0:
		msg := "could not reach the upstream provider"
		if errors.Is(e.Err, context.Canceled) {
			msg = "the request was cancelled"
		}
		return http.StatusBadGateway, TypeUpstream, CodeUpstreamError, msg, 0
	}
	msg := fmt.Sprintf("upstream provider error (status %d)", e.Status)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return http.StatusBadGateway, TypeUpstream, CodeUpstreamError, msg, e.RetryAfter
}

// Retryable reports whether the call may be repeated before anything reached
// the caller: the failure is the provider's moment, not the request's fault.
// Network errors other than timeouts and cancellation (connection refused,
// reset before an answer), 408, 409, 429 and every 5xx (529 included) are;
// other 4xx, timeouts, cancellation and an open circuit are not. (401/403
// are the key's: see KeyRejected.)
func (e *Error) Retryable() bool {
	if e.CircuitOpen {
		return false
	}
	switch s := e.Status; {
	case s == 0:
		return !e.Timeout && !errors.Is(e.Err, context.Canceled) && !errors.Is(e.Err, context.DeadlineExceeded)
	case s == http.StatusRequestTimeout, s == http.StatusConflict, s == http.StatusTooManyRequests, s >= 500:
		return true
	}
	return false
}

// Unavailable reports an answer that says the provider, or the way to it,
// is down or overloaded whatever was asked: 502, 503, 504 and 529
// (Anthropic's overloaded). A 500 may be the request's doing.
func (e *Error) Unavailable() bool {
	switch e.Status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, 529:
		return true
	}
	return false
}

// KeyRejected reports an answer that refuses the key the call was sent with
// (401, 403): another key may succeed where this one never will.
func (e *Error) KeyRejected() bool {
	return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
}

// Cancelled reports a call whose caller went away (or whose caller's own
// deadline passed): it says nothing about the upstream.
func (e *Error) Cancelled() bool {
	return errors.Is(e.Err, context.Canceled) || errors.Is(e.Err, context.DeadlineExceeded)
}

// RetryAfterHeader reads retry-after-ms (OpenAI, milliseconds) or Retry-After
// (seconds or an HTTP date). It returns 0 when neither is usable.
func RetryAfterHeader(h http.Header) time.Duration {
	if v := h.Get("retry-after-ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s > 0 {
			return time.Duration(s * float64(time.Second))
		}
		return 0
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// ErrorParser builds the *Error of a non-2xx answer from its body; each wire
// format has its own body shape.
type ErrorParser func(status int, header http.Header, body []byte) *Error

// GenericError is the fallback when a body has no recognisable message: it
// keeps a short, trimmed copy of the body as the message.
func GenericError(status int, header http.Header, body []byte) *Error {
	msg := strings.TrimSpace(string(body))
	if len(msg) > 512 {
		msg = msg[:512] + "…"
	}
	if msg == "" || !json.Valid(body) && strings.HasPrefix(msg, "<") { // HTML error pages say nothing useful
		msg = http.StatusText(status)
	}
	return &Error{Status: status, Message: msg, RetryAfter: RetryAfterHeader(header)}
}
