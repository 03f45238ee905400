package upstream

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/beaver-gateway/beaver/internal/providers/sse"
)

// openaiFormat answers like the OpenAI Chat Completions API.
type openaiFormat struct{}

type oaMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	Name       string          `json:"name"`
	ToolCallID string          `json:"tool_call_id"`
	ToolCalls  []oaToolCall    `json:"tool_calls"`
	// ReasoningContent is DeepSeek's: the thinking of an assistant turn.
	ReasoningContent *string `json:"reasoning_content"`
}

// deepseekThinking reports whether model answers in DeepSeek's thinking
// mode, whose tool loops need each assistant turn's reasoning_content back.
func deepseekThinking(model string) bool {
	return model == "deepseek-reasoner" || strings.HasPrefix(model, "deepseek-v4")
}

type oaRequest struct {
	Model               string      `json:"model"`
	Messages            []oaMessage `json:"messages"`
	Stream              bool        `json:"stream"`
	MaxTokens           int         `json:"max_tokens"`
	MaxCompletionTokens int         `json:"max_completion_tokens"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Tools []struct {
		Function struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
}

// oaText returns the text of string or array content.
func oaText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	_ = json.Unmarshal(raw, &parts)
	var texts []string
	for _, p := range parts {
		if p.Type == "text" {
			texts = append(texts, p.Text)
		}
	}
	return strings.Join(texts, " ")
}

func (openaiFormat) parse(body []byte, c *call) error {
	var r oaRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return err
	}
	if len(r.Messages) == 0 {
		return fmt.Errorf("no messages")
	}
	c.model, c.stream = r.Model, r.Stream
	c.includeUsage = r.StreamOptions != nil && r.StreamOptions.IncludeUsage
	c.maxTokens = r.MaxTokens
	if r.MaxCompletionTokens > 0 {
		c.maxTokens = r.MaxCompletionTokens
	}
	texts := make([]string, len(r.Messages))
	for i, m := range r.Messages {
		texts[i] = oaText(m.Content)
		if m.Role == "user" {
			c.lastUser = texts[i]
		}
	}
	if enc := oaEncoding(r.Model); enc != "" {
		c.promptTokens = oaPromptTokens(enc, &r)
	} else {
		c.promptTokens = countPrompt(texts)
	}
	if len(r.Tools) > 0 {
		c.tool = r.Tools[0].Function.Name
	}
	if deepseekThinking(r.Model) {
		// DeepSeek's thinking mode refuses a tool loop whose assistant
		// turns lost their reasoning_content (400).
		for i, m := range r.Messages {
			if m.Role == "assistant" && len(m.ToolCalls) > 0 && (m.ReasoningContent == nil || *m.ReasoningContent == "") {
				return providerMessage(fmt.Sprintf("Missing `reasoning_content` field in the assistant message at message index %d", i))
			}
		}
	}
	return nil
}

// oaReasoningText is the reasoning_content a DeepSeek thinking model
// answers with for [[reasoning:N]]: N words of thought.
func oaReasoningText(p *plan) string {
	return strings.TrimSpace(strings.Repeat("think ", p.reasoning))
}

func (openaiFormat) errorBody(status int, c *call, msg string) []byte {
	typ, code, text := "invalid_request_error", any(nil), "fake error requested"
	switch status {
	case 400:
		text = "Invalid value for 'messages': fake error requested."
	case 401:
		code, text = "invalid_api_key", "Incorrect API key provided: sk-fake************************1234. You can find your API key at https://platform.openai.com/account/api-keys."
	case 403:
		code, text = "unsupported_country_region_territory", "Country, region, or territory not supported"
	case 404:
		code, text = "model_not_found", fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", c.model)
	case 429:
		typ, code, text = "requests", "rate_limit_exceeded", fmt.Sprintf("Rate limit reached for %s in organization org-fake on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.", c.model)
	case 503:
		typ, text = "server_error", "The engine is currently overloaded, please try again later."
	default:
		if status >= 500 {
			typ, text = "server_error", "The server had an error while processing your request. Sorry about that!"
		}
	}
	if msg != "" {
		text = msg
	}
	return mustJSON(map[string]any{"error": map[string]any{"message": text, "type": typ, "param": nil, "code": code}})
}

type oaToolCall struct {
	Index    *int   `json:"index,omitempty"`
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

func oaUsage(c *call, p *plan) map[string]any {
	completion := p.completionTokens() + p.reasoning // completion_tokens includes the reasoning tokens
	u := map[string]any{
		"prompt_tokens": c.promptTokens, "completion_tokens": completion, "total_tokens": c.promptTokens + completion,
		"prompt_tokens_details":     map[string]int{"cached_tokens": p.cached, "audio_tokens": 0, "cache_write_tokens": p.cacheWrite + p.cacheWriteHour},
		"completion_tokens_details": map[string]int{"reasoning_tokens": p.reasoning, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
	}
	if strings.HasPrefix(c.model, "grok") {
		// xAI: completion_tokens leaves the reasoning tokens out (billed as
		// output on top; total_tokens counts them), plus fields of its own.
		// Recorded from grok-3-mini: prompt 12, completion 1, total 241,
		// reasoning 228.
		u["completion_tokens"] = p.completionTokens()
		u["prompt_tokens_details"] = map[string]int{"text_tokens": c.promptTokens, "audio_tokens": 0, "image_tokens": 0, "cached_tokens": p.cached}
		u["num_sources_used"] = 0
		u["cost_in_usd_ticks"] = 1176500
	}
	return u
}

func oaFinish(p *plan) string {
	switch {
	case p.tool:
		return "tool_calls"
	case p.capped:
		return "length"
	}
	return "stop"
}

func (openaiFormat) complete(w http.ResponseWriter, c *call, p *plan, id string) {
	msg := map[string]any{"role": "assistant", "content": nil, "refusal": nil}
	if p.tool {
		tc := oaToolCall{ID: "call_fake" + id, Type: "function"}
		tc.Function.Name, tc.Function.Arguments = c.tool, strings.Join(toolArgFragments, "")
		msg["tool_calls"] = []oaToolCall{tc}
	} else {
		msg["content"] = strings.Join(p.words, " ")
	}
	if deepseekThinking(c.model) && p.reasoning > 0 {
		msg["reasoning_content"] = oaReasoningText(p)
	}
	resp := map[string]any{
		"id": "chatcmpl-fake" + id, "object": "chat.completion", "created": time.Now().Unix(), "model": c.model,
		"choices":            []any{map[string]any{"index": 0, "message": msg, "logprobs": nil, "finish_reason": oaFinish(p)}},
		"system_fingerprint": "fp_fake",
	}
	if !p.noUsage {
		resp["usage"] = oaUsage(c, p)
	}
	if strings.Contains(c.model, "sonar") { // Perplexity: the sources the answer cites
		delete(resp, "system_fingerprint")
		resp["citations"] = perplexityCitations
	}
	writeJSON(w, http.StatusOK, mustJSON(resp))
}

type oaStreamer struct {
	w       *sse.Writer
	c       *call
	p       *plan
	id      string
	created int64
	words   int // delivered so far, for Perplexity's running usage
}

// perplexity reports whether the stream is answered the way Perplexity's
// (legacy Sonar) API streamed, recorded from sonar: every chunk carries the
// running usage and the citations, the last one is object
// "chat.completion.done" with the finish reason, and no "data: [DONE]"
// follows.
func (s *oaStreamer) perplexity() bool { return strings.Contains(s.c.model, "sonar") }

var perplexityCitations = []string{"https://en.wikipedia.org/wiki/San_Francisco", "https://example.com/population"}

func (openaiFormat) streamer(w *sse.Writer, c *call, p *plan, id string) streamer {
	return &oaStreamer{w: w, c: c, p: p, id: "chatcmpl-fake" + id, created: time.Now().Unix()}
}

// chunk writes a chat.completion.chunk with one choice; with include_usage
// every chunk but the last carries "usage": null, as OpenAI's do.
func (s *oaStreamer) chunk(delta map[string]any, finish any) error {
	ch := map[string]any{
		"id": s.id, "object": "chat.completion.chunk", "created": s.created, "model": s.c.model,
		"system_fingerprint": "fp_fake",
		"choices":            []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}},
	}
	if s.c.includeUsage {
		ch["usage"] = nil
	}
	if s.perplexity() {
		delete(ch, "system_fingerprint")
		ch["citations"] = perplexityCitations
		if !s.p.noUsage {
			ch["usage"] = map[string]int{"prompt_tokens": s.c.promptTokens, "completion_tokens": s.words,
				"total_tokens": s.c.promptTokens + s.words}
		}
		if finish != nil {
			ch["object"] = "chat.completion.done"
		}
	}
	return s.w.Data(mustJSON(ch))
}

func (s *oaStreamer) start() error {
	if deepseekThinking(s.c.model) && s.p.reasoning > 0 {
		// DeepSeek streams its thinking first, as reasoning_content deltas.
		if err := s.chunk(map[string]any{"role": "assistant", "content": nil, "reasoning_content": oaReasoningText(s.p)}, nil); err != nil {
			return err
		}
	}
	if s.p.tool {
		return nil // the tool call's first chunk carries the role
	}
	return s.chunk(map[string]any{"role": "assistant", "content": "", "refusal": nil}, nil)
}

func (s *oaStreamer) word(i int, text string) error {
	s.words++
	return s.chunk(map[string]any{"content": delta(i, text)}, nil)
}

func (s *oaStreamer) toolCall(name string) error {
	first := oaToolCall{Index: new(int), ID: "call_fake" + s.id, Type: "function"}
	first.Function.Name = name
	if err := s.chunk(map[string]any{"role": "assistant", "content": nil, "tool_calls": []oaToolCall{first}, "refusal": nil}, nil); err != nil {
		return err
	}
	for _, frag := range toolArgFragments {
		tc := oaToolCall{Index: new(int)}
		tc.Function.Arguments = frag
		if err := s.chunk(map[string]any{"tool_calls": []oaToolCall{tc}}, nil); err != nil {
			return err
		}
	}
	return nil
}

func (s *oaStreamer) finish() error {
	if err := s.chunk(map[string]any{}, oaFinish(s.p)); err != nil {
		return err
	}
	if s.perplexity() {
		return nil // the usage came on every chunk, and no [DONE] follows
	}
	if s.c.includeUsage && !s.p.noUsage {
		u := map[string]any{
			"id": s.id, "object": "chat.completion.chunk", "created": s.created, "model": s.c.model,
			"system_fingerprint": "fp_fake", "choices": []any{}, "usage": oaUsage(s.c, s.p),
		}
		if err := s.w.Data(mustJSON(u)); err != nil {
			return err
		}
	}
	return s.w.Data([]byte("[DONE]"))
}

func (s *oaStreamer) midError() error {
	return s.w.Data(openaiFormat{}.errorBody(http.StatusInternalServerError, s.c, ""))
}
