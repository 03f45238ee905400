// Package responses serves OpenAI's Responses API (POST /v1/responses) on
// top of Beaver's chat path: a Responses request is translated into the
// internal chat request (chat.Request, the type /v1/chat/completions uses),
// run through the gateway like any chat request — the same admission bound,
// hold, price and single charge — and the chat answer is translated back
// into a Response object, or, for stream: true, into the Responses streaming
// events (see Stream).
//
// Stored responses (store true, the default) are kept by the API; this
// package reads store and previous_response_id, rebuilds a chain's input
// items (History, ParseRequestAfter) and pages input items (stored.go).
// conversation and item references are refused; background requests are
// run by a workflow (background.go and the API).
//
// The shapes follow OpenAI's published Responses schemas (openai-openapi,
// and the openai-go SDK's responses package generated from them).
package responses

import (
	"encoding/json"
	"strings"

	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/pricing"
)

// ObjectResponse is the object name of a Response.
const ObjectResponse = "response"

// Response statuses Beaver produces.
const (
	StatusInProgress = "in_progress"
	StatusCompleted  = "completed"
	StatusIncomplete = "incomplete"
	StatusFailed     = "failed"
	// A background response's (background.go).
	StatusQueued    = "queued"
	StatusCancelled = "cancelled"
)

// Output item and content part types.
const (
	ItemMessage      = "message"
	ItemFunctionCall = "function_call"
	ItemReasoning    = "reasoning"

	PartOutputText = "output_text"
	PartRefusal    = "refusal"
	// PartSummaryText is a reasoning item's summary part: Beaver's
	// reasoning items carry the model's reasoning text there.
	PartSummaryText = "summary_text"
	// PartReasoningText is the other place a reasoning item may hold its
	// text (OpenAI's content, for raw reasoning); read in input.
	PartReasoningText = "reasoning_text"
)

// Incomplete reasons (incomplete_details.reason).
const (
	ReasonMaxOutputTokens = "max_output_tokens"
	ReasonContentFilter   = "content_filter"
)

// ResponseID is the id of the response answered by generation genID: the
// same id under "resp_", so that each maps to the other.
func ResponseID(genID string) string { return ids.Show(genID, ids.ResponsePrefix) }

// GenerationID is the generation (usage log) id of a response id, for
// GET /v1/generation?id=; any other id is returned unchanged.
func GenerationID(id string) string { return ids.Unshow(id, ids.ResponsePrefix) }

// Response is OpenAI's Response object. Fields the schema requires are
// always rendered (null when unset); request settings are echoed back as
// OpenAI does. Usage adds Beaver's cost and cost_micros.
type Response struct {
	ID                 string             `json:"id"`
	Object             string             `json:"object"`
	CreatedAt          int64              `json:"created_at"`
	Status             string             `json:"status"`
	Background         bool               `json:"background"`
	Error              *ResponseError     `json:"error"`
	IncompleteDetails  *IncompleteDetails `json:"incomplete_details"`
	Instructions       *string            `json:"instructions"`
	MaxOutputTokens    *int               `json:"max_output_tokens"`
	MaxToolCalls       *int               `json:"max_tool_calls"`
	Model              string             `json:"model"`
	Output             []Item             `json:"output"`
	ParallelToolCalls  bool               `json:"parallel_tool_calls"`
	PreviousResponseID *string            `json:"previous_response_id"`
	Reasoning          Reasoning          `json:"reasoning"`
	ServiceTier        *string            `json:"service_tier"`
	Store              bool               `json:"store"`
	Temperature        *float64           `json:"temperature"`
	Text               TextConfig         `json:"text"`
	ToolChoice         json.RawMessage    `json:"tool_choice"`
	Tools              []Tool             `json:"tools"`
	TopP               *float64           `json:"top_p"`
	Truncation         string             `json:"truncation"`
	// Usage and User are left out when unset (the stream's created and
	// in_progress events, a request without user): OpenAI's schema types
	// them as an object and a string, not nullable.
	Usage    *Usage            `json:"usage,omitempty"`
	User     *string           `json:"user,omitempty"`
	Metadata map[string]string `json:"metadata"`
}

// ResponseError is the error of a failed response. Code is one of the
// schema's enum (server_error, rate_limit_exceeded, invalid_prompt, ...).
type ResponseError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// IncompleteDetails says why a response is incomplete.
type IncompleteDetails struct {
	Reason string `json:"reason"`
}

// Reasoning echoes the request's reasoning settings.
type Reasoning struct {
	Effort  *string `json:"effort"`
	Summary *string `json:"summary"`
}

