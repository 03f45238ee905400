// Package openai is the adapter for the OpenAI Chat Completions wire format.
// OpenAI, DeepSeek, Perplexity and xAI are configurations of this one
// adapter: the request goes out almost as the client sent it (Extra fields
// included) and the answer comes back in the same shape.
package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers/sse"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
)

// Adapter talks to one OpenAI-compatible provider.
type Adapter struct {
	client     *upstream.Client
	name       string
	path       string // after the base URL of the endpoint each attempt goes to
	header     http.Header
	usage      upstream.UsageConvention
	reasoning  bool              // Config.SendReasoningBack
	tokenizers map[string]string // Config.Tokenizers
}

// New returns the adapter for cfg; it appends "/chat/completions" to the base
// URL and sends the key as a bearer token.
func New(cfg upstream.Config) (*Adapter, error) {
	c, err := upstream.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	return On(c), nil
}

// On returns the adapter for the provider c calls, sharing c (its
// endpoints, breakers and connections): how the Responses adapter speaks
// Chat Completions to endpoints that have no Responses API.
func On(c *upstream.Client) *Adapter {
	cfg := c.Config()
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "beaver-gateway")
	return &Adapter{client: c, name: cfg.Name, path: "/chat/completions", header: h, usage: cfg.Usage, reasoning: cfg.SendReasoningBack, tokenizers: cfg.Tokenizers}
}

// Client is the adapter's upstream client (its endpoints' health).
func (a *Adapter) Client() *upstream.Client { return a.client }

// Complete sends a non-streaming request.
func (a *Adapter) Complete(ctx context.Context, req *chat.Request) (*chat.Response, error) {
	ur, err := a.Request(req, false)
	if err != nil {
		return nil, err
	}
	data, err := a.client.Do(ctx, ur)
	if err != nil {
		return nil, err
	}
	return a.Decode(data)
}

// Request is the upstream call of req, streamed or not.
func (a *Adapter) Request(req *chat.Request, stream bool) (upstream.Request, error) {
	body, err := a.encode(req, stream)
	if err != nil {
		return upstream.Request{}, err
	}
	accept := "application/json"
	if stream {
		accept = "text/event-stream"
	}
	return a.request(body, accept), nil
}

// Decode reads a non-streaming answer.
func (a *Adapter) Decode(data []byte) (*chat.Response, error) {
	var wr wireResponse
	if err := json.Unmarshal(data, &wr); err != nil {
		return nil, upstream.BadResponse("response", err)
	}
	if wr.Error != nil { // some compatible providers answer errors with 200
		return nil, wr.Error.toError(http.StatusBadGateway)
	}
	resp := &chat.Response{
		ID: wr.ID, Object: chat.ObjectCompletion, Created: wr.Created, Model: wr.Model,
		Choices: wr.Choices, Usage: wr.Usage.toChat(a.usage), SystemFingerprint: wr.SystemFingerprint, Extras: wr.wireExtras.toChat(),
	}
	if resp.Choices == nil {
		resp.Choices = []chat.Choice{}
	}
	for i := range resp.Choices {
		c := &resp.Choices[i]
		c.FinishReason = finishReason(c.FinishReason)
		if c.Message.Role == "" {
			c.Message.Role = chat.RoleAssistant
		}
	}
	return resp, nil
}

// finishReason keeps OpenAI's finish_reason values and maps the others that
// compatible providers send into that enum, which strict clients enforce:
// DeepSeek's insufficient_system_resource (and an "error" some gateways
// send) cut the answer short, so they are length; a missing or unknown
// reason is stop.
func finishReason(r string) string {
	switch r {
	case chat.FinishStop, chat.FinishLength, chat.FinishToolCalls, chat.FinishContentFilter, "function_call":
		return r
	case "insufficient_system_resource", "error":
		return chat.FinishLength
	}
	return chat.FinishStop
}

