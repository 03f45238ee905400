// Package anthropic is the adapter for Anthropic's Messages API
// (POST /v1/messages, anthropic-version 2023-06-01), translating OpenAI-shaped
// requests, responses and stream chunks to and from it.
package anthropic

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
)

// APIVersion is the anthropic-version header sent with every request.
const APIVersion = "2023-06-01"

// DefaultMaxTokens is sent when the request has no max_tokens, which the
// Messages API requires (the gateway's API normally always sets one).
const DefaultMaxTokens = 4096

// Adapter talks to the Anthropic Messages API.
type Adapter struct {
	client *upstream.Client
	path   string // after the base URL of the endpoint each attempt goes to
	header http.Header
}

// New returns the adapter for cfg; it appends "/v1/messages" to the base URL
// and sends the key as x-api-key.
func New(cfg upstream.Config) (*Adapter, error) {
	c, err := upstream.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "beaver-gateway")
	h.Set("anthropic-version", APIVersion)
	return &Adapter{client: c, path: "/v1/messages", header: h}, nil
}

// Client is the adapter's upstream client (its endpoints' health).
func (a *Adapter) Client() *upstream.Client { return a.client }

var apiKey = upstream.KeyScheme{Header: "x-api-key"}

// Complete sends a non-streaming request.
func (a *Adapter) Complete(ctx context.Context, req *chat.Request) (*chat.Response, error) {
	body, err := encodeRequest(req, false)
	if err != nil {
		return nil, err
	}
	data, err := a.client.Do(ctx, a.request(body, "application/json"))
	if err != nil {
		return nil, err
	}
	var m wireMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, upstream.BadResponse("response", err)
	}
	if m.Type == "error" && m.Error != nil {
		return nil, m.Error.toError(0)
	}
	return m.toResponse(), nil
}

// Stream starts a streaming request.
func (a *Adapter) Stream(ctx context.Context, req *chat.Request) (upstream.Stream, error) {
	body, err := encodeRequest(req, true)
	if err != nil {
		return nil, err
	}
	b, err := a.client.Open(ctx, a.request(body, "text/event-stream"))
	if err != nil {
		return nil, err
	}
	return upstream.NewEventStream(b, newTranslator()), nil
}

func (a *Adapter) request(body []byte, accept string) upstream.Request {
	h := a.header.Clone()
	h.Set("Accept", accept)
	return upstream.Request{Path: a.path, Key: apiKey, Header: h, Body: body, ParseError: parseError}
}

// wireMessage is a Messages API response (also the message of message_start).
type wireMessage struct {
	ID         string      `json:"id"`
	Type       string      `json:"type"`
	Model      string      `json:"model"`
	Content    []block     `json:"content"`
	StopReason string      `json:"stop_reason"`
	Usage      *wireUsage  `json:"usage"`
	Error      *wireErrObj `json:"error"`
}

// wireUsage has pointer fields so that a message_delta can update only what
// it carries.
type wireUsage struct {
	InputTokens              *int `json:"input_tokens"`
	OutputTokens             *int `json:"output_tokens"`
	CacheCreationInputTokens *int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int `json:"cache_read_input_tokens"`
	// CacheCreation splits the cache writes by lifetime, priced apart.
	CacheCreation *struct {
		Ephemeral5m *int `json:"ephemeral_5m_input_tokens"`
		Ephemeral1h *int `json:"ephemeral_1h_input_tokens"`
	} `json:"cache_creation"`
	// ServerToolUse counts the tool calls Anthropic ran (web search, web
	// fetch), billed per call.
	ServerToolUse *struct {
		WebSearchRequests *int `json:"web_search_requests"`
		WebFetchRequests  *int `json:"web_fetch_requests"`
	} `json:"server_tool_use"`
}

// merge folds in a later event's usage. Anthropic's counts are cumulative
// (message_delta repeats or raises message_start's), so each field keeps the
// larger value and a field an event leaves out keeps the earlier one.
func (u *wireUsage) merge(o *wireUsage) {
	set := func(dst **int, v *int) {
		if v != nil && (*dst == nil || *v > **dst) {
			*dst = v
		}
	}
	set(&u.InputTokens, o.InputTokens)
	set(&u.OutputTokens, o.OutputTokens)
	set(&u.CacheCreationInputTokens, o.CacheCreationInputTokens)
	set(&u.CacheReadInputTokens, o.CacheReadInputTokens)
	if c := o.CacheCreation; c != nil {
		if u.CacheCreation == nil {
			u.CacheCreation = c
		} else {
			set(&u.CacheCreation.Ephemeral5m, c.Ephemeral5m)
			set(&u.CacheCreation.Ephemeral1h, c.Ephemeral1h)
		}
	}
	if t := o.ServerToolUse; t != nil {
		if u.ServerToolUse == nil {
			u.ServerToolUse = t
		} else {
			set(&u.ServerToolUse.WebSearchRequests, t.WebSearchRequests)
			set(&u.ServerToolUse.WebFetchRequests, t.WebFetchRequests)
		}
	}
}

