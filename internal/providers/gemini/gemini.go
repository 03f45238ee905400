// Package gemini is the adapter for Google's Gemini API (generateContent and
// streamGenerateContent?alt=sse on v1beta), translating OpenAI-shaped
// requests, responses and stream chunks to and from it.
package gemini

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
)

// Adapter talks to the Gemini API.
type Adapter struct {
	client *upstream.Client
	base   string // path after the base URL of the endpoint each attempt goes to
	header http.Header
}

// New returns the adapter for cfg; it appends
// "/v1beta/models/{model}:generateContent" (or ":streamGenerateContent?alt=sse")
// to the base URL and sends the key as x-goog-api-key.
func New(cfg upstream.Config) (*Adapter, error) {
	c, err := upstream.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "beaver-gateway")
	return &Adapter{client: c, base: "/v1beta/models/", header: h}, nil
}

// Client is the adapter's upstream client (its endpoints' health).
func (a *Adapter) Client() *upstream.Client { return a.client }

var apiKey = upstream.KeyScheme{Header: "x-goog-api-key"}

// Complete sends a non-streaming request.
func (a *Adapter) Complete(ctx context.Context, req *chat.Request) (*chat.Response, error) {
	body, err := encodeRequest(req)
	if err != nil {
		return nil, err
	}
	data, err := a.client.Do(ctx, a.request(req.Model, ":generateContent", body, "application/json"))
	if err != nil {
		return nil, err
	}
	var wr wireResponse
	if err := json.Unmarshal(data, &wr); err != nil {
		return nil, upstream.BadResponse("response", err)
	}
	if wr.Error != nil {
		return nil, wr.Error.toError(0)
	}
	return wr.toResponse(req.Model), nil
}

// Stream starts a streaming request; every SSE event is a whole
// GenerateContentResponse.
func (a *Adapter) Stream(ctx context.Context, req *chat.Request) (upstream.Stream, error) {
	body, err := encodeRequest(req)
	if err != nil {
		return nil, err
	}
	b, err := a.client.Open(ctx, a.request(req.Model, ":streamGenerateContent?alt=sse", body, "text/event-stream"))
	if err != nil {
		return nil, err
	}
	return upstream.NewEventStream(b, newTranslator(req.Model)), nil
}

func (a *Adapter) request(model, method string, body []byte, accept string) upstream.Request {
	h := a.header.Clone()
	h.Set("Accept", accept)
	return upstream.Request{Path: a.base + url.PathEscape(model) + method, Key: apiKey, Header: h, Body: body, ParseError: parseError}
}

type wireResponse struct {
	Candidates     []candidate `json:"candidates"`
	PromptFeedback *struct {
		BlockReason string `json:"blockReason"`
	} `json:"promptFeedback"`
	UsageMetadata *usageMetadata `json:"usageMetadata"`
	ModelVersion  string         `json:"modelVersion"`
	ResponseID    string         `json:"responseId"`
	Error         *wireErr       `json:"error"`
}

type candidate struct {
	Content      *content `json:"content"`
	FinishReason string   `json:"finishReason"`
	Index        int      `json:"index"`
	// GroundingMetadata (search grounding's queries, sources and supports)
	// is passed on untouched as grounding_metadata.
	GroundingMetadata json.RawMessage `json:"groundingMetadata"`
}

type usageMetadata struct {
	PromptTokenCount        int `json:"promptTokenCount"`
	CandidatesTokenCount    int `json:"candidatesTokenCount"`
	TotalTokenCount         int `json:"totalTokenCount"`
	CachedContentTokenCount int `json:"cachedContentTokenCount"`
	ThoughtsTokenCount      int `json:"thoughtsTokenCount"`
	ToolUsePromptTokenCount int `json:"toolUsePromptTokenCount"`
}

// toChat counts thoughts as completion tokens (Gemini bills them as output)
// and tool-use prompt tokens as prompt tokens; promptTokenCount already
// includes the cached tokens.
func (u *usageMetadata) toChat() *chat.Usage {
	out := &chat.Usage{
		PromptTokens:     u.PromptTokenCount + u.ToolUsePromptTokenCount,
		CompletionTokens: u.CandidatesTokenCount + u.ThoughtsTokenCount,
	}
	out.TotalTokens = out.PromptTokens + out.CompletionTokens
	if u.CachedContentTokenCount > 0 {
		out.PromptTokensDetails = &chat.PromptTokensDetails{CachedTokens: u.CachedContentTokenCount}
	}
	if u.ThoughtsTokenCount > 0 {
		out.CompletionTokensDetails = &chat.CompletionTokensDetails{ReasoningTokens: u.ThoughtsTokenCount}
	}
	return out
}

// finishReason maps Gemini's finishReason: STOP ends normally (or with tool
// calls when the model called functions), MAX_TOKENS is a length stop, and
// the safety-type reasons are filtered content.
func finishReason(reason string, toolCalls bool) string {
	switch reason {
	case "MAX_TOKENS":
		return chat.FinishLength
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE":
		return chat.FinishContentFilter
	}
	if toolCalls {
		return chat.FinishToolCalls
	}
	return chat.FinishStop
}

