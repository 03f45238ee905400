package openairesp

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers/openai"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
	"github.com/beaver-gateway/beaver/internal/responses"
)

// wireResponse is a Response object: what Beaver reads of it.
type wireResponse struct {
	ID                string     `json:"id"`
	CreatedAt         int64      `json:"created_at"`
	Model             string     `json:"model"`
	Status            string     `json:"status"`
	Output            []wireItem `json:"output"`
	Usage             *wireUsage `json:"usage"`
	Error             *wireError `json:"error"`
	IncompleteDetails *struct {
		Reason string `json:"reason"`
	} `json:"incomplete_details"`
}

// wireItem is an output item: a message, a function call, the model's
// reasoning, or a provider's tool output (Perplexity's search_results,
// OpenAI's web_search_call).
type wireItem struct {
	Type             string            `json:"type"`
	ID               string            `json:"id"`
	Content          []wirePart        `json:"content"`
	CallID           string            `json:"call_id"`
	Name             string            `json:"name"`
	Arguments        string            `json:"arguments"`
	ThoughtSignature string            `json:"thought_signature"`
	Summary          []wirePart        `json:"summary"`
	Results          []json.RawMessage `json:"results"`
}

// wirePart is a content part: output_text (with its annotations), refusal,
// or a reasoning item's summary_text and reasoning_text.
type wirePart struct {
	Type        string `json:"type"`
	Text        string `json:"text"`
	Refusal     string `json:"refusal"`
	Annotations []struct {
		Type string `json:"type"`
		URL  string `json:"url"`
	} `json:"annotations"`
}

// Output item and status names beyond package responses'.
const (
	itemSearchResults = "search_results"  // Perplexity: the results of its web searches
	itemWebSearchCall = "web_search_call" // OpenAI: one web search it ran
	statusFailed      = responses.StatusFailed
	statusCancelled   = "cancelled"
)

// decode reads a non-streaming answer; tools are the request's function
// names.
func decode(data []byte, tools map[string]bool) (*chat.Response, error) {
	var wr wireResponse
	if err := json.Unmarshal(data, &wr); err != nil {
		return nil, upstream.BadResponse("response", err)
	}
	if err := wr.failure(); err != nil {
		return nil, err
	}
	msg := chat.Message{Role: chat.RoleAssistant}
	var text, reasoning strings.Builder
	hasText := false
	var src sources
	for _, it := range wr.Output {
		switch it.Type {
		case itemMessage:
			for _, p := range it.Content {
				switch p.Type {
				case responses.PartOutputText:
					text.WriteString(p.Text)
					hasText = true
				case responses.PartRefusal:
					msg.Refusal = upstream.Ptr(p.Refusal)
				}
				src.addAnnotations(p)
			}
		case itemFunctionCall:
			if tools[it.Name] {
				msg.ToolCalls = append(msg.ToolCalls, it.toolCall(nil))
			}
		case responses.ItemReasoning:
			reasoning.WriteString(it.reasoningText())
		case itemSearchResults:
			src.addResults(it.Results)
		}
	}
	if hasText || len(msg.ToolCalls) == 0 {
		msg.Content = chat.TextContent(text.String())
	}
	msg.ReasoningContent = reasoning.String()
	created := wr.CreatedAt
	if created == 0 {
		created = time.Now().Unix()
	}
	return &chat.Response{ID: wr.ID, Object: chat.ObjectCompletion, Created: created, Model: wr.Model,
		Choices: []chat.Choice{{Message: msg, FinishReason: wr.finishReason(wr.Status, len(msg.ToolCalls) > 0)}},
		Usage:   wr.Usage.toChat(wr.Output), Extras: src.extras()}, nil
}

// failure is the error of a response that failed or was cancelled: the
// Agent API answers those with a 200.
func (wr *wireResponse) failure() error {
	switch {
	case wr.Error != nil && wr.Error.Message != "":
		return wr.Error.toError()
	case wr.Status == statusFailed || wr.Status == statusCancelled:
		return &upstream.Error{Status: http.StatusBadGateway, Message: "the upstream response " + wr.Status}
	}
	return nil
}

// finishReason is chat's finish_reason for a response of status (an
// incomplete response says why: max_output_tokens or content_filter).
func (wr *wireResponse) finishReason(status string, toolCalls bool) string {
	switch {
	case status == responses.StatusIncomplete && wr.IncompleteDetails != nil && wr.IncompleteDetails.Reason == responses.ReasonContentFilter:
		return chat.FinishContentFilter
	case status == responses.StatusIncomplete:
		return chat.FinishLength
	case toolCalls:
		return chat.FinishToolCalls
	}
	return chat.FinishStop
}

// toolCall is a function call item as a chat tool call; index is set in
// stream deltas. Gemini's thought signature (through Perplexity) goes
// where chat clients keep it for the next turn.
func (it *wireItem) toolCall(index *int) chat.ToolCall {
	return chat.ToolCall{Index: index, ID: it.CallID, Type: toolFunction,
		Function:     chat.FunctionCall{Name: it.Name, Arguments: it.Arguments},
		ExtraContent: chat.GoogleExtraContent(it.ThoughtSignature)}
}

