package upstream

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/beaver-gateway/beaver/internal/providers/sse"
)

// anthropicFormat answers like the Anthropic Messages API.
type anthropicFormat struct{}

type anRequest struct {
	Model     string          `json:"model"`
	MaxTokens int             `json:"max_tokens"`
	Stream    bool            `json:"stream"`
	System    json.RawMessage `json:"system"`
	Messages  []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Tools []struct {
		Name string `json:"name"`
	} `json:"tools"`
}

// anText returns the text of string content or of a block list (text blocks
// and tool_result contents).
func anText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var blocks []struct {
		Type    string          `json:"type"`
		Text    string          `json:"text"`
		Content json.RawMessage `json:"content"`
	}
	_ = json.Unmarshal(raw, &blocks)
	var texts []string
	for _, b := range blocks {
		switch b.Type {
		case "text":
			texts = append(texts, b.Text)
		case "tool_result":
			texts = append(texts, anText(b.Content))
		}
	}
	return strings.Join(texts, " ")
}

func (anthropicFormat) parse(body []byte, c *call) error {
	var r anRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return err
	}
	if r.MaxTokens < 1 || len(r.Messages) == 0 {
		return errors.New("max_tokens and messages are required")
	}
	c.model, c.stream, c.maxTokens = r.Model, r.Stream, r.MaxTokens
	c.promptTokens, c.lastUser = r.prompt()
	if len(r.Tools) > 0 {
		c.tool = r.Tools[0].Name
	}
	return nil
}

// prompt returns the request's prompt tokens (the system prompt counts as
// a message) and the text of its last user message.
func (r *anRequest) prompt() (tokens int, lastUser string) {
	var texts []string
	if len(r.System) > 0 {
		texts = append(texts, anText(r.System))
	}
	for _, m := range r.Messages {
		t := anText(m.Content)
		texts = append(texts, t)
		if m.Role == "user" {
			lastUser = t
		}
	}
	return countPrompt(texts), lastUser
}

// countFields are the fields POST /v1/messages/count_tokens accepts; the
// API refuses any other ("max_tokens: Extra inputs are not permitted").
var countFields = map[string]bool{"model": true, "messages": true, "system": true, "tools": true,
	"tool_choice": true, "thinking": true}

// countTokens answers POST /v1/messages/count_tokens as Anthropic does:
// {"input_tokens": N}, N being the prompt tokens /v1/messages would report
// for the same request (input_tokens with the cache reads). Counting
// generates nothing: the directives are not read.
func (f anthropicFormat) countTokens(w http.ResponseWriter, body []byte) {
	var fields map[string]json.RawMessage
	var r anRequest
	if err := json.Unmarshal(body, &fields); err != nil || json.Unmarshal(body, &r) != nil {
		writeJSON(w, http.StatusBadRequest, f.errorBody(http.StatusBadRequest, &call{}, "invalid request: the body is not a JSON object"))
		return
	}
	for name := range fields {
		if !countFields[name] {
			writeJSON(w, http.StatusBadRequest, f.errorBody(http.StatusBadRequest, &call{}, name+": Extra inputs are not permitted"))
			return
		}
	}
	if r.Model == "" || len(r.Messages) == 0 {
		writeJSON(w, http.StatusBadRequest, f.errorBody(http.StatusBadRequest, &call{}, "model and messages are required"))
		return
	}
	n, _ := r.prompt()
	writeJSON(w, http.StatusOK, mustJSON(map[string]int{"input_tokens": n}))
}

func (anthropicFormat) errorBody(status int, c *call, msg string) []byte {
	typ, text := "api_error", "Internal server error"
	switch status {
	case 400:
		typ, text = "invalid_request_error", "messages: fake error requested"
	case 401:
		typ, text = "authentication_error", "invalid x-api-key"
	case 403:
		typ, text = "permission_error", "Your API key does not have permission to use the specified resource."
	case 404:
		typ, text = "not_found_error", "model: "+c.model
	case 413:
		typ, text = "request_too_large", "Request exceeds the maximum allowed number of bytes."
	case 429:
		typ, text = "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit (https://docs.anthropic.com/en/api/rate-limits); see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase."
	case 529:
		typ, text = "overloaded_error", "Overloaded"
	default:
		if status < 500 {
			typ, text = "invalid_request_error", http.StatusText(status)
		}
	}
	if msg != "" {
		text = msg
	}
	return mustJSON(map[string]any{"type": "error", "error": map[string]string{"type": typ, "message": text}, "request_id": "req_fake"})
}

func anStop(p *plan) string {
	switch {
	case p.tool:
		return "tool_use"
	case p.capped:
		return "max_tokens"
	}
	return "end_turn"
}

// The blocks of a web search, as Anthropic's server tool sends them: the
// call, then its result, whose content is an array (recorded from
// claude-sonnet-4; encrypted_content shortened).
func anWebSearch(id string) (call, result map[string]any) {
	call = map[string]any{"type": "server_tool_use", "id": "srvtoolu_fake" + id, "name": "web_search",
		"input": map[string]any{"query": "fake news today"}}
	result = map[string]any{"type": "web_search_tool_result", "tool_use_id": "srvtoolu_fake" + id, "content": []any{
		map[string]any{"type": "web_search_result", "title": "Latest News", "url": "https://example.com/news",
			"encrypted_content": "EuAdCioICBgCIiRi", "page_age": "September 26, 2024"},
	}}
	return call, result
}

