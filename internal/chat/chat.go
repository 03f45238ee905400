// Package chat holds Beaver's canonical chat types: the OpenAI Chat
// Completions request, response and stream chunk. The HTTP API parses client
// requests into these types and the provider adapters translate them to and
// from each provider's own wire format.
package chat

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/pricing"
)

// Object names used by OpenAI for responses and stream chunks.
const (
	ObjectCompletion = "chat.completion"
	ObjectChunk      = "chat.completion.chunk"
)

// Finish reasons: the values of OpenAI's finish_reason enum that Beaver
// produces (the spec's fifth, the deprecated function_call, is only passed
// through from OpenAI-format upstreams).
// A stream that fails midway ends with FinishLength plus an error object:
// see gateway's errorChunk.
const (
	FinishStop          = "stop"
	FinishLength        = "length"
	FinishToolCalls     = "tool_calls"
	FinishContentFilter = "content_filter"
)

// Message roles accepted in requests ("developer" is OpenAI's newer name for
// "system").
const (
	RoleSystem    = "system"
	RoleDeveloper = "developer"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
)

// Request is an OpenAI chat completions request.
type Request struct {
	Model    string
	Messages []Message
	Stream   bool
	// MaxTokens comes from max_tokens or max_completion_tokens (either is
	// accepted; if both are sent, max_completion_tokens wins).
	MaxTokens *int
	// MaxTokensParam records which of the two fields the caller used
	// ("max_tokens", "max_completion_tokens", or "" for neither) so that
	// OpenAI-format adapters can send the same one back.
	MaxTokensParam string
	Temperature    *float64
	TopP           *float64
	Stop           []string // accepts a JSON string or an array of strings
	Tools          []Tool
	ToolChoice     json.RawMessage
	ResponseFormat json.RawMessage
	User           string
	// N is the number of choices (n); 0 when the caller did not send it.
	// The completion hold is multiplied by it.
	N int
	// Models are the models to fall back on, in order (OpenRouter's
	// models; see routing.go); never sent upstream.
	Models []string
	// Extra holds the accepted pass-through fields (see passThrough), sent
	// untouched to OpenAI-compatible upstreams (those of the Responses
	// format get the ones their API takes). stream_options is not kept:
	// adapters set it.
	Extra map[string]json.RawMessage
	// ProviderOptions holds the fields only one provider understands (see
	// providerOptions: Perplexity's preset, web_search_options and
	// max_tool_calls), as the caller sent them. The gateway refuses them
	// for a model of another provider (CheckProviderOptions); only that
	// provider's adapter reads them, so a fallback model elsewhere never
	// gets them.
	ProviderOptions map[string]json.RawMessage
}

// Message is one chat message. Content keeps the caller's form (string,
// array of parts, or null) so that it marshals back exactly.
type Message struct {
	Role       string     `json:"role"`
	Content    Content    `json:"content"`
	Name       string     `json:"name,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	// ReasoningContent is the model's reasoning (DeepSeek's field, also used
	// for Anthropic thinking and Gemini thoughts) in responses. Clients send
	// it back on assistant turns; only the adapters of providers that want
	// it back (upstream.Config.SendReasoningBack: DeepSeek's thinking mode)
	// send it upstream.
	ReasoningContent string `json:"reasoning_content,omitempty"`
	// Refusal is the model's refusal message in a response (OpenAI-format
	// upstreams only). It is rendered by Choice, always, as OpenAI's schema
	// requires message.refusal (null when nil); requests neither read nor
	// forward it.
	Refusal *string `json:"-"`
}

// Tool is a function the model may call.
type Tool struct {
	Type     string      `json:"type"`
	Function FunctionDef `json:"function"`
}

// FunctionDef describes a callable function; Parameters is a JSON Schema.
type FunctionDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// ToolCall is a function call made by the model. In stream deltas Index says
// which call a fragment belongs to, and ID, Type and Name only come with the
// first fragment.
type ToolCall struct {
	Index    *int         `json:"index,omitempty"`
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function FunctionCall `json:"function"`
	// ExtraContent carries what a provider needs back with the call on the
	// next turn, where Google's OpenAI-compatible API puts it: Gemini 3's
	// {"google": {"thought_signature": "..."}}. Clients send the call back
	// as they received it.
	ExtraContent json.RawMessage `json:"extra_content,omitempty"`
}

// googleExtra is ExtraContent's shape for Gemini.
type googleExtra struct {
	Google struct {
		ThoughtSignature string `json:"thought_signature,omitempty"`
	} `json:"google"`
}

// GoogleExtraContent is the ExtraContent of a Gemini call with signature
// sig (nil for none).
func GoogleExtraContent(sig string) json.RawMessage {
	if sig == "" {
		return nil
	}
	var g googleExtra
	g.Google.ThoughtSignature = sig
	b, _ := json.Marshal(g) // a struct of strings always marshals
	return b
}

// ThoughtSignature is the Gemini thought signature in c's ExtraContent, or "".
func (c *ToolCall) ThoughtSignature() string {
	var g googleExtra
	if len(c.ExtraContent) == 0 || json.Unmarshal(c.ExtraContent, &g) != nil {
		return ""
	}
	return g.Google.ThoughtSignature
}

// FunctionCall is the function name and its arguments as a JSON string.
type FunctionCall struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// Response is a non-streaming chat completion.
type Response struct {
	ID                string   `json:"id"`
	Object            string   `json:"object"`
	Created           int64    `json:"created"`
	Model             string   `json:"model"`
	Choices           []Choice `json:"choices"`
	Usage             *Usage   `json:"usage,omitempty"`
	SystemFingerprint string   `json:"system_fingerprint,omitempty"`
	Extras
}

// Extras are what a provider answers beside the completion, passed on to
// the client as top-level fields of the completion (and of the stream chunk
// where they first come or change), as OpenRouter does: Perplexity's
// citations and search_results as Perplexity names them, Gemini's
// groundingMetadata as grounding_metadata. Each is the provider's JSON,
// untouched.
type Extras struct {
	Citations         json.RawMessage `json:"citations,omitempty"`
	SearchResults     json.RawMessage `json:"search_results,omitempty"`
	GroundingMetadata json.RawMessage `json:"grounding_metadata,omitempty"`
}

// Choice is one completion alternative. It always renders logprobs and
// message.refusal, null when absent: OpenAI's schema requires both.
type Choice struct {
	Index   int
	Message Message
	// Logprobs is the upstream's logprobs object, passed through as is
	// (OpenAI-format upstreams, when the caller asked for logprobs); nil
	// renders as null.
	Logprobs     json.RawMessage
	FinishReason string
}

// choiceMessage is a response message as OpenAI renders it: Message plus
// refusal, always present.
type choiceMessage struct {
	Message
	Refusal *string `json:"refusal"`
}

type choiceWire struct {
	Index        int             `json:"index"`
	Message      choiceMessage   `json:"message"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason string          `json:"finish_reason"`
}

