package chat

import (
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends c encoded as json.Marshal encodes it, byte for byte.
// A stream writes one chunk per token or so: the common chunk (text deltas,
// a role, a finish reason) is written here without reflection and without
// the second pass encoding/json makes over a MarshalJSON's output; any
// other (usage, errors, tool calls, logprobs, extras) goes through
// encoding/json.
func (c *Chunk) AppendJSON(b []byte) ([]byte, error) {
	if !c.plainJSON() {
		out, err := c.marshalReflect()
		if err != nil {
			return b, err
		}
		return append(b, out...), nil
	}
	b = append(b, `{"id":`...)
	b = appendJSONString(b, c.ID)
	b = append(b, `,"object":`...)
	b = appendJSONString(b, c.Object)
	b = append(b, `,"created":`...)
	b = strconv.AppendInt(b, c.Created, 10)
	b = append(b, `,"model":`...)
	b = appendJSONString(b, c.Model)
	b = append(b, `,"choices":[`...)
	for i := range c.Choices {
		ch := &c.Choices[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(ch.Index), 10)
		b = append(b, `,"delta":{`...)
		d := &ch.Delta
		n := len(b)
		if d.Role != "" {
			b = appendField(b, n, "role", d.Role)
		}
		if d.Content != nil {
			b = appendField(b, n, "content", *d.Content)
		}
		if d.Refusal != nil {
			b = appendField(b, n, "refusal", *d.Refusal)
		}
		if d.ReasoningContent != "" {
			b = appendField(b, n, "reasoning_content", d.ReasoningContent)
		}
		b = append(b, '}')
		if len(ch.Logprobs) > 0 { // plainJSON: "null", as OpenAI sends on every chunk
			b = append(b, `,"logprobs":null`...)
		}
		b = append(b, `,"finish_reason":`...)
		if ch.FinishReason == nil {
			b = append(b, "null"...)
		} else {
			b = appendJSONString(b, *ch.FinishReason)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...), nil
}

// appendField appends "name":v to an object begun at start.
func appendField(b []byte, start int, name, v string) []byte {
	if len(b) > start {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `":`...)
	return appendJSONString(b, v)
}

// plainJSON reports whether AppendJSON can write c itself. A choice's
// logprobs of null (json.RawMessage keeps the literal: OpenAI and every
// compatible provider send "logprobs":null on each chunk) is written as
// encoding/json writes it.
func (c *Chunk) plainJSON() bool {
	if c.Usage != nil || c.Error != nil || len(c.Citations) > 0 || len(c.SearchResults) > 0 || len(c.GroundingMetadata) > 0 {
		return false
	}
	for i := range c.Choices {
		if lp := c.Choices[i].Logprobs; len(lp) > 0 && string(lp) != "null" || len(c.Choices[i].Delta.ToolCalls) > 0 {
			return false
		}
	}
	return true
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way encoding/json does
// by default: <, > and & escaped for HTML, invalid UTF-8 as U+FFFD, U+2028
// and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