// anUsage is a message's usage; a web search adds server_tool_use.
func anUsage(c *call, p *plan, output int) map[string]any {
	writes := p.cacheWrite + p.cacheWriteHour
	u := map[string]any{"input_tokens": c.promptTokens - p.cached - writes, "cache_creation_input_tokens": writes,
		"cache_read_input_tokens": p.cached, "output_tokens": output,
		"cache_creation": map[string]int{"ephemeral_5m_input_tokens": p.cacheWrite, "ephemeral_1h_input_tokens": p.cacheWriteHour}}
	if p.webSearch {
		u["server_tool_use"] = map[string]int{"web_search_requests": 1, "web_fetch_requests": 0}
	}
	return u
}

func (anthropicFormat) complete(w http.ResponseWriter, c *call, p *plan, id string) {
	var content []any
	if p.webSearch {
		call, result := anWebSearch(id)
		content = append(content, call, result)
	}
	if p.tool {
		content = append(content, map[string]any{"type": "tool_use", "id": "toolu_fake" + id, "name": c.tool,
			"input": json.RawMessage(strings.Join(toolArgFragments, ""))})
	} else {
		content = append(content, map[string]any{"type": "text", "text": strings.Join(p.words, " ")})
	}
	resp := map[string]any{
		"id": "msg_fake" + id, "type": "message", "role": "assistant", "model": c.model, "content": content,
		"stop_reason": anStop(p), "stop_sequence": nil,
	}
	if !p.noUsage {
		resp["usage"] = anUsage(c, p, p.completionTokens()+p.reasoning)
	}
	writeJSON(w, http.StatusOK, mustJSON(resp))
}

type anStreamer struct {
	w     *sse.Writer
	c     *call
	p     *plan
	id    string
	index int // of the text or tool_use block (after a web search's two)
}

func (anthropicFormat) streamer(w *sse.Writer, c *call, p *plan, id string) streamer {
	return &anStreamer{w: w, c: c, p: p, id: id}
}

func (s *anStreamer) event(name string, v any) error { return s.w.Event(name, mustJSON(v)) }

func (s *anStreamer) start() error {
	msg := map[string]any{
		"id": "msg_fake" + s.id, "type": "message", "role": "assistant", "content": []any{}, "model": s.c.model,
		"stop_reason": nil, "stop_sequence": nil,
	}
	if !s.p.noUsage {
		u := anUsage(s.c, s.p, 1)
		delete(u, "server_tool_use")
		msg["usage"] = u
	}
	if err := s.event("message_start", map[string]any{"type": "message_start", "message": msg}); err != nil {
		return err
	}
	if s.p.webSearch {
		if err := s.webSearch(); err != nil {
			return err
		}
	}
	if s.p.tool {
		return nil
	}
	if err := s.event("content_block_start", map[string]any{"type": "content_block_start", "index": s.index,
		"content_block": map[string]string{"type": "text", "text": ""}}); err != nil {
		return err
	}
	return s.event("ping", map[string]string{"type": "ping"})
}

// webSearch streams the server tool's call (its input as JSON deltas) and
// its result (whole, in content_block_start), as blocks 0 and 1.
func (s *anStreamer) webSearch() error {
	call, result := anWebSearch(s.id)
	input := call["input"]
	call["input"] = map[string]any{}
	events := []struct {
		name string
		v    any
	}{
		{"content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": call}},
		{"content_block_delta", map[string]any{"type": "content_block_delta", "index": 0,
			"delta": map[string]string{"type": "input_json_delta", "partial_json": string(mustJSON(input))}}},
		{"content_block_stop", map[string]any{"type": "content_block_stop", "index": 0}},
		{"content_block_start", map[string]any{"type": "content_block_start", "index": 1, "content_block": result}},
		{"content_block_stop", map[string]any{"type": "content_block_stop", "index": 1}},
	}
	for _, e := range events {
		if err := s.event(e.name, e.v); err != nil {
			return err
		}
	}
	s.index = 2
	return nil
}

func (s *anStreamer) word(i int, text string) error {
	return s.event("content_block_delta", map[string]any{"type": "content_block_delta", "index": s.index,
		"delta": map[string]string{"type": "text_delta", "text": delta(i, text)}})
}

func (s *anStreamer) toolCall(name string) error {
	if err := s.event("content_block_start", map[string]any{"type": "content_block_start", "index": s.index,
		"content_block": map[string]any{"type": "tool_use", "id": "toolu_fake" + s.id, "name": name, "input": map[string]any{}}}); err != nil {
		return err
	}
	for _, frag := range append([]string{""}, toolArgFragments...) { // Anthropic opens with an empty fragment
		if err := s.event("content_block_delta", map[string]any{"type": "content_block_delta", "index": s.index,
			"delta": map[string]string{"type": "input_json_delta", "partial_json": frag}}); err != nil {
			return err
		}
	}
	return nil
}

func (s *anStreamer) finish() error {
	if err := s.event("content_block_stop", map[string]any{"type": "content_block_stop", "index": s.index}); err != nil {
		return err
	}
	md := map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": anStop(s.p), "stop_sequence": nil}}
	if !s.p.noUsage {
		u := map[string]any{"output_tokens": s.p.completionTokens() + s.p.reasoning}
		if s.p.webSearch {
			u["server_tool_use"] = map[string]int{"web_search_requests": 1, "web_fetch_requests": 0}
		}
		md["usage"] = u
	}
	if err := s.event("message_delta", md); err != nil {
		return err
	}
	return s.event("message_stop", map[string]string{"type": "message_stop"})
}

func (s *anStreamer) midError() error {
	return s.w.Event("error", []byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
}
