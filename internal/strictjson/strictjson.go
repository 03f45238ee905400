// Package strictjson is the one strict JSON decoder: request bodies
// (every inference dialect's and the account API's) and the files Beaver
// reads are decoded here, refusing what they do not declare.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

// ErrNotObject is Object's error for a body that is not a JSON object.
var ErrNotObject = errors.New("not a JSON object")

// Decode decodes one JSON value from b into v, refusing fields v does not
// declare (see UnknownField).
func Decode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// UnknownField is the name of the field an error of Decode refuses.
func UnknownField(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	name, ok := strings.CutPrefix(err.Error(), "json: unknown field ")
	return strings.Trim(name, `"`), ok
}

// Object reads b as one JSON object, by field, for a parser that checks
// each name against the fields it models (a field sent as null is kept:
// see IsNull). It fails with ErrNotObject, or the JSON syntax error.
func Object(b []byte) (map[string]json.RawMessage, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, ErrNotObject
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, err
	}
	return fields, nil
}

// IsNull reports whether a field's value is null: the same as not sending it.
func IsNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }
