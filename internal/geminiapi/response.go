package geminiapi

import (
	"encoding/json"
	"net/http"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/chat"
)

// FromResponse turns the gateway's charged chat completion into a
// generateContent answer: the first choice's reasoning as a thought part,
// its text, its tool calls as functionCall parts with their thought
// signatures; modelVersion the catalog id that answered, responseId the
// generation id.
func FromResponse(resp *chat.Response) *Response {
	out := &Response{ModelVersion: resp.Model, ResponseID: resp.ID, UsageMetadata: FromUsage(resp.Usage)}
	cand := Candidate{Content: Content{Role: "model", Parts: []Part{}}, FinishReason: FinishReason("")}
	if len(resp.Choices) > 0 {
		ch := &resp.Choices[0]
		msg := &ch.Message
		cand.FinishReason = FinishReason(ch.FinishReason)
		if msg.ReasoningContent != "" {
			cand.Content.Parts = append(cand.Content.Parts, Part{Text: msg.ReasoningContent, Thought: true})
		}
		text := msg.Content.Text()
		if text == "" && msg.Refusal != nil {
			text = *msg.Refusal
		}
		if text != "" {
			cand.Content.Parts = append(cand.Content.Parts, Part{Text: text})
		}
		for i := range msg.ToolCalls {
			cand.Content.Parts = append(cand.Content.Parts, callPart(&msg.ToolCalls[i]))
		}
	}
	out.Candidates = []Candidate{cand}
	return out
}

// callPart is a chat tool call as a functionCall part.
func callPart(tc *chat.ToolCall) Part {
	args := json.RawMessage(tc.Function.Arguments)
	if !json.Valid(args) {
		args = json.RawMessage(`{}`) // a model's broken arguments; Gemini's args is an object
	}
	return Part{FunctionCall: &FunctionCall{ID: tc.ID, Name: tc.Function.Name, Args: args}, ThoughtSignature: tc.ThoughtSignature()}
}

// FinishReason is Gemini's finishReason for chat's: a tool call ends with
// STOP, as Gemini's own calls do.
func FinishReason(reason string) string {
	switch reason {
	case chat.FinishLength:
		return "MAX_TOKENS"
	case chat.FinishContentFilter:
		return "SAFETY"
	case "", chat.FinishStop, chat.FinishToolCalls:
		return "STOP"
	}
	return "OTHER"
}

// FromUsage is chat usage as usageMetadata. Chat counts reasoning in
// completion_tokens, Gemini apart from candidatesTokenCount.
func FromUsage(u *chat.Usage) *UsageMetadata {
	if u == nil {
		return nil
	}
	m := &UsageMetadata{PromptTokenCount: u.PromptTokens, CandidatesTokenCount: u.CompletionTokens,
		TotalTokenCount: u.TotalTokens, Cost: u.Cost, CostMicros: u.CostMicros}
	if d := u.CompletionTokensDetails; d != nil {
		m.ThoughtsTokenCount = d.ReasoningTokens
		m.CandidatesTokenCount -= d.ReasoningTokens
	}
	if d := u.PromptTokensDetails; d != nil {
		m.CachedContentTokenCount = d.CachedTokens
	}
	return m
}

// ErrorBody is an error in Gemini's envelope, {error: {code, message,
// status}}, status being Google's canonical code for Beaver's HTTP status.
func ErrorBody(e *apierr.Error) map[string]any {
	return map[string]any{"error": map[string]any{"code": e.Status, "message": e.Message, "status": Status(e.Status)}}
}

// Status is Google's canonical status name of an HTTP status.
func Status(code int) string {
	switch code {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusPaymentRequired, http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusMethodNotAllowed:
		return "UNIMPLEMENTED"
	case http.StatusConflict:
		return "ABORTED"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case http.StatusServiceUnavailable, http.StatusBadGateway:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	}
	if code >= 500 {
		return "INTERNAL"
	}
	return "FAILED_PRECONDITION"
}
