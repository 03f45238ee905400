package gateway

import (
	"context"
	"errors"
	"net/http"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers"
)

// UpstreamError turns a provider failure into the contract's error: upstream
// 400 → 400 with its message, 401/403 → 502, 429 → 429 with Retry-After,
// 5xx → 502, timeout → 504. A request the adapter could not express is 400.
// context.Canceled is returned as is (the client left: nobody reads it).
func UpstreamError(err error) error {
	var pe *providers.Error
	if errors.As(err, &pe) {
		status, typ, code, msg, retry := pe.HTTP()
		return &apierr.Error{Status: status, Type: typ, Code: code, Message: msg, RetryAfter: retry}
	}
	var ie *chat.InvalidError
	if errors.As(err, &ie) {
		return InvalidRequest(ie)
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return &apierr.Error{Status: http.StatusBadGateway, Type: "api_error", Code: "upstream_error", Message: "the upstream provider failed"}
}

// InvalidRequest is the 400 of a request Beaver or an adapter refused,
// naming the offending field in error.param when known.
func InvalidRequest(ie *chat.InvalidError) *apierr.Error {
	return apierr.Invalid("%s", ie.Message).WithParam(ie.Param)
}
