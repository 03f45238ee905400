package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/beaver-gateway/beaver/internal/providers/sse"
)

// responsesFormat answers like Perplexity's Agent API (POST /v1/responses,
// an alias of /v1/agent), which speaks OpenAI's Responses format with
// Perplexity's additions, as recorded from its live answers:
//
//   - The request is strict: an unknown field, top-level or nested, is a
//     400 naming it ("invalid request body: json: unknown field ...").
//     model (provider/model) or preset is required; function tools may
//     not take a built-in tool's name.
//   - A request that offers the web_search tool, or names a preset (which
//     bundles it), searches once ([[web-search:N]]: N times, 0 = none);
//     one offering fetch_url (or with a preset) fetches N pages for
//     [[fetch-url:N]]; max_tool_calls bounds both together, tool_choice
//     "none" turns them off. Each search is a search_results output item
//     (2 results; the first search's are the legacy answers' citations),
//     each fetch a fetch_url_results item; usage.tool_calls_details counts
//     them under Perplexity's billing names, search_web and fetch_url.
//   - usage has input_tokens (the cache reads included; the real API also
//     counts the search context there, the fake does not),
//     input_tokens_details with Perplexity's cache_read_input_tokens and
//     cache_creation_input_tokens beside cached_tokens, output_tokens (the
//     reasoning included), output_tokens_details, and a cost breakdown in
//     USD at perplexity/sonar's prices.
//   - A capped answer is status "incomplete" with incomplete_details
//     {"reason": "max_output_tokens"}.
//   - The stream is data-only events with sequence numbers, no [DONE]:
//     response.created, response.in_progress, per search a function_call
//     item named search_web (added, never done), its
//     response.reasoning.search_queries and .search_results events and
//     the search_results item (done); the message item (added with
//     content null), response.output_text.delta per word,
//     response.output_text.done, the item done; a function call the client
//     is to run comes whole in one added and one done event; the terminal
//     event is response.completed (response.incomplete when capped) with
//     the whole response, or response.failed with its error.
//
// Every input item counts as a message for the prompt rule (the
// instructions too); a function_call_output's output is its text.
type responsesFormat struct{}

// agentCall is what the fake keeps of an Agent API request.
type agentCall struct {
	preset       string
	search       bool // the web_search tool is offered (or a preset bundles it)
	fetch        bool // the fetch_url tool is offered (or a preset bundles it)
	noTools      bool // tool_choice "none"
	maxToolCalls int  // -1 = no bound
	instructions *string
	tools        []json.RawMessage
	maxOutput    *int
}

type agentRequest struct {
	Model           string            `json:"model"`
	Models          []string          `json:"models"`
	Preset          string            `json:"preset"`
	Input           json.RawMessage   `json:"input"`
	Instructions    *string           `json:"instructions"`
	Tools           []json.RawMessage `json:"tools"`
	ToolChoice      json.RawMessage   `json:"tool_choice"`
	MaxOutputTokens *int              `json:"max_output_tokens"`
	MaxSteps        *int              `json:"max_steps"`
	MaxToolCalls    *int              `json:"max_tool_calls"`
	Temperature     *float64          `json:"temperature"`
	TopP            *float64          `json:"top_p"`
	Stream          bool              `json:"stream"`
	StreamOptions   *struct {
		IncludeUsage *bool `json:"include_usage"`
	} `json:"stream_options"`
	Reasoning *struct {
		Effort string `json:"effort"`
	} `json:"reasoning"`
	ResponseFormat *struct {
		Type       string          `json:"type"`
		JSONSchema json.RawMessage `json:"json_schema"`
	} `json:"response_format"`
	ParallelToolCalls  *bool             `json:"parallel_tool_calls"`
	Metadata           map[string]string `json:"metadata"`
	Store              *bool             `json:"store"`
	PreviousResponseID string            `json:"previous_response_id"`
	Background         bool              `json:"background"`
	Truncation         string            `json:"truncation"`
	LanguagePreference string            `json:"language_preference"`
}