func (r *wireResponse) toResponse(model string) *chat.Response {
	msg := chat.Message{Role: chat.RoleAssistant}
	finish := chat.FinishStop
	var grounding json.RawMessage
	if len(r.Candidates) > 0 {
		c := r.Candidates[0]
		var text, thought strings.Builder
		if c.Content != nil {
			for _, p := range c.Content.Parts {
				switch {
				case p.FunctionCall != nil:
					tc := toolCall(p.FunctionCall)
					tc.ExtraContent = chat.GoogleExtraContent(p.ThoughtSignature)
					msg.ToolCalls = append(msg.ToolCalls, tc)
				case p.Thought:
					thought.WriteString(p.Text)
				default:
					text.WriteString(p.Text)
				}
			}
		}
		if text.Len() > 0 || len(msg.ToolCalls) == 0 {
			msg.Content = chat.TextContent(text.String())
		}
		msg.ReasoningContent = thought.String()
		finish = finishReason(c.FinishReason, len(msg.ToolCalls) > 0)
		grounding = c.GroundingMetadata
	} else {
		msg.Content = chat.TextContent("")
		if r.PromptFeedback != nil && r.PromptFeedback.BlockReason != "" {
			finish = chat.FinishContentFilter
		}
	}
	resp := &chat.Response{
		ID: r.ResponseID, Object: chat.ObjectCompletion, Created: time.Now().Unix(), Model: r.ModelVersion,
		Choices: []chat.Choice{{Index: 0, Message: msg, FinishReason: finish}},
		Extras:  chat.Extras{GroundingMetadata: upstream.Present(grounding)},
	}
	if resp.ID == "" {
		resp.ID = upstream.NewID("gen-")
	}
	if resp.Model == "" {
		resp.Model = model
	}
	if r.UsageMetadata != nil {
		resp.Usage = r.UsageMetadata.toChat()
		withSearches(resp.Usage, searchQueries(grounding))
	}
	return resp
}

// searchQueries is how many Google Search queries a grounded answer ran
// (groundingMetadata.webSearchQueries): Gemini bills grounding per query.
func searchQueries(grounding json.RawMessage) int {
	if len(grounding) == 0 {
		return 0
	}
	var g struct {
		WebSearchQueries []json.RawMessage `json:"webSearchQueries"`
	}
	if json.Unmarshal(grounding, &g) != nil {
		return 0
	}
	return len(g.WebSearchQueries)
}

// withSearches reports n grounding queries as provider-run tool calls.
func withSearches(u *chat.Usage, n int) {
	if u != nil && n > 0 {
		u.ServerToolUse = map[string]int{"google_search": n}
	}
}

// toolCall turns a functionCall into an OpenAI tool call. Gemini 1.x/2.0
// calls have no id, so one is made up: the client only needs it to pair its
// tool message with the call, and the adapter pairs them back by name.
func toolCall(f *functionCall) chat.ToolCall {
	id := f.ID
	if id == "" {
		id = upstream.NewID("call_")
	}
	args := string(bytes.TrimSpace(f.Args))
	if args == "" || args == "null" {
		args = "{}"
	}
	return chat.ToolCall{ID: id, Type: "function", Function: chat.FunctionCall{Name: f.Name, Arguments: args}}
}

// wireErr is Google's error object.
type wireErr struct {
	Code    int               `json:"code"`
	Message string            `json:"message"`
	Status  string            `json:"status"`
	Details []json.RawMessage `json:"details"`
}

// toError keeps the message and reads RetryInfo's retryDelay. An invalid
// API key comes back from Google as 400 INVALID_ARGUMENT with reason
// API_KEY_INVALID: it is reported as 401, since it is the gateway's
// credentials and not the client's request that is wrong.
func (e *wireErr) toError(status int) *upstream.Error {
	if status == 0 {
		status = e.Code
	}
	if status == 0 {
		status = http.StatusInternalServerError
	}
	out := &upstream.Error{Status: status, Message: e.Message}
	for _, raw := range e.Details {
		var d struct {
			Type       string `json:"@type"`
			RetryDelay string `json:"retryDelay"`
			Reason     string `json:"reason"`
		}
		if json.Unmarshal(raw, &d) != nil {
			continue
		}
		switch {
		case strings.HasSuffix(d.Type, "google.rpc.RetryInfo"):
			if dur, err := time.ParseDuration(d.RetryDelay); err == nil && dur > 0 {
				out.RetryAfter = dur
			}
		case strings.HasSuffix(d.Type, "google.rpc.ErrorInfo") && d.Reason == "API_KEY_INVALID":
			out.Status = http.StatusUnauthorized
		}
	}
	return out
}

// parseError reads {"error":{"code","message","status","details"}}, also
// wrapped in an array as the non-SSE stream endpoint sends it.
func parseError(status int, header http.Header, body []byte) *upstream.Error {
	type envelope struct {
		Error *wireErr `json:"error"`
	}
	var v envelope
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		var arr []envelope
		if json.Unmarshal(body, &arr) != nil || len(arr) == 0 {
			return nil
		}
		v = arr[0]
	} else if json.Unmarshal(body, &v) != nil {
		return nil
	}
	if v.Error == nil || v.Error.Message == "" {
		return nil
	}
	e := v.Error.toError(status)
	if e.RetryAfter == 0 {
		e.RetryAfter = upstream.RetryAfterHeader(header)
	}
	return e
}