// Stream starts a streaming request with stream_options.include_usage set, so
// that the upstream reports usage in its last chunk.
func (a *Adapter) Stream(ctx context.Context, req *chat.Request) (upstream.Stream, error) {
	ur, err := a.Request(req, true)
	if err != nil {
		return nil, err
	}
	b, err := a.client.Open(ctx, ur)
	if err != nil {
		return nil, err
	}
	return upstream.NewEventStream(b, a.Translator()), nil
}

// Translator reads one stream's events (of a Request made with stream set).
func (a *Adapter) Translator() upstream.Translator { return &translator{conv: a.usage} }

func (a *Adapter) request(body []byte, accept string) upstream.Request {
	h := a.header.Clone()
	h.Set("Accept", accept)
	return upstream.Request{Path: a.path, Key: upstream.BearerKey, Header: h, Body: body, ParseError: ParseError}
}

var includeUsage = json.RawMessage(`{"include_usage":true}`)

// encode renders the upstream body: the caller's request with stream set by
// the method, reasoning_content removed from messages (DeepSeek rejects it on
// input) and "developer" turned into "system" for providers other than
// OpenAI. max_tokens keeps the caller's field name; when the caller sent
// neither (the API set a cap), OpenAI gets max_completion_tokens, which all
// its chat models accept and its reasoning models require, and the others
// get max_tokens.
func (a *Adapter) encode(req *chat.Request, stream bool) ([]byte, error) {
	if names := slices.Sorted(maps.Keys(req.ProviderOptions)); len(names) > 0 {
		// Options of Perplexity's Agent API, reaching the Chat Completions
		// API it replaced (PERPLEXITY_API_FORMAT=openai, or an endpoint
		// without the Agent API), which would ignore them or bill them
		// per request (web_search_options' search_context_size).
		return nil, &chat.InvalidError{Param: names[0],
			Message: "field " + names[0] + " is not supported by this provider's Chat Completions API (only by its Agent API)"}
	}
	r := *req
	r.Stream = stream
	if r.MaxTokensParam == "" && r.MaxTokens != nil && a.name == "openai" {
		r.MaxTokensParam = "max_completion_tokens"
	}
	r.Extra = maps.Clone(req.Extra)
	if stream {
		if r.Extra == nil {
			r.Extra = make(map[string]json.RawMessage, 1)
		}
		r.Extra["stream_options"] = includeUsage
	} else {
		delete(r.Extra, "stream_options")
	}
	r.Messages = a.outgoing(req.Messages)
	return json.Marshal(r)
}

func (a *Adapter) outgoing(msgs []chat.Message) []chat.Message {
	out := msgs
	copied := false
	for i, m := range msgs {
		mapRole := m.Role == chat.RoleDeveloper && a.name != "openai"
		strip := m.ReasoningContent != "" && !a.reasoning
		extras := slices.ContainsFunc(m.ToolCalls, func(tc chat.ToolCall) bool { return tc.ExtraContent != nil })
		if !strip && !mapRole && !extras {
			continue
		}
		if !copied {
			out = append([]chat.Message(nil), msgs...)
			copied = true
		}
		if strip {
			out[i].ReasoningContent = ""
		}
		if extras { // another provider's (Gemini's signatures): not this one's business
			out[i].ToolCalls = slices.Clone(m.ToolCalls)
			for j := range out[i].ToolCalls {
				out[i].ToolCalls[j].ExtraContent = nil
			}
		}
		if mapRole {
			out[i].Role = chat.RoleSystem
		}
	}
	return out
}

type wireResponse struct {
	ID                string        `json:"id"`
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	Choices           []chat.Choice `json:"choices"`
	Usage             *wireUsage    `json:"usage"`
	SystemFingerprint string        `json:"system_fingerprint"`
	Error             *wireError    `json:"error"`
	wireExtras
}

// wireExtras are Perplexity's additions to OpenAI's objects.
type wireExtras struct {
	Citations     json.RawMessage `json:"citations"`
	SearchResults json.RawMessage `json:"search_results"`
}

