package messages

import (
	"net/http"

	"github.com/beaver-gateway/beaver/internal/apierr"
)

// Anthropic's error types (error.type), as its SDKs' ErrorType lists them.
const (
	ErrInvalidRequest  = "invalid_request_error"
	ErrAuthentication  = "authentication_error"
	ErrBilling         = "billing_error"
	ErrPermission      = "permission_error"
	ErrNotFound        = "not_found_error"
	ErrRequestTooLarge = "request_too_large"
	ErrRateLimit       = "rate_limit_error"
	ErrTimeout         = "timeout_error"
	ErrAPI             = "api_error"
	ErrOverloaded      = "overloaded_error"
)

// ErrorType is the Anthropic error type of an HTTP status, per Anthropic's
// documented table: 400 invalid_request_error (also used for the other 4xx
// it does not list), 401 authentication_error, 402 billing_error, 403
// permission_error, 404 not_found_error, 413 request_too_large, 429
// rate_limit_error, 504 timeout_error, 529 overloaded_error, other 5xx
// api_error. The status itself is Beaver's, the same as on chat.
func ErrorType(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return ErrAuthentication
	case status == http.StatusPaymentRequired:
		return ErrBilling
	case status == http.StatusForbidden:
		return ErrPermission
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusRequestEntityTooLarge:
		return ErrRequestTooLarge
	case status == http.StatusTooManyRequests:
		return ErrRateLimit
	case status == http.StatusGatewayTimeout:
		return ErrTimeout
	case status == 529:
		return ErrOverloaded
	case status >= 500:
		return ErrAPI
	}
	return ErrInvalidRequest
}

// streamErrorType is the Anthropic error type of an error that ends a
// stream, which carries Beaver's code but no status.
func streamErrorType(code string) string {
	switch code {
	case "invalid_request":
		return ErrInvalidRequest
	case "upstream_rate_limited", "rate_limit_exceeded", "monthly_quota_exceeded":
		return ErrRateLimit
	case "upstream_timeout":
		return ErrTimeout
	case "insufficient_balance", "key_limit_exceeded":
		return ErrBilling
	}
	return ErrAPI
}

// ErrorBody is the answer of a failed request in Anthropic's shape,
// {"type": "error", "error": {"type", "message"}, "request_id"}. The error
// object also keeps what every Beaver error carries (code, param and
// extras such as limit_source), so it is the contract's OpenAI-shaped
// error too: error.message, error.type and error.code, all non-empty.
func ErrorBody(e *apierr.Error, requestID string) map[string]any {
	obj := make(map[string]any, len(e.Extra)+4)
	for k, v := range e.Extra {
		obj[k] = v
	}
	obj["type"], obj["message"], obj["code"], obj["param"] = ErrorType(e.Status), e.Message, e.Code, e.ParamValue()
	body := map[string]any{"type": "error", "error": obj}
	if requestID != "" {
		body["request_id"] = requestID
	}
	return body
}