// agentItem is an input item of any type; strict decodes it by its type.
type agentItem struct {
	Type             string          `json:"type"`
	ID               string          `json:"id,omitempty"`
	Role             string          `json:"role,omitempty"`
	Content          json.RawMessage `json:"content,omitempty"`
	CallID           string          `json:"call_id,omitempty"`
	Name             string          `json:"name,omitempty"`
	Arguments        *string         `json:"arguments,omitempty"`
	Output           *string         `json:"output,omitempty"`
	ThoughtSignature string          `json:"thought_signature,omitempty"`
	Status           string          `json:"status,omitempty"`
}

// agentFields are the fields each input item and tool type may have.
var agentFields = map[string]map[string]bool{
	"message":              {"type": true, "role": true, "content": true},
	"function_call":        {"type": true, "id": true, "call_id": true, "name": true, "arguments": true, "thought_signature": true, "status": true},
	"function_call_output": {"type": true, "call_id": true, "name": true, "output": true, "thought_signature": true},
	"input_text":           {"type": true, "text": true},
	"input_image":          {"type": true, "image_url": true},
	"web_search": {"type": true, "filters": true, "search_context_size": true, "max_results": true, "max_tokens": true,
		"max_tokens_per_page": true, "user_location": true},
	"fetch_url": {"type": true, "max_urls": true},
	"function":  {"type": true, "name": true, "description": true, "parameters": true, "strict": true},
}

// reservedTools are built-in tool names a function may not take.
var reservedTools = map[string]bool{"web_search": true, "search_web": true, "fetch_url": true, "finance_search": true,
	"people_search": true, "search_people": true, "sandbox": true}

// unknownField is the Agent API's refusal of a field it does not know.
type unknownField string

func (f unknownField) Error() string {
	return fmt.Sprintf("invalid request body: json: unknown field %q", string(f))
}

// strict decodes raw into v, refusing unknown fields (also those of
// nested structs).
func strict(raw []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	err := d.Decode(v)
	if name, ok := strings.CutPrefix(fmt.Sprint(err), "json: unknown field "); ok {
		return unknownField(strings.Trim(name, `"`))
	}
	return err
}

// typed checks that the object raw, of the given type, has only the
// fields that type may have, and returns its type.
func typed(raw json.RawMessage, what string) (string, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return "", fmt.Errorf("%s must be objects", what)
	}
	var typ string
	_ = json.Unmarshal(fields["type"], &typ)
	allowed, ok := agentFields[typ]
	if !ok {
		return "", fmt.Errorf("unknown %s type %q", what, typ)
	}
	for name := range fields {
		if !allowed[name] {
			return "", unknownField(name)
		}
	}
	return typ, nil
}

func (responsesFormat) parse(body []byte, c *call) error {
	var r agentRequest
	if err := strict(body, &r); err != nil {
		return err
	}
	if r.Model == "" && r.Preset == "" && len(r.Models) == 0 {
		return errors.New("one of model, models or preset is required")
	}
	a := &agentCall{preset: r.Preset, search: r.Preset != "", fetch: r.Preset != "", maxToolCalls: -1,
		instructions: r.Instructions, tools: r.Tools, maxOutput: r.MaxOutputTokens}
	c.agent, c.model, c.stream = a, r.Model, r.Stream
	if c.model == "" {
		c.model = r.Preset
	}
	if r.MaxOutputTokens != nil {
		c.maxTokens = *r.MaxOutputTokens
	}
	if r.MaxToolCalls != nil {
		a.maxToolCalls = *r.MaxToolCalls
	}
	var choice string
	a.noTools = json.Unmarshal(r.ToolChoice, &choice) == nil && choice == "none"
	for _, raw := range r.Tools {
		typ, err := typed(raw, "tool")
		if err != nil {
			return err
		}
		switch typ {
		case "web_search":
			a.search = true
		case "fetch_url":
			a.fetch = true
		case "function":
			var f struct {
				Name string `json:"name"`
			}
			_ = json.Unmarshal(raw, &f)
			if reservedTools[f.Name] {
				return fmt.Errorf("function name %q is reserved for a built-in tool", f.Name)
			}
			if c.tool == "" {
				c.tool = f.Name
			}
		}
	}
	texts, err := agentTexts(r.Input, c)
	if err != nil {
		return err
	}
	if r.Instructions != nil && *r.Instructions != "" {
		texts = append([]string{*r.Instructions}, texts...)
	}
	c.promptTokens = countPrompt(texts)
	return nil
}

