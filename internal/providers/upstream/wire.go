package upstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// StatusForType guesses the HTTP status an error type stands for, for error
// events inside a stream (which carry a type but no status). It knows
// OpenAI's and Anthropic's type names; anything else is a 500.
func StatusForType(t string) int {
	switch t {
	case "invalid_request_error":
		return http.StatusBadRequest
	case "authentication_error":
		return http.StatusUnauthorized
	case "permission_error":
		return http.StatusForbidden
	case "not_found_error":
		return http.StatusNotFound
	case "request_too_large":
		return http.StatusRequestEntityTooLarge
	case "rate_limit_error", "rate_limit_exceeded", "requests", "tokens":
		return http.StatusTooManyRequests
	case "overloaded_error":
		return 529
	}
	return http.StatusInternalServerError
}

// BadResponse is the *Error of a 2xx answer Beaver cannot understand.
func BadResponse(what string, err error) *Error {
	msg := "invalid " + what + " from upstream"
	if err != nil {
		msg += ": " + err.Error()
	}
	return &Error{Status: http.StatusBadGateway, Message: msg, Err: err}
}

var idSeq atomic.Uint64

// NewID returns a process-unique id with the given prefix, for responses whose
// upstream gives none (the API replaces response ids anyway).
func NewID(prefix string) string {
	return prefix + strconv.FormatInt(time.Now().UnixNano(), 36) + strconv.FormatUint(idSeq.Add(1), 36)
}

// Ptr returns a pointer to v.
func Ptr[T any](v T) *T { return &v }

// ParseDataURL splits an image's "data:<media type>;base64,<data>" URL into
// its media type and base64 data.
func ParseDataURL(u string) (mediaType, data string, err error) {
	meta, data, ok := strings.Cut(strings.TrimPrefix(u, "data:"), ",")
	mediaType, enc, _ := strings.Cut(meta, ";")
	if !ok || enc != "base64" || mediaType == "" || data == "" {
		return "", "", errors.New("image data URLs must look like data:<media type>;base64,<data>")
	}
	return mediaType, data, nil
}

// UsageConvention records how a provider's usage fields relate to OpenAI's
// convention (completion_tokens includes reasoning_tokens; prompt_tokens
// includes cached_tokens), which is what adapters hand on and what Beaver
// bills. It is a property of each provider's configuration because vendors
// that speak OpenAI's wire disagree on it:
//
//	provider   completion ⊇ reasoning   prompt ⊇ cached
//	openai     yes                      yes
//	deepseek   yes                      yes (prompt_cache_hit_tokens)
//	xai        no: billed on top        yes
//	perplexity yes (no reasoning)       yes   (its legacy Chat Completions API)
//
// Anthropic and Gemini have wire formats of their own, whose adapters apply
// their rules (input_tokens excludes cache reads and writes; Gemini's
// thoughtsTokenCount is outside candidatesTokenCount); the Responses format
// (OpenAI, Perplexity's Agent API) follows OpenAI's convention.
type UsageConvention struct {
	// ReasoningOutsideCompletion: completion_tokens excludes
	// completion_tokens_details.reasoning_tokens, which the provider bills
	// as output on top (xAI).
	ReasoningOutsideCompletion bool
}

// TokenCount reads a count endpoint's answer, a JSON object whose field
// holds the count (Anthropic's input_tokens, Gemini's totalTokens); what
// names the answer in errors.
func TokenCount(data []byte, field, what string) (int, error) {
	var v map[string]json.RawMessage
	if err := json.Unmarshal(data, &v); err != nil {
		return 0, BadResponse(what, err)
	}
	var n *int
	if raw, ok := v[field]; !ok || json.Unmarshal(raw, &n) != nil || n == nil || *n < 0 {
		return 0, BadResponse(what, fmt.Errorf("no %s in %.200s", field, data))
	}
	return *n, nil
}

// Present is raw, or nil when it is absent or JSON null: a provider's
// optional object to pass on only when there is one.
func Present(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return raw
}
