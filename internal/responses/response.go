package responses

import (
	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/reasoning"
)

// Item id prefixes, as OpenAI's.
const (
	messageIDPrefix   = "msg"
	functionIDPrefix  = "fc"
	reasoningIDPrefix = "rs"
)

// newResponse is r's Response object for generation genID of model, in
// progress and without output: what stream events start from.
func (r *Request) newResponse(genID, model string, created int64) *Response {
	metadata := r.Metadata
	if metadata == nil {
		metadata = map[string]string{}
	}
	tools := r.Tools
	if tools == nil {
		tools = []Tool{}
	}
	var previous *string
	if r.PreviousResponseID != "" {
		previous = &r.PreviousResponseID
	}
	return &Response{
		ID: ResponseID(genID), Object: ObjectResponse, CreatedAt: created, Status: StatusInProgress,
		Instructions: r.Instructions, MaxOutputTokens: r.MaxOutputTokens, MaxToolCalls: r.MaxToolCalls,
		Model: model, Output: []Item{}, ParallelToolCalls: r.ParallelToolCalls,
		Reasoning:   Reasoning{Effort: r.ReasoningEffort, Summary: r.ReasoningSummary},
		ServiceTier: r.ServiceTier, Temperature: r.Temperature,
		Text:       TextConfig{Format: r.TextFormat, Verbosity: r.Verbosity},
		ToolChoice: r.ToolChoice, Tools: tools, TopP: r.TopP, Truncation: "disabled",
		User: r.User, Metadata: metadata, Store: r.Store != nil && *r.Store,
		PreviousResponseID: previous, Background: r.Background,
	}
}

// FromChat translates a charged chat completion (the gateway's answer to
// r.Chat) into the Response object: its id is the generation's under
// "resp_", its usage carries the charge. Its output is a reasoning item
// (when there is reasoning text, or the calls carry what their provider
// needs back: see reasoning.go), the message, then the function calls.
func FromChat(r *Request, c *chat.Response) *Response {
	resp := r.newResponse(c.ID, c.Model, c.Created)
	var finish string
	if len(c.Choices) > 0 { // n is never sent: one choice
		ch := &c.Choices[0]
		finish = ch.FinishReason
		m := &ch.Message
		if token := reasoning.Collect(m.ToolCalls).Token(); m.ReasoningContent != "" || token != "" {
			resp.Output = append(resp.Output, reasoningItem(m.ReasoningContent, token))
		}
		text := m.Content.Text()
		if text != "" || m.Refusal != nil || len(m.ToolCalls) == 0 {
			msg := Item{Type: ItemMessage, ID: ids.New(messageIDPrefix)}
			if text != "" || m.Refusal == nil {
				msg.Content = append(msg.Content, Part{Type: PartOutputText, Text: text})
			}
			if m.Refusal != nil {
				msg.Content = append(msg.Content, Part{Type: PartRefusal, Text: *m.Refusal})
			}
			resp.Output = append(resp.Output, msg)
		}
		for _, tc := range m.ToolCalls {
			resp.Output = append(resp.Output, Item{Type: ItemFunctionCall, ID: ids.New(functionIDPrefix),
				CallID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
		}
	}
	resp.finish(finish, nil, c.Usage)
	return resp
}

// finish sets the final status from the chat finish reason (or the error
// of a stream that failed), the status of every item and the usage.
func (resp *Response) finish(finishReason string, e *apierr.Error, u *chat.Usage) {
	resp.Status, resp.IncompleteDetails, resp.Error = StatusCompleted, nil, nil
	switch {
	case e != nil:
		resp.Status, resp.Error = StatusFailed, responseError(e)
	case finishReason == chat.FinishLength:
		resp.Status, resp.IncompleteDetails = StatusIncomplete, &IncompleteDetails{Reason: ReasonMaxOutputTokens}
	case finishReason == chat.FinishContentFilter:
		resp.Status, resp.IncompleteDetails = StatusIncomplete, &IncompleteDetails{Reason: ReasonContentFilter}
	}
	itemStatus := StatusCompleted
	if resp.Status != StatusCompleted {
		itemStatus = StatusIncomplete
	}
	for i := range resp.Output {
		if resp.Output[i].Status == "" || resp.Output[i].Status == StatusInProgress {
			resp.Output[i].Status = itemStatus
		}
	}
	resp.Usage = usage(u)
}

// responseError is a failed response's error: the schema's codes
// (rate_limit_exceeded, server_error, ...) and Beaver's message; the error
// event before it carries Beaver's own code.
func responseError(e *apierr.Error) *ResponseError {
	code := "server_error"
	switch e.Code {
	case "upstream_rate_limited", "rate_limit_exceeded":
		code = "rate_limit_exceeded"
	case "invalid_request":
		code = "invalid_prompt"
	}
	return &ResponseError{Code: code, Message: e.Message}
}

// usage is chat usage in the Responses shape, with the charge.
func usage(u *chat.Usage) *Usage {
	if u == nil {
		return nil
	}
	out := &Usage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens,
		TotalTokens: u.PromptTokens + u.CompletionTokens, Cost: u.Cost, CostMicros: u.CostMicros, CostDetails: u.CostDetails}
	if u.TotalTokens > 0 {
		out.TotalTokens = u.TotalTokens
	}
	if d := u.PromptTokensDetails; d != nil {
		out.InputTokensDetails.CachedTokens, out.InputTokensDetails.CacheWriteTokens = d.CachedTokens, d.CacheWriteTokens
	}
	if d := u.CompletionTokensDetails; d != nil {
		out.OutputTokensDetails.ReasoningTokens = d.ReasoningTokens
	}
	return out
}