// agentTexts returns the text of each input item (a string input is one
// user message) and notes the last user message's.
func agentTexts(input json.RawMessage, c *call) ([]string, error) {
	var s string
	if json.Unmarshal(input, &s) == nil {
		c.lastUser = s
		return []string{s}, nil
	}
	var raws []json.RawMessage
	if json.Unmarshal(input, &raws) != nil || len(raws) == 0 {
		return nil, errors.New("input must be a string or a non-empty array of items")
	}
	texts := make([]string, 0, len(raws))
	for _, raw := range raws {
		typ, err := typed(raw, "input item")
		if err != nil {
			return nil, err
		}
		var it agentItem
		_ = json.Unmarshal(raw, &it)
		switch typ {
		case "message":
			text, err := agentContent(it.Content)
			if err != nil {
				return nil, err
			}
			switch it.Role {
			case "user":
				c.lastUser = text
			case "assistant", "system", "developer":
			default:
				return nil, fmt.Errorf("unknown role %q", it.Role)
			}
			texts = append(texts, text)
		case "function_call":
			if it.CallID == "" || it.Name == "" || it.Arguments == nil {
				return nil, errors.New("function_call items need call_id, name and arguments")
			}
			texts = append(texts, "")
		case "function_call_output":
			if it.CallID == "" || it.Output == nil {
				return nil, errors.New("function_call_output items need call_id and output")
			}
			texts = append(texts, *it.Output)
		}
	}
	return texts, nil
}

// agentContent is the text of a message's content: a string, or its
// input_text parts.
func agentContent(raw json.RawMessage) (string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []json.RawMessage
	if json.Unmarshal(raw, &parts) != nil {
		return "", errors.New("content must be a string or an array of parts")
	}
	var texts []string
	for _, p := range parts {
		typ, err := typed(p, "content part")
		if err != nil {
			return "", err
		}
		if typ == "input_text" {
			var t struct {
				Text string `json:"text"`
			}
			_ = json.Unmarshal(p, &t)
			texts = append(texts, t.Text)
		}
	}
	return strings.Join(texts, " "), nil
}

// toolRuns are the searches and fetches the answer runs.
func (a *agentCall) toolRuns(p *plan) (searches, fetches int) {
	if a.noTools {
		return 0, 0
	}
	if a.search {
		searches = 1
		if p.webSearch {
			searches = p.searches
		}
	}
	if a.fetch {
		fetches = p.fetches
	}
	if a.maxToolCalls >= 0 {
		searches = min(searches, a.maxToolCalls)
		fetches = min(fetches, a.maxToolCalls-searches)
	}
	return searches, fetches
}

func (responsesFormat) errorBody(status int, c *call, msg string) []byte {
	typ, text := "internal_error", "Internal server error"
	switch status {
	case 400:
		typ, text = "invalid_request", "Invalid value for 'input': fake error requested."
	case 401:
		typ, text = "unauthorized", "Invalid API key provided: sk-fake************************1234"
	case 403:
		typ, text = "forbidden", "This API key may not use the Agent API."
	case 404:
		typ, text = "not_found", fmt.Sprintf("model %q not found", c.model)
	case 429:
		typ, text = "request_rate_limit_exceeded", "Rate limit exceeded: too many requests. Please retry after a short wait."
	default:
		if status < 500 {
			typ, text = "invalid_request", http.StatusText(status)
		}
	}
	if msg != "" {
		text = msg
	}
	e := map[string]any{"message": text, "type": typ, "code": status}
	if m := unknownFieldRE.FindStringSubmatch(msg); m != nil {
		e["param"] = m[1]
	}
	return mustJSON(map[string]any{"error": e})
}

var unknownFieldRE = regexp.MustCompile(`json: unknown field "([^"]+)"`)