// TextConfig echoes the request's text settings; Format is the caller's
// text.format, {"type":"text"} by default.
type TextConfig struct {
	Format    json.RawMessage `json:"format"`
	Verbosity *string         `json:"verbosity,omitempty"`
}

// Tool is a function tool as the Responses API renders it.
type Tool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description *string         `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      *bool           `json:"strict"`
}

// Usage is a response's token usage plus Beaver's charge: cost (USD) and
// cost_micros, as on chat.
type Usage struct {
	InputTokens         int                 `json:"input_tokens"`
	InputTokensDetails  InputTokensDetails  `json:"input_tokens_details"`
	OutputTokens        int                 `json:"output_tokens"`
	OutputTokensDetails OutputTokensDetails `json:"output_tokens_details"`
	TotalTokens         int                 `json:"total_tokens"`
	Cost                *money.USD          `json:"cost,omitempty"`
	CostMicros          *int64              `json:"cost_micros,omitempty"`
	CostDetails         *pricing.Details    `json:"cost_details,omitempty"`
}

// InputTokensDetails breaks input tokens down; CachedTokens (cache reads)
// and CacheWriteTokens are included in InputTokens.
type InputTokensDetails struct {
	CachedTokens     int `json:"cached_tokens"`
	CacheWriteTokens int `json:"cache_write_tokens"`
}

// OutputTokensDetails breaks output tokens down; ReasoningTokens are
// included in OutputTokens.
type OutputTokensDetails struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

// Item is one output item: an assistant message, a function call or the
// model's reasoning. It renders in the shape of its type.
type Item struct {
	Type   string
	ID     string
	Status string
	// Content is a message's output_text and refusal parts.
	Content []Part
	// A function call's call id (the one function_call_output answers),
	// function name and JSON arguments.
	CallID, Name, Arguments string
	// A reasoning item's summary (one summary_text part: the model's
	// reasoning text, when its provider gives it) and encrypted_content:
	// Beaver's reasoning token (internal/reasoning), when the calls after
	// it carry what their provider needs back.
	Summary          []Part
	EncryptedContent string
}

// MarshalJSON renders the item as its type's schema says: a message's
// content and a function call's arguments are always present.
func (it Item) MarshalJSON() ([]byte, error) {
	content := it.Content
	if content == nil {
		content = []Part{}
	}
	switch it.Type {
	case ItemFunctionCall:
		return json.Marshal(struct {
			ID        string `json:"id"`
			Type      string `json:"type"`
			Status    string `json:"status"`
			Arguments string `json:"arguments"`
			CallID    string `json:"call_id"`
			Name      string `json:"name"`
		}{it.ID, it.Type, it.Status, it.Arguments, it.CallID, it.Name})
	case ItemReasoning:
		summary := it.Summary
		if summary == nil {
			summary = []Part{}
		}
		return json.Marshal(struct {
			ID               string `json:"id"`
			Type             string `json:"type"`
			Status           string `json:"status"`
			Summary          []Part `json:"summary"`
			EncryptedContent string `json:"encrypted_content,omitempty"`
		}{it.ID, it.Type, it.Status, summary, it.EncryptedContent})
	}
	return json.Marshal(struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Status  string `json:"status"`
		Role    string `json:"role"`
		Content []Part `json:"content"`
	}{it.ID, it.Type, it.Status, "assistant", content})
}

// Part is one content part of an output item: output_text (with its
// annotations and logprobs, always empty), refusal, or a reasoning item's
// summary_text.
type Part struct {
	Type string
	Text string // output_text, summary_text; a refusal's refusal
}

// MarshalJSON renders the part in its type's shape.
func (p Part) MarshalJSON() ([]byte, error) {
	switch p.Type {
	case PartRefusal:
		return json.Marshal(struct {
			Type    string `json:"type"`
			Refusal string `json:"refusal"`
		}{p.Type, p.Text})
	case PartSummaryText, PartReasoningText:
		return json.Marshal(struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}{p.Type, p.Text})
	}
	return json.Marshal(struct {
		Type        string     `json:"type"`
		Annotations []struct{} `json:"annotations"`
		Logprobs    []struct{} `json:"logprobs"`
		Text        string     `json:"text"`
	}{p.Type, []struct{}{}, []struct{}{}, p.Text})
}

// OutputText is the text of all output_text parts, in order (the SDKs'
// response.output_text).
func (r *Response) OutputText() string {
	var b strings.Builder
	for _, it := range r.Output {
		if it.Type != ItemMessage {
			continue
		}
		for _, p := range it.Content {
			if p.Type == PartOutputText {
				b.WriteString(p.Text)
			}
		}
	}
	return b.String()
}