func (w wireExtras) toChat() chat.Extras {
	return chat.Extras{Citations: upstream.Present(w.Citations), SearchResults: upstream.Present(w.SearchResults)}
}

type wireChunk struct {
	ID      string             `json:"id"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []chat.ChunkChoice `json:"choices"`
	Usage   *wireUsage         `json:"usage"`
	Error   *wireError         `json:"error"`
	wireExtras
}

// wireUsage is OpenAI's usage plus DeepSeek's prompt_cache_hit_tokens.
type wireUsage struct {
	PromptTokens            int                           `json:"prompt_tokens"`
	CompletionTokens        int                           `json:"completion_tokens"`
	TotalTokens             int                           `json:"total_tokens"`
	PromptTokensDetails     *chat.PromptTokensDetails     `json:"prompt_tokens_details"`
	CompletionTokensDetails *chat.CompletionTokensDetails `json:"completion_tokens_details"`
	PromptCacheHitTokens    *int                          `json:"prompt_cache_hit_tokens"`
}

// toChat returns u in OpenAI's convention, whatever the provider's (conv).
func (u *wireUsage) toChat(conv upstream.UsageConvention) *chat.Usage {
	if u == nil {
		return nil
	}
	out := &chat.Usage{
		PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens,
		PromptTokensDetails: u.PromptTokensDetails, CompletionTokensDetails: u.CompletionTokensDetails,
	}
	if out.PromptTokensDetails == nil && u.PromptCacheHitTokens != nil {
		out.PromptTokensDetails = &chat.PromptTokensDetails{CachedTokens: *u.PromptCacheHitTokens}
	}
	if d := out.CompletionTokensDetails; conv.ReasoningOutsideCompletion && d != nil && d.ReasoningTokens > 0 {
		out.CompletionTokens += d.ReasoningTokens
		out.TotalTokens = out.PromptTokens + out.CompletionTokens
	}
	if out.TotalTokens == 0 {
		out.TotalTokens = out.PromptTokens + out.CompletionTokens
	}
	return out
}

// wireError is OpenAI's error object; code may be a string, a number or null.
type wireError struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"`
}

func (e *wireError) toError(status int) *upstream.Error {
	if status == 0 {
		status = upstream.StatusForType(e.Type)
		if s := upstream.StatusForType(codeString(e.Code)); s != http.StatusInternalServerError {
			status = s
		}
	}
	return &upstream.Error{Status: status, Message: e.Message}
}

func codeString(raw json.RawMessage) string {
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

// ParseError reads OpenAI's {"error":{"message",...}} body, and the looser
// shapes some compatible providers use ({"error":"..."}, {"message":"..."}).
// The Responses API answers errors in the same envelope.
func ParseError(status int, header http.Header, body []byte) *upstream.Error {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  string          `json:"detail"`
	}
	if json.Unmarshal(body, &v) != nil {
		return nil
	}
	var we wireError
	var s string
	msg := ""
	switch {
	case json.Unmarshal(v.Error, &we) == nil && we.Message != "":
		msg = we.Message
	case json.Unmarshal(v.Error, &s) == nil && s != "":
		msg = s
	case v.Message != "":
		msg = v.Message
	case v.Detail != "":
		msg = v.Detail
	default:
		return nil
	}
	return &upstream.Error{Status: status, Message: msg, RetryAfter: upstream.RetryAfterHeader(header)}
}

// translator passes OpenAI chunks through. Usage is delivered once, on a
// chunk of its own with no choices, just before the end: providers that
// attach usage to content chunks (some do, on every chunk) get it moved.
type translator struct {
	conv      upstream.UsageConvention
	usage     *chat.Usage // latest usage seen, in OpenAI's convention; never handed out, only copies
	last      chat.Chunk  // id, created, model of the last chunk
	usageSent bool
	open      map[int]bool // choices seen, by index: true until their finish_reason
	extras    chat.Extras  // as last passed on: Perplexity repeats them on every chunk
	out       [1]*chat.Chunk
	wc        wireChunk // the event being read
}