// Perplexity's prices of perplexity/sonar on the Agent API, in USD, for the
// fake's cost breakdown: per token, and per tool invocation.
const (
	sonarInput       = 0.25 / 1e6
	sonarCachedInput = 0.0625 / 1e6
	sonarOutput      = 2.5 / 1e6
	searchWebFee     = 0.005
	fetchURLFee      = 0.0005
)

func usd(v float64) float64 { return math.Round(v*1e8) / 1e8 }

// agentUsage is the usage of an answer that ran searches and fetches.
func agentUsage(c *call, p *plan, searches, fetches int) map[string]any {
	out := p.completionTokens() + p.reasoning
	tools, toolCosts := map[string]any{}, map[string]float64{}
	if searches > 0 {
		toolCosts["search_web"] = usd(float64(searches) * searchWebFee)
		tools["search_web"] = map[string]any{"invocation": searches, "cost_usd": toolCosts["search_web"]}
	}
	if fetches > 0 {
		toolCosts["fetch_url"] = usd(float64(fetches) * fetchURLFee)
		tools["fetch_url"] = map[string]any{"invocation": fetches, "cost_usd": toolCosts["fetch_url"]}
	}
	toolCost := 0.0
	for _, v := range toolCosts {
		toolCost += v
	}
	in, cached := float64(c.promptTokens-p.cached)*sonarInput, float64(p.cached)*sonarCachedInput
	cost := map[string]any{"currency": "USD", "input_cost": usd(in), "cache_read_cost": usd(cached), "cache_creation_cost": 0,
		"output_cost": usd(float64(out) * sonarOutput), "tool_calls_cost": usd(toolCost),
		"total_cost": usd(in + cached + float64(out)*sonarOutput + toolCost)}
	if len(toolCosts) > 0 {
		cost["tool_calls_cost_details"] = toolCosts
	}
	u := map[string]any{
		"input_tokens": c.promptTokens, "output_tokens": out, "total_tokens": c.promptTokens + out,
		"input_tokens_details":  map[string]int{"cache_creation_input_tokens": 0, "cache_read_input_tokens": p.cached, "cached_tokens": p.cached},
		"output_tokens_details": map[string]int{"reasoning_tokens": p.reasoning},
		"cost":                  cost,
	}
	if len(tools) > 0 {
		u["tool_calls_details"] = tools
	}
	return u
}

// agentSearch is the k-th search's search_results item; its results are
// numbered on from first.
func agentSearch(c *call, k, first int) map[string]any {
	urls := perplexityCitations
	if k > 0 {
		urls = []string{fmt.Sprintf("https://example.com/search-%d/a", k+1), fmt.Sprintf("https://example.com/search-%d/b", k+1)}
	}
	results := make([]any, len(urls))
	for i, u := range urls {
		results[i] = map[string]any{"id": first + i, "url": u, "title": fmt.Sprintf("Fake result %d", first+i),
			"snippet": "A fake search result about " + c.lastUser, "date": "2026-09-25", "last_updated": "2026-09-25", "source": "web"}
	}
	return map[string]any{"type": "search_results", "queries": []string{c.lastUser}, "results": results}
}

// agentFetch is the k-th fetch's fetch_url_results item.
func agentFetch(k int) map[string]any {
	u := fmt.Sprintf("https://example.com/page-%d", k+1)
	return map[string]any{"type": "fetch_url_results",
		"contents": []any{map[string]any{"url": u, "title": fmt.Sprintf("Fake page %d", k+1), "snippet": "The fake page's text."}}}
}

// agentToolItems are the search and fetch items of an answer.
func agentToolItems(c *call, searches, fetches int) []any {
	var items []any
	for k := range searches {
		items = append(items, agentSearch(c, k, 2*k+1))
	}
	for k := range fetches {
		items = append(items, agentFetch(k))
	}
	return items
}

func agentMessage(id, text string) map[string]any {
	return map[string]any{"type": "message", "id": "msg_fake" + id, "status": "completed", "role": "assistant",
		"content": []any{map[string]any{"type": "output_text", "text": text, "annotations": []any{}}}}
}

