// Package apierr is the one place where failures get their HTTP status,
// OpenAI-shaped type and code. Domain packages return these errors; the API
// renders them; anything else becomes a logged 500.
package apierr

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Error is a failure the client should see. It renders as OpenAI's error
// object, {"message", "type", "param", "code"}, plus Extra.
type Error struct {
	Status  int
	Type    string
	Code    string
	Message string
	// Param names the request field at fault; "" renders as "param": null.
	// OpenAI's schema requires the key on every error, so it is always sent.
	Param      string
	RetryAfter time.Duration  // sets Retry-After when > 0
	Extra      map[string]any // extra fields inside "error" (e.g. limit_source)
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// ParamValue is error.param as rendered: the field's name, or nil for null.
func (e *Error) ParamValue() any {
	if e.Param == "" {
		return nil
	}
	return e.Param
}

// WithParam returns a copy naming the offending request field in error.param.
func (e *Error) WithParam(param string) *Error {
	c := *e
	c.Param = param
	return &c
}

// With returns a copy with an extra field inside the error object. "param"
// is the first-class Param field (a string sets it; anything else clears it),
// so it is never rendered twice.
func (e *Error) With(k string, v any) *Error {
	if k == "param" {
		s, _ := v.(string)
		return e.WithParam(s)
	}
	c := *e
	c.Extra = map[string]any{k: v}
	for k2, v2 := range e.Extra {
		c.Extra[k2] = v2
	}
	return &c
}

// As extracts an *Error from err.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

func mk(status int, typ, code, format string, args ...any) *Error {
	return &Error{Status: status, Type: typ, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Constructors for the contract's codes.
func Invalid(format string, args ...any) *Error {
	return mk(http.StatusBadRequest, "invalid_request_error", "invalid_request", format, args...)
}
func InvalidToken() *Error {
	return mk(http.StatusBadRequest, "invalid_request_error", "invalid_token", "the token is invalid, expired or already used")
}
func Unauthorized(format string, args ...any) *Error {
	return mk(http.StatusUnauthorized, "authentication_error", "unauthorized", format, args...)
}
func InvalidAPIKey() *Error {
	return mk(http.StatusUnauthorized, "authentication_error", "invalid_api_key", "invalid, inactive or expired API key")
}
func Forbidden(format string, args ...any) *Error {
	return mk(http.StatusForbidden, "permission_error", "forbidden", format, args...)
}
func AccountDisabled() *Error {
	return mk(http.StatusForbidden, "permission_error", "account_disabled", "this account is disabled")
}
func TwoFactorRequired() *Error {
	return mk(http.StatusForbidden, "permission_error", "two_factor_required",
		"admin accounts must turn on two-factor authentication (POST /auth/2fa/enroll, then /auth/2fa/confirm) before using admin endpoints")
}
func EmailNotVerified() *Error {
	return mk(http.StatusForbidden, "permission_error", "email_not_verified", "verify your email address first")
}
func NotFound(format string, args ...any) *Error {
	return mk(http.StatusNotFound, "invalid_request_error", "not_found", format, args...)
}
func ModelNotFound(model string) *Error {
	return mk(http.StatusNotFound, "invalid_request_error", "model_not_found", "model %q does not exist or is not active", model)
}

// ModelRetired is a request for a model an admin retired: a 404 like an
// unknown model's, whose message gives the date and, when there is one, the
// model to use instead.
func ModelRetired(model string, on time.Time, replacement string) *Error {
	msg := fmt.Sprintf("model %s was retired on %s", model, on.UTC().Format(time.DateOnly))
	if replacement != "" {
		msg += "; use " + replacement + " instead"
	}
	return mk(http.StatusNotFound, "invalid_request_error", "model_retired", "%s", msg)
}
func Conflict(format string, args ...any) *Error {
	return mk(http.StatusConflict, "invalid_request_error", "conflict", format, args...)
}
func InsufficientBalance(format string, args ...any) *Error {
	return mk(http.StatusPaymentRequired, "insufficient_quota", "insufficient_balance", format, args...).With("limit_source", "balance")
}
func KeyLimitExceeded(format string, args ...any) *Error {
	return mk(http.StatusPaymentRequired, "insufficient_quota", "key_limit_exceeded", format, args...).With("limit_source", "key_limit")
}
func RateLimited(retry time.Duration, format string, args ...any) *Error {
	e := mk(http.StatusTooManyRequests, "rate_limit_error", "rate_limit_exceeded", format, args...)
	e.RetryAfter = retry
	return e
}
func QuotaExceeded(retry time.Duration, format string, args ...any) *Error {
	e := mk(http.StatusTooManyRequests, "rate_limit_error", "monthly_quota_exceeded", format, args...)
	e.RetryAfter = retry
	return e
}
func Unavailable(format string, args ...any) *Error {
	return mk(http.StatusServiceUnavailable, "api_error", "service_unavailable", format, args...)
}
func Internal() *Error {
	return mk(http.StatusInternalServerError, "api_error", "internal_error", "internal server error")
}
