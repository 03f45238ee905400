package anthropic

import (
	"encoding/json"
	"net/http"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
)

// The Message Batches API (POST /v1/messages/batches) takes, per request,
// the params of a Messages API call, and answers each with a Message or an
// error: these are the adapter's own translations, so a batch line goes to
// Anthropic and comes back exactly as the same direct request does.

// BatchParams is req as the params of one Message Batches request: the
// body a direct, non-streamed request sends.
func BatchParams(req *chat.Request) (json.RawMessage, error) {
	return encodeRequest(req, false)
}

// BatchMessage is a succeeded batch result's message as the OpenAI
// chat.completion (with its usage) a direct request answers.
func BatchMessage(raw json.RawMessage) (*chat.Response, error) {
	var m wireMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, upstream.BadResponse("batch result message", err)
	}
	return m.toResponse(), nil
}

// BatchError is an errored batch result's error, an error response
// ({"type":"error","error":{"type","message"}}), as the failure the same
// direct request's error answer is; its status is the error type's (a
// batch result carries none).
func BatchError(raw json.RawMessage) *upstream.Error {
	var v struct {
		Type    string      `json:"type"`
		Message string      `json:"message"`
		Error   *wireErrObj `json:"error"`
	}
	if json.Unmarshal(raw, &v) == nil {
		if v.Error != nil && v.Error.Type != "" {
			return v.Error.toError(0)
		}
		if v.Type != "" && v.Type != "error" { // the inner object alone
			return (&wireErrObj{Type: v.Type, Message: v.Message}).toError(0)
		}
	}
	return &upstream.Error{Status: http.StatusInternalServerError, Message: "the batch request failed"}
}
