package chat

import (
	"encoding/json"
	"errors"

	"github.com/beaver-gateway/beaver/internal/strictjson"
)

// DecodeFields reads an inference request body (chat, Anthropic messages,
// Responses, Gemini, embeddings) as one JSON object's fields, for its
// dialect's parser to check each name against the fields it models. Errors
// are *InvalidError.
func DecodeFields(body []byte) (map[string]json.RawMessage, error) {
	fields, err := strictjson.Object(body)
	switch {
	case errors.Is(err, strictjson.ErrNotObject):
		return nil, invalidf("request body must be a JSON object")
	case err != nil:
		return nil, invalidf("invalid JSON body: %v", err)
	}
	return fields, nil
}

// Invalid is a 400 naming the request field at fault (param; "" = none).
func Invalid(param, format string, args ...any) *InvalidError {
	return invalidField(param, format, args...)
}