func agentFunctionCall(id, name string) map[string]any {
	return map[string]any{"type": "function_call", "id": "fc_fake" + id, "call_id": "call_fake" + id, "name": name,
		"arguments": strings.Join(toolArgFragments, ""), "status": "completed"}
}

// agentResponse is the Response object, echoing the request's settings as
// the API does.
func agentResponse(c *call, p *plan, id string, created int64, status string, output []any, usage any) map[string]any {
	a := c.agent
	model := c.model
	if a.preset != "" && model == a.preset && status != "in_progress" {
		model = "perplexity/sonar" // the model the preset ran
	}
	var incomplete any
	if status == "incomplete" {
		incomplete = map[string]string{"reason": "max_output_tokens"}
	}
	var completed any
	if status != "in_progress" {
		completed = created
	}
	tools := a.tools
	if tools == nil {
		tools = []json.RawMessage{}
	}
	if output == nil {
		output = []any{}
	}
	return map[string]any{
		"id": "resp_fake" + id, "object": "response", "created_at": created, "completed_at": completed, "status": status,
		"background": false, "error": nil, "incomplete_details": incomplete, "instructions": a.instructions,
		"max_output_tokens": a.maxOutput, "max_tool_calls": nil, "metadata": map[string]string{}, "model": model,
		"output": output, "parallel_tool_calls": true, "frequency_penalty": 0, "presence_penalty": 0,
		"previous_response_id": nil, "prompt_cache_key": nil, "reasoning": nil, "safety_identifier": nil,
		"service_tier": "default", "store": false, "temperature": 1, "top_p": 1, "top_logprobs": 0,
		"text": map[string]any{"format": map[string]string{"type": "text"}}, "tool_choice": "auto", "tools": tools,
		"truncation": "", "usage": usage, "user": nil,
	}
}

func agentStatus(p *plan) string {
	if p.capped {
		return "incomplete"
	}
	return "completed"
}

func (responsesFormat) complete(w http.ResponseWriter, c *call, p *plan, id string) {
	searches, fetches := c.agent.toolRuns(p)
	output := agentToolItems(c, searches, fetches)
	if p.tool {
		output = append(output, agentFunctionCall(id, c.tool))
	} else {
		output = append(output, agentMessage(id, strings.Join(p.words, " ")))
	}
	var usage any
	if !p.noUsage {
		usage = agentUsage(c, p, searches, fetches)
	}
	writeJSON(w, http.StatusOK, mustJSON(agentResponse(c, p, id, time.Now().Unix(), agentStatus(p), output, usage)))
}

type agentStreamer struct {
	w                 *sse.Writer
	c                 *call
	p                 *plan
	id                string
	created           int64
	seq               int
	searches, fetches int
	output            []any // the items done
	text              []string
}

func (responsesFormat) streamer(w *sse.Writer, c *call, p *plan, id string) streamer {
	s := &agentStreamer{w: w, c: c, p: p, id: id, created: time.Now().Unix()}
	s.searches, s.fetches = c.agent.toolRuns(p)
	return s
}

// event writes one data-only event with the next sequence number.
func (s *agentStreamer) event(typ string, fields map[string]any) error {
	fields["type"], fields["sequence_number"] = typ, s.seq
	s.seq++
	return s.w.Data(mustJSON(fields))
}

func (s *agentStreamer) start() error {
	for _, typ := range []string{"response.created", "response.in_progress"} {
		if err := s.event(typ, map[string]any{"response": agentResponse(s.c, s.p, s.id, s.created, "in_progress", nil, nil)}); err != nil {
			return err
		}
	}
	for k := range s.searches {
		if err := s.search(k); err != nil {
			return err
		}
	}
	for k := range s.fetches {
		if err := s.fetch(k); err != nil {
			return err
		}
	}
	if s.p.tool {
		return nil
	}
	msg := agentMessage(s.id, "")
	msg["content"] = nil
	return s.event("response.output_item.added", map[string]any{"item": msg, "output_index": len(s.output)})
}

