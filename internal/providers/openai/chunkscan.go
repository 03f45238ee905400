package openai

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/beaver-gateway/beaver/internal/chat"
)

// decodeChunk reads one stream event's chunk into wc exactly as
// json.Unmarshal would. A stream decodes one chunk per token: the common
// chunk (id, created, model, choices whose delta has a role, content,
// refusal or reasoning, logprobs, finish_reason, "usage": null) is read
// here in one pass without reflection; any other (usage counts, an error,
// tool calls, Perplexity's extras, escapes in keys, a key that matches a
// field only case-insensitively, a duplicate key, anything malformed) goes
// to json.Unmarshal, which also reports the errors.
//
// prev is the stream's previous chunk: its id and model, the same on every
// chunk, are taken instead of copying them again.
func decodeChunk(data []byte, wc *wireChunk, prev *chat.Chunk) error {
	if scanChunk(data, wc, prev) {
		return nil
	}
	*wc = wireChunk{}
	return json.Unmarshal(data, wc)
}

// chunkScanner reads a JSON text by hand; every method reports false for
// anything it does not take on, and the caller falls back to encoding/json.
type chunkScanner struct {
	b []byte
	i int
}

var jsonNull = json.RawMessage("null")

// maxSkipDepth bounds the nesting of the values skipped (unknown fields);
// deeper ones go to encoding/json.
const maxSkipDepth = 64

func scanChunk(data []byte, wc *wireChunk, prev *chat.Chunk) bool {
	s := chunkScanner{b: data}
	var seen uint8
	ok := s.object(func(key []byte) bool {
		var bit uint8
		var ok bool
		switch string(key) {
		case "id":
			bit = 1
			wc.ID, ok = s.stringOrNull(wc.ID, prev.ID)
		case "created":
			bit = 2
			wc.Created, ok = s.intOrNull(wc.Created)
		case "model":
			bit = 4
			wc.Model, ok = s.stringOrNull(wc.Model, prev.Model)
		case "choices":
			bit = 8
			ok = s.choices(&wc.Choices)
		case "usage", "error": // null on OpenAI's content chunks; counts or an error: encoding/json
			bit = 16
			if key[0] == 'e' {
				bit = 32
			}
			ok = s.null()
		default:
			ok = !foldsTo(key, "id", "created", "model", "choices", "usage", "error", "citations", "search_results") && s.skip(0)
		}
		if seen&bit != 0 { // a key twice: encoding/json's rules (the last wins, objects merge)
			return false
		}
		seen |= bit
		return ok
	})
	if !ok {
		return false
	}
	s.ws()
	return s.i == len(s.b)
}

func (s *chunkScanner) choices(out *[]chat.ChunkChoice) bool {
	s.ws()
	if s.null() {
		return true
	}
	if !s.consume('[') {
		return false
	}
	list := make([]chat.ChunkChoice, 0, 1)
	s.ws()
	if !s.consume(']') {
		for {
			list = append(list, chat.ChunkChoice{})
			if !s.choice(&list[len(list)-1]) {
				return false
			}
			s.ws()
			if s.consume(']') {
				break
			}
			if !s.consume(',') {
				return false
			}
		}
	}
	*out = list
	return true
}