var done = []byte("[DONE]")

func (t *translator) Event(ev sse.Event) ([]*chat.Chunk, bool, error) {
	data := bytes.TrimSpace(ev.Data)
	if bytes.Equal(data, done) {
		return t.finalUsage(), true, nil
	}
	t.wc = wireChunk{} // kept in the translator: a local one would escape (json.Unmarshal) and cost an allocation a chunk
	wc := &t.wc
	if err := decodeChunk(data, wc, &t.last); err != nil {
		return nil, false, upstream.BadResponse("stream event", err)
	}
	if wc.Error != nil {
		return nil, false, wc.Error.toError(0)
	}
	if t.open == nil {
		t.open = map[int]bool{}
	}
	for i := range wc.Choices {
		switch f := wc.Choices[i].FinishReason; {
		case f == nil:
			t.open[wc.Choices[i].Index] = true
		case *f == "": // some compatible providers send "" for "not yet"
			wc.Choices[i].FinishReason = nil
			t.open[wc.Choices[i].Index] = true
		default:
			wc.Choices[i].FinishReason = upstream.Ptr(finishReason(*f))
			t.open[wc.Choices[i].Index] = false
		}
	}
	c := &chat.Chunk{ID: wc.ID, Object: chat.ObjectChunk, Created: wc.Created, Model: wc.Model, Choices: wc.Choices}
	t.last = chat.Chunk{ID: c.ID, Object: c.Object, Created: c.Created, Model: c.Model}
	u := wc.Usage.toChat(t.conv)
	switch {
	case len(c.Choices) > 0:
		if u != nil {
			t.usage = u
		}
		c.Extras = t.changed(wc.wireExtras.toChat())
		t.out[0] = c
		return t.out[:1], false, nil // read to its end before the next event (upstream.EventStream)
	case u != nil && !t.usageSent:
		t.usage = u.Clone()
		c.Usage, t.usageSent = u, true
		c.Extras = t.changed(wc.wireExtras.toChat())
		return []*chat.Chunk{c}, false, nil
	}
	return nil, false, nil // nothing to deliver
}

// changed returns the extras of x that differ from what was passed on
// already, and remembers them.
func (t *translator) changed(x chat.Extras) chat.Extras {
	var out chat.Extras
	if x.Citations != nil && !bytes.Equal(x.Citations, t.extras.Citations) {
		out.Citations, t.extras.Citations = x.Citations, x.Citations
	}
	if x.SearchResults != nil && !bytes.Equal(x.SearchResults, t.extras.SearchResults) {
		out.SearchResults, t.extras.SearchResults = x.SearchResults, x.SearchResults
	}
	return out
}

// finalUsage is the usage chunk of a stream's end, when its usage came on
// content chunks and was not delivered on a chunk of its own.
func (t *translator) finalUsage() []*chat.Chunk {
	if t.usage == nil || t.usageSent {
		return nil
	}
	c := t.last
	c.Choices, c.Usage = nil, t.Usage()
	t.usageSent = true
	return []*chat.Chunk{&c}
}

// End takes a body that ends without "data: [DONE]" as complete when every
// choice finished and usage came (Perplexity's streams end so), and as cut
// otherwise.
func (t *translator) End() ([]*chat.Chunk, error) {
	if t.usage == nil || len(t.open) == 0 {
		return nil, upstream.Cut()
	}
	for _, open := range t.open {
		if open {
			return nil, upstream.Cut()
		}
	}
	return t.finalUsage(), nil
}

// Usage is the latest usage seen. OpenAI itself reports it only in the
// include_usage chunk at the end, so a cut stream has none; providers that
// attach usage to content chunks have their latest counts.
func (t *translator) Usage() *chat.Usage { return t.usage.Clone() }