// toChat counts cache reads and cache writes as prompt tokens (Anthropic's
// input_tokens excludes both), reports cache reads as cached tokens, cache
// writes (and the one-hour part of them) beside, and the server tool calls.
func (u *wireUsage) toChat() *chat.Usage {
	v := func(p *int) int {
		if p == nil {
			return 0
		}
		return *p
	}
	out := &chat.Usage{
		PromptTokens:     v(u.InputTokens) + v(u.CacheCreationInputTokens) + v(u.CacheReadInputTokens),
		CompletionTokens: v(u.OutputTokens),
	}
	out.TotalTokens = out.PromptTokens + out.CompletionTokens
	read, write, write1h := v(u.CacheReadInputTokens), v(u.CacheCreationInputTokens), 0
	if c := u.CacheCreation; c != nil {
		write1h = min(v(c.Ephemeral1h), write)
	}
	if read > 0 || write > 0 {
		out.PromptTokensDetails = &chat.PromptTokensDetails{CachedTokens: read, CacheWriteTokens: write, CacheWrite1hTokens: write1h}
	}
	if t := u.ServerToolUse; t != nil {
		for name, n := range map[string]int{"web_search": v(t.WebSearchRequests), "web_fetch": v(t.WebFetchRequests)} {
			if n > 0 {
				if out.ServerToolUse == nil {
					out.ServerToolUse = map[string]int{}
				}
				out.ServerToolUse[name] = n
			}
		}
	}
	return out
}

type wireErrObj struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

func (e *wireErrObj) toError(status int) *upstream.Error {
	if status == 0 {
		status = upstream.StatusForType(e.Type)
	}
	return &upstream.Error{Status: status, Message: e.Message}
}

// parseError reads {"type":"error","error":{"type":...,"message":...}}.
func parseError(status int, header http.Header, body []byte) *upstream.Error {
	var v struct {
		Error *wireErrObj `json:"error"`
	}
	if json.Unmarshal(body, &v) != nil || v.Error == nil || v.Error.Message == "" {
		return nil
	}
	e := v.Error.toError(status)
	e.RetryAfter = upstream.RetryAfterHeader(header)
	return e
}

// finishReason maps stop_reason: end_turn and stop_sequence end normally,
// max_tokens is a length stop, tool_use asks for tool calls, refusal is
// filtered content.
func finishReason(stop string) string {
	switch stop {
	case "max_tokens":
		return chat.FinishLength
	case "tool_use":
		return chat.FinishToolCalls
	case "refusal":
		return chat.FinishContentFilter
	}
	return chat.FinishStop
}

func (m *wireMessage) toResponse() *chat.Response {
	msg := chat.Message{Role: chat.RoleAssistant}
	var text, thinking []byte
	for _, b := range m.Content {
		switch b.Type {
		case "text":
			text = append(text, b.Text...)
		case "thinking":
			thinking = append(thinking, b.Thinking...)
		case "tool_use":
			msg.ToolCalls = append(msg.ToolCalls, chat.ToolCall{
				ID: b.ID, Type: "function",
				Function: chat.FunctionCall{Name: b.Name, Arguments: arguments(b.Input)},
			})
		}
	}
	if len(text) > 0 || len(msg.ToolCalls) == 0 {
		msg.Content = chat.TextContent(string(text))
	}
	msg.ReasoningContent = string(thinking)
	resp := &chat.Response{
		ID: m.ID, Object: chat.ObjectCompletion, Created: time.Now().Unix(), Model: m.Model,
		Choices: []chat.Choice{{Index: 0, Message: msg, FinishReason: finishReason(m.StopReason)}},
	}
	if m.Usage != nil {
		resp.Usage = m.Usage.toChat()
	}
	return resp
}

// arguments renders a tool_use input as OpenAI's arguments string.
func arguments(input json.RawMessage) string {
	if len(input) == 0 {
		return "{}"
	}
	return string(input)
}
