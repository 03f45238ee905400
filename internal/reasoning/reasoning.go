// Package reasoning carries what a provider needs back on a later turn
// beside the model's reasoning text, through the client surfaces whose
// shapes have no place for it. Today that is Gemini 3's thought signature,
// one per function call (chat carries it as
// tool_calls[].extra_content.google.thought_signature; Gemini answers 400
// to a tool loop that lost it). The reasoning text itself needs no help:
// it has a field on every surface (a thinking block's thinking, a reasoning
// item's summary) and becomes chat's reasoning_content, which DeepSeek's
// thinking mode needs back.
//
// /v1/messages puts the state in a thinking block's signature and
// /v1/responses in a reasoning item's encrypted_content: the fields each
// API defines for opaque reasoning state, so every SDK keeps them when the
// caller passes an answer back as it came (response.content into messages,
// response.output into input) and when it converts one to a request param
// (anthropic-sdk-go's Message.ToParam copies a thinking block's thinking
// and signature, and a tool_use block's type, id, name and input only: a
// field of Beaver's own on tool_use would be lost there).
//
// # The token
//
//	"beaver.r1." + base64url, unpadded, of {"gemini": {"<tool call id>": "<thought signature>", ...}}
//
// It is opaque to clients but not secret (the same signatures are in
// plain sight on /v1/chat/completions) and not trusted: Parse accepts
// anything and keeps only what is well-formed, so a foreign signature (an
// Anthropic one a client kept from elsewhere), a damaged token or an
// oversized one is ignored, never an error. What it can inject is what a
// chat client can send anyway: a thought signature on a call of its own
// history, which only Gemini reads (other adapters drop extra_content) and
// which the admission bound counts like the rest of the prompt.
package reasoning

import (
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/beaver-gateway/beaver/internal/chat"
)

// Prefix starts every token; it tells Beaver's tokens from the signatures
// other providers put in the same fields. The version is in it: a new
// format gets a new prefix, and old tokens keep parsing.
const Prefix = "beaver.r1."

// MaxTokenLen bounds a token, in bytes, both ways: Parse ignores longer
// ones and Token does not make them. A Gemini thought signature is a few
// KiB at most, and a turn carries one per call.
const MaxTokenLen = 64 << 10

// State is what an assistant turn needs sent back beside its text.
type State struct {
	// ThoughtSignatures are Gemini 3's, by tool call id.
	ThoughtSignatures map[string]string `json:"gemini,omitempty"`
}

// Collect is the state of an assistant turn's tool calls.
func Collect(calls []chat.ToolCall) State {
	var s State
	for i := range calls {
		s.add(calls[i].ID, calls[i].ThoughtSignature())
	}
	return s
}

// Of is the state of one tool call: its signature under its id.
func Of(callID, thoughtSignature string) State {
	var s State
	s.add(callID, thoughtSignature)
	return s
}

func (s *State) add(callID, sig string) {
	if callID == "" || sig == "" {
		return
	}
	if s.ThoughtSignatures == nil {
		s.ThoughtSignatures = map[string]string{}
	}
	s.ThoughtSignatures[callID] = sig
}

// IsZero reports whether there is nothing to carry.
func (s State) IsZero() bool { return len(s.ThoughtSignatures) == 0 }

// Merge adds o's entries to s (o's win).
func (s *State) Merge(o State) {
	for id, sig := range o.ThoughtSignatures {
		s.add(id, sig)
	}
}

// Apply gives each call that has no thought signature of its own the one s
// holds for its id. A call's own extra_content (a chat client's, sent as it
// came) is left alone.
func (s State) Apply(calls []chat.ToolCall) {
	for i := range calls {
		sig := s.ThoughtSignatures[calls[i].ID]
		if sig != "" && len(calls[i].ExtraContent) == 0 {
			calls[i].ExtraContent = chat.GoogleExtraContent(sig)
		}
	}
}

// Token is s as a token; "" when there is nothing to carry, or when the
// token would be longer than Parse accepts (sending it out would promise a
// round trip that cannot happen).
func (s State) Token() string {
	if s.IsZero() {
		return ""
	}
	b, err := json.Marshal(s)
	if err != nil {
		return "" // a map of strings always marshals
	}
	t := Prefix + base64.RawURLEncoding.EncodeToString(b)
	if len(t) > MaxTokenLen {
		return ""
	}
	return t
}

// Parse reads a token; anything else (a foreign signature, a damaged or
// oversized token, JSON of another shape) is the zero State. Entries with
// an empty id or signature are dropped.
func Parse(token string) State {
	rest, ok := strings.CutPrefix(token, Prefix)
	if !ok || len(token) > MaxTokenLen {
		return State{}
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return State{}
	}
	var decoded State
	if json.Unmarshal(raw, &decoded) != nil {
		return State{}
	}
	var s State
	s.Merge(decoded)
	return s
}
