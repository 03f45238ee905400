// Package messages is Beaver's Anthropic-compatible surface, POST
// /v1/messages: it translates an Anthropic Messages API request into
// Beaver's chat request (so that it is admitted, routed, priced and charged
// exactly like /v1/chat/completions, whatever the model's provider), and the
// gateway's answer back into an Anthropic message, or a chunk stream into
// Anthropic's server-sent events.
//
// Wire format: Anthropic's Messages API as its official SDKs read it
// (anthropic-sdk-python's types and lib/streaming accumulator,
// anthropic-sdk-go's ssestream). The package does no I/O: the HTTP layer
// (api/messages.go) reads the body, calls the gateway and writes what this
// package returns.
package messages

import (
	"encoding/json"

	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/pricing"
)

// Anthropic's stop reasons (Message.stop_reason).
const (
	StopEndTurn      = "end_turn"
	StopMaxTokens    = "max_tokens"
	StopStopSequence = "stop_sequence"
	StopToolUse      = "tool_use"
	StopRefusal      = "refusal"
)

// Content block types.
const (
	BlockText       = "text"
	BlockImage      = "image"
	BlockToolUse    = "tool_use"
	BlockToolResult = "tool_result"
	// BlockThinking is the model's reasoning; in answers its signature may
	// carry Beaver's reasoning token (see FromResponse), read back from
	// assistant history by Parse.
	BlockThinking = "thinking"
	// BlockRedactedThinking is accepted in assistant history and dropped.
	BlockRedactedThinking = "redacted_thinking"
)

// Message is Anthropic's response object, plus Beaver's cost in usage.
type Message struct {
	ID           string  `json:"id"`
	Type         string  `json:"type"` // always "message"
	Role         string  `json:"role"` // always "assistant"
	Model        string  `json:"model"`
	Content      []Block `json:"content"` // never null: [] when empty
	StopReason   *string `json:"stop_reason"`
	StopSequence *string `json:"stop_sequence"`
	Usage        Usage   `json:"usage"`
}

// Block is a response content block: text, tool_use or thinking. Fields of
// other types are left out.
type Block struct {
	Type string
	Text string // text
	// tool_use
	ID    string
	Name  string
	Input json.RawMessage
	// thinking
	Thinking  string
	Signature string
}

// MarshalJSON renders exactly the fields of the block's type, each always
// present (text "" included), as Anthropic does.
func (b Block) MarshalJSON() ([]byte, error) {
	switch b.Type {
	case BlockToolUse:
		input := b.Input
		if len(input) == 0 {
			input = json.RawMessage(`{}`)
		}
		return json.Marshal(struct {
			Type  string          `json:"type"`
			ID    string          `json:"id"`
			Name  string          `json:"name"`
			Input json.RawMessage `json:"input"`
		}{b.Type, b.ID, b.Name, input})
	case BlockThinking:
		return json.Marshal(struct {
			Type      string `json:"type"`
			Thinking  string `json:"thinking"`
			Signature string `json:"signature"`
		}{b.Type, b.Thinking, b.Signature})
	}
	return json.Marshal(struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}{b.Type, b.Text})
}

// Usage is Anthropic's usage object. input_tokens excludes the prompt
// tokens read from the provider's cache, which are cache_read_input_tokens
// (Beaver's prompt_tokens is their sum). Cost and CostMicros are Beaver's
// charge, set once it is committed.
type Usage struct {
	InputTokens              int              `json:"input_tokens"`
	OutputTokens             int              `json:"output_tokens"`
	CacheReadInputTokens     int              `json:"cache_read_input_tokens"`
	CacheCreationInputTokens int              `json:"cache_creation_input_tokens"`
	CacheCreation            *CacheCreation   `json:"cache_creation,omitempty"`
	ServerToolUse            *ServerToolUse   `json:"server_tool_use,omitempty"`
	Cost                     *money.USD       `json:"cost,omitempty"`
	CostMicros               *int64           `json:"cost_micros,omitempty"`
	CostDetails              *pricing.Details `json:"cost_details,omitempty"`
}

// CacheCreation splits cache writes by lifetime, as Anthropic does.
type CacheCreation struct {
	Ephemeral5m int `json:"ephemeral_5m_input_tokens"`
	Ephemeral1h int `json:"ephemeral_1h_input_tokens"`
}

// ServerToolUse counts the tool calls the provider ran, as Anthropic does.
type ServerToolUse struct {
	WebSearchRequests int `json:"web_search_requests"`
	WebFetchRequests  int `json:"web_fetch_requests"`
}

// Message ids are the generation's id with Anthropic's prefix: the gateway
// names a generation "chatcmpl-<id>", its message is "msg_<id>", and
// GenerationID maps one back to the other (GET /v1/generation?id=msg_...).
// MessageID is the message id of a generation.
func MessageID(generationID string) string { return ids.Show(generationID, ids.MessagePrefix) }

// GenerationID is the generation id of a message id; any other id is
// returned unchanged.
func GenerationID(id string) string { return ids.Unshow(id, ids.MessagePrefix) }