// MarshalJSON renders the choice in OpenAI's shape, with logprobs and
// message.refusal null unless the upstream gave them.
func (c Choice) MarshalJSON() ([]byte, error) {
	w := choiceWire{Index: c.Index, Message: choiceMessage{Message: c.Message, Refusal: c.Message.Refusal},
		Logprobs: c.Logprobs, FinishReason: c.FinishReason}
	if len(w.Logprobs) == 0 {
		w.Logprobs = json.RawMessage("null")
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads an OpenAI choice, keeping message.refusal and a
// non-null logprobs.
func (c *Choice) UnmarshalJSON(b []byte) error {
	var w choiceWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*c = Choice{Index: w.Index, Message: w.Message.Message, FinishReason: w.FinishReason}
	c.Message.Refusal = w.Message.Refusal
	if len(w.Logprobs) > 0 && !isNull(w.Logprobs) {
		c.Logprobs = w.Logprobs
	}
	return nil
}

// Chunk is one streamed chat.completion.chunk.
type Chunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []ChunkChoice `json:"choices"` // never omitted: [] when empty
	Usage   *Usage        `json:"usage,omitempty"`
	Error   *ErrorBody    `json:"error,omitempty"`
	Extras
}

// MarshalJSON renders nil Choices as [] as OpenAI does for usage chunks.
func (c Chunk) MarshalJSON() ([]byte, error) {
	if c.plainJSON() {
		return c.AppendJSON(nil)
	}
	return c.marshalReflect()
}

// marshalReflect is MarshalJSON through encoding/json.
func (c Chunk) marshalReflect() ([]byte, error) {
	type plain Chunk
	if c.Choices == nil {
		c.Choices = []ChunkChoice{}
	}
	return json.Marshal(plain(c))
}

// ChunkChoice is the per-choice part of a chunk; FinishReason is null until
// the choice ends. Logprobs is optional in stream chunks (OpenAI's schema
// requires it only on non-streaming choices): an OpenAI-format upstream's is
// passed through, else it is left out.
type ChunkChoice struct {
	Index        int             `json:"index"`
	Delta        Delta           `json:"delta"`
	Logprobs     json.RawMessage `json:"logprobs,omitempty"`
	FinishReason *string         `json:"finish_reason"`
}

// Delta is what a chunk adds to a choice's message. Refusal is passed
// through from OpenAI-format upstreams (optional in the spec's delta).
type Delta struct {
	Role             string     `json:"role,omitempty"`
	Content          *string    `json:"content,omitempty"`
	Refusal          *string    `json:"refusal,omitempty"`
	ReasoningContent string     `json:"reasoning_content,omitempty"`
	ToolCalls        []ToolCall `json:"tool_calls,omitempty"`
}

// Text returns all the text the chunk delivers (content, reasoning, and
// tool-call names and argument fragments), for counting delivered tokens when
// the upstream reports no usage.
func (c *Chunk) Text() string {
	var n int
	for i := range c.Choices {
		d := &c.Choices[i].Delta
		if d.Content != nil {
			n += len(*d.Content)
		}
		if d.Refusal != nil {
			n += len(*d.Refusal)
		}
		n += len(d.ReasoningContent)
		for _, tc := range d.ToolCalls {
			n += len(tc.Function.Name) + len(tc.Function.Arguments)
		}
	}
	if n == 0 {
		return ""
	}
	return string(c.AppendText(make([]byte, 0, n)))
}

// AppendText appends Text's text to b, without a string per chunk.
func (c *Chunk) AppendText(b []byte) []byte {
	for i := range c.Choices {
		d := &c.Choices[i].Delta
		if d.Content != nil {
			b = append(b, *d.Content...)
		}
		if d.Refusal != nil {
			b = append(b, *d.Refusal...)
		}
		b = append(b, d.ReasoningContent...)
		for _, tc := range d.ToolCalls {
			b = append(b, tc.Function.Name...)
			b = append(b, tc.Function.Arguments...)
		}
	}
	return b
}

// Usage is the token usage of a request, plus Beaver's cost fields.
type Usage struct {
	PromptTokens            int                      `json:"prompt_tokens"`
	CompletionTokens        int                      `json:"completion_tokens"`
	TotalTokens             int                      `json:"total_tokens"`
	PromptTokensDetails     *PromptTokensDetails     `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *CompletionTokensDetails `json:"completion_tokens_details,omitempty"`
	// ServerToolUse counts the tool calls the provider ran itself and bills
	// per call, by tool: "web_search", "web_fetch", "fetch_url",
	// "google_search" (Anthropic's server_tool_use, Perplexity's tool
	// calls, Gemini's grounding queries).
	ServerToolUse map[string]int `json:"server_tool_use,omitempty"`
	Cost          *money.USD     `json:"cost,omitempty"`
	CostMicros    *int64         `json:"cost_micros,omitempty"`
	// CostDetails breaks Cost down by priced dimension (final usage only).
	CostDetails *pricing.Details `json:"cost_details,omitempty"`
}

// MaxServerToolCalls is the most provider-run, per-call-billed tool calls
// (Usage.ServerToolUse) of each kind Beaver holds money for in one request;
// adapters cap a request to it where the wire allows (Perplexity's
// max_tool_calls).
const MaxServerToolCalls = 10

// Clone returns a copy of u sharing nothing with it (nil for nil): a
// stream hands out copies of the usage it tracks, since the API layer fills
// in the cost of the usage it is given.
func (u *Usage) Clone() *Usage {
	if u == nil {
		return nil
	}
	c := *u
	if d := u.PromptTokensDetails; d != nil {
		v := *d
		c.PromptTokensDetails = &v
	}
	if d := u.CompletionTokensDetails; d != nil {
		v := *d
		c.CompletionTokensDetails = &v
	}
	if v := u.Cost; v != nil {
		cost := *v
		c.Cost = &cost
	}
	if v := u.CostMicros; v != nil {
		micros := *v
		c.CostMicros = &micros
	}
	c.ServerToolUse = maps.Clone(u.ServerToolUse)
	if d := u.CostDetails; d != nil {
		v := *d
		v.Lines = slices.Clone(d.Lines)
		c.CostDetails = &v
	}
	return &c
}

// PromptTokensDetails breaks down prompt tokens. CachedTokens (cache
// reads) and CacheWriteTokens are included in PromptTokens;
// CacheWrite1hTokens is the part of CacheWriteTokens written for one hour
// (Anthropic's ephemeral_1h_input_tokens), priced apart.
type PromptTokensDetails struct {
	CachedTokens       int `json:"cached_tokens"`
	CacheWriteTokens   int `json:"cache_write_tokens,omitempty"`
	CacheWrite1hTokens int `json:"cache_write_1h_tokens,omitempty"`
}

// CompletionTokensDetails breaks down completion tokens; ReasoningTokens are
// included in CompletionTokens.
type CompletionTokensDetails struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

// ErrorBody is the OpenAI error object of a stream that failed midway: in
// its error event and in its final chunk. Param is null unless a request
// field is at fault (the key is required by OpenAI's schema).
type ErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

// ErrorEvent is OpenAI's in-stream error event, `data: {"error": {...}}`,
// which the official SDKs raise as an API error.
type ErrorEvent struct {
	Error ErrorBody `json:"error"`
}

// InvalidError reports a request that cannot be served as sent; the API
// answers it with 400 invalid_request.
// Param, when set, names the offending request field.
type InvalidError struct{ Message, Param string }

func (e *InvalidError) Error() string { return e.Message }

func invalidf(format string, args ...any) *InvalidError {
	return &InvalidError{Message: fmt.Sprintf(format, args...)}
}

func invalidField(param, format string, args ...any) *InvalidError {
	return &InvalidError{Message: fmt.Sprintf(format, args...), Param: param}
}