func (s *chunkScanner) choice(c *chat.ChunkChoice) bool {
	var seen uint8
	return s.object(func(key []byte) bool {
		var bit uint8
		var ok bool
		switch string(key) {
		case "index":
			bit = 1
			var n int64
			n, ok = s.intOrNull(int64(c.Index))
			c.Index = int(n)
		case "delta":
			bit = 2
			ok = s.null() || s.delta(&c.Delta)
		case "logprobs":
			bit = 4
			s.ws()
			start := s.i
			if ok = s.skip(0); ok {
				if raw := s.b[start:s.i]; string(raw) == "null" {
					c.Logprobs = jsonNull[:4:4] // OpenAI's on every chunk: one shared copy, appends reallocate
				} else {
					c.Logprobs = json.RawMessage(bytes.Clone(raw))
				}
			}
		case "finish_reason":
			bit = 8
			ok = s.optString(&c.FinishReason)
		default:
			ok = !foldsTo(key, "index", "delta", "logprobs", "finish_reason") && s.skip(0)
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return ok
	})
}

func (s *chunkScanner) delta(d *chat.Delta) bool {
	var seen uint8
	return s.object(func(key []byte) bool {
		var bit uint8
		var ok bool
		switch string(key) {
		case "role":
			bit = 1
			d.Role, ok = s.stringOrNull(d.Role, chat.RoleAssistant)
		case "content":
			bit = 2
			ok = s.optString(&d.Content)
		case "refusal":
			bit = 4
			ok = s.optString(&d.Refusal)
		case "reasoning_content":
			bit = 8
			d.ReasoningContent, ok = s.stringOrNull(d.ReasoningContent, "")
		default: // tool_calls among them: encoding/json
			ok = !foldsTo(key, "role", "content", "refusal", "reasoning_content", "tool_calls") && s.skip(0)
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return ok
	})
}

// foldsTo reports whether key names one of names for encoding/json, which
// matches field names case-insensitively (and so does not skip them).
func foldsTo(key []byte, names ...string) bool {
	for _, n := range names {
		if len(key) == len(n) && bytes.EqualFold(key, []byte(n)) {
			return true
		}
	}
	for _, c := range key {
		if c >= utf8.RuneSelf { // Unicode folding (K, ſ): let encoding/json decide
			return true
		}
	}
	return false
}

// object reads {"key": value, ...}, calling field with each key (without
// escapes: a key with one is refused) positioned before its value.
func (s *chunkScanner) object(field func(key []byte) bool) bool {
	s.ws()
	if !s.consume('{') {
		return false
	}
	s.ws()
	if s.consume('}') {
		return true
	}
	for {
		s.ws()
		key, escaped, ok := s.str()
		if !ok || escaped {
			return false
		}
		s.ws()
		if !s.consume(':') || !field(key) {
			return false
		}
		s.ws()
		if s.consume('}') {
			return true
		}
		if !s.consume(',') {
			return false
		}
	}
}

func (s *chunkScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *chunkScanner) consume(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// null reads the literal null.
func (s *chunkScanner) null() bool {
	s.ws()
	if bytes.HasPrefix(s.b[s.i:], []byte("null")) {
		s.i += 4
		return true
	}
	return false
}

// stringOrNull reads a string; null leaves cur, as encoding/json does. A
// string equal to same is same (no copy).
func (s *chunkScanner) stringOrNull(cur, same string) (string, bool) {
	if s.null() {
		return cur, true
	}
	if s.i < len(s.b) && s.b[s.i] == '"' {
		if end := s.i + 1 + len(same); end < len(s.b) && s.b[end] == '"' && string(s.b[s.i+1:end]) == same && plain(same) {
			s.i = end + 1
			return same, true
		}
	}
	return s.stringValue()
}

// plain reports whether v is written in JSON as it is, between quotes (and
// read back the same).
func plain(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == '"' || c == '\\' {
			return false
		}
	}
	return utf8.ValidString(v)
}

// optString reads a string into a new *string, or null as nil.
func (s *chunkScanner) optString(p **string) bool {
	if s.null() {
		*p = nil
		return true
	}
	v, ok := s.stringValue()
	if ok {
		*p = &v
	}
	return ok
}

func (s *chunkScanner) stringValue() (string, bool) {
	raw, escaped, ok := s.str()
	if !ok {
		return "", false
	}
	if !escaped {
		if utf8.Valid(raw) {
			return string(raw), true
		}
	}
	return unquoteJSON(raw)
}

// intOrNull reads an integer (no fraction or exponent: those go to
// encoding/json, which refuses them for integer fields); null leaves cur.
func (s *chunkScanner) intOrNull(cur int64) (int64, bool) {
	if s.null() {
		return cur, true
	}
	start := s.i
	if !s.number() {
		return 0, false
	}
	n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	return n, err == nil
}

// str reads a string, returning what is between its quotes and whether
// it holds escapes. It checks the escapes and refuses control characters,
// as JSON does.
func (s *chunkScanner) str() (raw []byte, escaped, ok bool) {
	if !s.consume('"') {
		return nil, false, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, escaped, true
		case c < 0x20:
			return nil, false, false
		case c == '\\':
			escaped = true
			s.i++
			if s.i >= len(s.b) {
				return nil, false, false
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if s.i+5 > len(s.b) || hex4(s.b[s.i+1:s.i+5]) < 0 {
					return nil, false, false
				}
				s.i += 5
			default:
				return nil, false, false
			}
		default:
			s.i++
		}
	}
	return nil, false, false
}

// number reads a JSON number.
func (s *chunkScanner) number() bool {
	s.consume('-')
	switch {
	case s.consume('0'):
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	return true
}

func (s *chunkScanner) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

// skip reads any JSON value.
func (s *chunkScanner) skip(depth int) bool {
	if depth > maxSkipDepth {
		return false
	}
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, _, ok := s.str()
		return ok
	case c == '{':
		return s.object(func([]byte) bool { return s.skip(depth + 1) })
	case c == '[':
		s.i++
		s.ws()
		if s.consume(']') {
			return true
		}
		for {
			if !s.skip(depth + 1) {
				return false
			}
			s.ws()
			if s.consume(']') {
				return true
			}
			if !s.consume(',') {
				return false
			}
		}
	case c == '-' || c >= '0' && c <= '9':
		if !s.number() {
			return false
		}
		if s.consume('.') && s.digits() == 0 {
			return false
		}
		if s.consume('e') || s.consume('E') {
			if !s.consume('+') {
				s.consume('-')
			}
			if s.digits() == 0 {
				return false
			}
		}
		return true
	}
	for _, lit := range []string{"null", "true", "false"} {
		if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
			s.i += len(lit)
			return true
		}
	}
	return false
}

// hex4 is the value of four hex digits, or -1.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// unquoteJSON decodes a string's contents (checked by str) as
// encoding/json does: escapes resolved, a lone surrogate and each invalid
// UTF-8 byte turned into U+FFFD.
func unquoteJSON(s []byte) (string, bool) {
	b := make([]byte, 0, len(s)+utf8.UTFMax)
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			if r+1 >= len(s) {
				return "", false
			}
			switch e := s[r+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
				r += 2
			case 'b':
				b = append(b, '\b')
				r += 2
			case 'f':
				b = append(b, '\f')
				r += 2
			case 'n':
				b = append(b, '\n')
				r += 2
			case 'r':
				b = append(b, '\r')
				r += 2
			case 't':
				b = append(b, '\t')
				r += 2
			case 'u':
				if r+6 > len(s) {
					return "", false
				}
				rr := hex4(s[r+2 : r+6])
				if rr < 0 {
					return "", false
				}
				r += 6
				if utf16.IsSurrogate(rr) {
					rr1 := rune(-1)
					if r+6 <= len(s) && s[r] == '\\' && s[r+1] == 'u' {
						rr1 = hex4(s[r+2 : r+6])
					}
					if dec := utf16.DecodeRune(rr, rr1); dec != unicode.ReplacementChar {
						r += 6
						b = utf8.AppendRune(b, dec)
						break
					}
					rr = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, rr)
			default:
				return "", false
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			r += size
			b = utf8.AppendRune(b, rr)
		}
	}
	return string(b), true
}