// reasoningText is a reasoning item's summary, else its raw reasoning.
func (it *wireItem) reasoningText() string {
	var b strings.Builder
	for _, p := range it.Summary {
		b.WriteString(p.Text)
	}
	if b.Len() == 0 {
		for _, p := range it.Content {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// outputText is a message item's text.
func (it *wireItem) outputText() string {
	var b strings.Builder
	for _, p := range it.Content {
		if p.Type == responses.PartOutputText {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// wireUsage is the Responses usage, with Perplexity's additions: its cache
// counts and the invocations of each tool it bills per call.
type wireUsage struct {
	InputTokens        int `json:"input_tokens"`
	OutputTokens       int `json:"output_tokens"`
	TotalTokens        int `json:"total_tokens"`
	InputTokensDetails *struct {
		CachedTokens             *int `json:"cached_tokens"`           // OpenAI (Perplexity sends it too)
		CacheReadInputTokens     *int `json:"cache_read_input_tokens"` // Perplexity
		CacheCreationInputTokens int  `json:"cache_creation_input_tokens"`
	} `json:"input_tokens_details"`
	OutputTokensDetails *struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	ToolCallsDetails map[string]struct {
		Invocation int `json:"invocation"`
	} `json:"tool_calls_details"`
}

// billedTools names the tools Perplexity bills (usage.tool_calls_details'
// keys) by the request's tool type, as chat.Usage.ServerToolUse counts
// them; other names are kept.
var billedTools = map[string]string{"search_web": toolWebSearch}

// toChat returns u in OpenAI's chat convention, which the Responses usage
// already follows: input_tokens includes the cache reads and writes,
// output_tokens the reasoning. Provider-run tool calls are counted from the
// usage's invocations, or, where it has none (OpenAI), from the output's
// web_search_call items.
func (u *wireUsage) toChat(output []wireItem) *chat.Usage {
	if u == nil {
		return nil
	}
	out := &chat.Usage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens, TotalTokens: u.TotalTokens}
	if d := u.InputTokensDetails; d != nil {
		pd := &chat.PromptTokensDetails{CacheWriteTokens: d.CacheCreationInputTokens}
		switch {
		case d.CachedTokens != nil:
			pd.CachedTokens = *d.CachedTokens
		case d.CacheReadInputTokens != nil:
			pd.CachedTokens = *d.CacheReadInputTokens
		}
		out.PromptTokensDetails = pd
	}
	if d := u.OutputTokensDetails; d != nil {
		out.CompletionTokensDetails = &chat.CompletionTokensDetails{ReasoningTokens: d.ReasoningTokens}
	}
	calls := map[string]int{}
	for name, d := range u.ToolCallsDetails {
		if d.Invocation > 0 {
			if n, ok := billedTools[name]; ok {
				name = n
			}
			calls[name] += d.Invocation
		}
	}
	if len(u.ToolCallsDetails) == 0 {
		for _, it := range output {
			if it.Type == itemWebSearchCall {
				calls[toolWebSearch]++
			}
		}
	}
	if len(calls) > 0 {
		out.ServerToolUse = calls
	}
	if out.TotalTokens == 0 {
		out.TotalTokens = out.PromptTokens + out.CompletionTokens
	}
	return out
}

// wireError is the error object of a failed response or stream event.
// Perplexity's code is the HTTP status (a number), OpenAI's a string.
type wireError struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"`
}

func (e *wireError) toError() *upstream.Error {
	var status int
	if json.Unmarshal(e.Code, &status) == nil && status >= 400 && status < 600 {
		return &upstream.Error{Status: status, Message: e.Message}
	}
	var code string
	_ = json.Unmarshal(e.Code, &code)
	return &upstream.Error{Status: statusOf(code, e.Type), Message: e.Message}
}

// statusOf guesses the HTTP status of an error code or type reported
// without one (an in-stream or in-response error).
func statusOf(code, typ string) int {
	for _, s := range []string{code, typ} {
		switch s {
		case "invalid_request", "invalid_prompt", "invalid_model", "invalid_parameter":
			return http.StatusBadRequest
		case "request_rate_limit_exceeded":
			return http.StatusTooManyRequests
		}
		if status := upstream.StatusForType(s); status != http.StatusInternalServerError {
			return status
		}
	}
	return http.StatusInternalServerError
}

// parseError reads an error answer: OpenAI's envelope, which Perplexity's
// Agent API shares ({"error": {"message", "type", "code", "param"}}).
func parseError(status int, header http.Header, body []byte) *upstream.Error {
	return openai.ParseError(status, header, body)
}

// sources gathers what an answer drew on, for chat.Extras in the shape the
// Sonar API gave them: search_results, every search result's own JSON in
// order; citations, their URLs, then those of url_citation annotations
// not among them. The answer's [n] markers number the results from 1.
type sources struct {
	results []json.RawMessage
	urls    []string
	seen    map[string]bool
	changes int // additions so far: a stream passes the sources on again only after one
}

func (s *sources) addResults(results []json.RawMessage) {
	for _, r := range results {
		s.results = append(s.results, r)
		s.changes++
		var v struct {
			URL string `json:"url"`
		}
		if json.Unmarshal(r, &v) == nil {
			s.addURL(v.URL)
		}
	}
}

func (s *sources) addAnnotations(p wirePart) {
	for _, a := range p.Annotations {
		if a.Type == "url_citation" {
			s.addURL(a.URL)
		}
	}
}

func (s *sources) addURL(u string) {
	if u == "" || s.seen[u] {
		return
	}
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	s.seen[u] = true
	s.urls = append(s.urls, u)
	s.changes++
}

// extras are the sources as chat.Extras; empty when there are none.
func (s *sources) extras() chat.Extras {
	var x chat.Extras
	if len(s.urls) > 0 {
		x.Citations, _ = json.Marshal(s.urls) // strings always marshal
	}
	if len(s.results) > 0 {
		x.SearchResults, _ = json.Marshal(s.results) // each was read as valid JSON
	}
	return x
}