// search streams the k-th search as the API does: its search_web call
// (added, never done), the queries and results events, then the
// search_results item (done) at the same output index.
func (s *agentStreamer) search(k int) error {
	index, callID := len(s.output), fmt.Sprintf("call_search%s_%d", s.id, k)
	item := agentSearch(s.c, k, 2*k+1)
	queries, _ := json.Marshal(map[string]any{"queries": item["queries"]})
	fc := map[string]any{"type": "function_call", "id": fmt.Sprintf("fc_search%s_%d", s.id, k), "call_id": callID,
		"name": "search_web", "arguments": string(queries), "status": "completed"}
	events := []struct {
		typ    string
		fields map[string]any
	}{
		{"response.output_item.added", map[string]any{"item": fc, "output_index": index}},
		{"response.reasoning.search_queries", map[string]any{"call_id": callID, "queries": item["queries"], "thought": "Searching the web..."}},
		{"response.reasoning.search_results", map[string]any{"call_id": callID, "results": item["results"], "thought": "Found 2 results"}},
		{"response.output_item.done", map[string]any{"item": item, "output_index": index}},
	}
	for _, ev := range events {
		if err := s.event(ev.typ, ev.fields); err != nil {
			return err
		}
	}
	s.output = append(s.output, item)
	return nil
}

// fetch streams the k-th page fetch like a search.
func (s *agentStreamer) fetch(k int) error {
	index, callID := len(s.output), fmt.Sprintf("call_fetch%s_%d", s.id, k)
	item := agentFetch(k)
	contents := item["contents"].([]any)
	url := contents[0].(map[string]any)["url"]
	args, _ := json.Marshal(map[string]any{"urls": []any{url}})
	fc := map[string]any{"type": "function_call", "id": fmt.Sprintf("fc_fetch%s_%d", s.id, k), "call_id": callID,
		"name": "fetch_url", "arguments": string(args), "status": "completed"}
	events := []struct {
		typ    string
		fields map[string]any
	}{
		{"response.output_item.added", map[string]any{"item": fc, "output_index": index}},
		{"response.reasoning.fetch_url_queries", map[string]any{"call_id": callID, "urls": []any{url}, "thought": "Reading the page..."}},
		{"response.reasoning.fetch_url_results", map[string]any{"call_id": callID, "contents": contents, "thought": "Read 1 page"}},
		{"response.output_item.done", map[string]any{"item": item, "output_index": index}},
	}
	for _, ev := range events {
		if err := s.event(ev.typ, ev.fields); err != nil {
			return err
		}
	}
	s.output = append(s.output, item)
	return nil
}

func (s *agentStreamer) word(i int, text string) error {
	d := delta(i, text)
	s.text = append(s.text, d)
	return s.event("response.output_text.delta", map[string]any{"item_id": "msg_fake" + s.id, "output_index": len(s.output),
		"content_index": 0, "delta": d})
}

func (s *agentStreamer) toolCall(name string) error {
	fc := agentFunctionCall(s.id, name)
	for _, typ := range []string{"response.output_item.added", "response.output_item.done"} {
		if err := s.event(typ, map[string]any{"item": fc, "output_index": len(s.output)}); err != nil {
			return err
		}
	}
	s.output = append(s.output, fc)
	return nil
}

func (s *agentStreamer) finish() error {
	if !s.p.tool {
		text, index := strings.Join(s.text, ""), len(s.output)
		if err := s.event("response.output_text.done", map[string]any{"item_id": "msg_fake" + s.id, "output_index": index,
			"content_index": 0, "text": text}); err != nil {
			return err
		}
		msg := agentMessage(s.id, text)
		if err := s.event("response.output_item.done", map[string]any{"item": msg, "output_index": index}); err != nil {
			return err
		}
		s.output = append(s.output, msg)
	}
	var usage any
	if !s.p.noUsage {
		usage = agentUsage(s.c, s.p, s.searches, s.fetches)
	}
	status := agentStatus(s.p)
	return s.event("response."+status, map[string]any{"response": agentResponse(s.c, s.p, s.id, s.created, status, s.output, usage)})
}

func (s *agentStreamer) midError() error {
	return s.event("response.failed", map[string]any{"error": map[string]any{"message": "The server had an error while processing your request.",
		"type": "internal_error", "code": http.StatusInternalServerError}})
}
