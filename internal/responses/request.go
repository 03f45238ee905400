package responses

import (
	"bytes"
	"encoding/json"
	"regexp"
	"unicode/utf8"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/reasoning"
	"github.com/beaver-gateway/beaver/internal/strictjson"
)

// Request is a parsed Responses API request: the chat request the gateway
// runs, and the settings the Response object echoes back.
type Request struct {
	// Chat is the request as /v1/chat/completions would have received it:
	// instructions and input become messages, max_output_tokens max_tokens,
	// text.format response_format. Admission bounds, holds and charges it
	// exactly like a chat request.
	Chat *chat.Request

	Instructions      *string
	MaxOutputTokens   *int
	MaxToolCalls      *int
	Temperature       *float64
	TopP              *float64
	ParallelToolCalls bool
	ReasoningEffort   *string
	ReasoningSummary  *string
	ServiceTier       *string
	TextFormat        json.RawMessage // the caller's text.format; {"type":"text"} by default
	Verbosity         *string
	ToolChoice        json.RawMessage // the caller's tool_choice; "auto" by default
	Tools             []Tool
	User              *string
	Metadata          map[string]string

	// Store is the caller's store, nil when it was left out (the server's
	// default applies: see the API).
	Store *bool
	// PreviousResponseID names the stored response this turn continues;
	// its chain's items come before Input in Chat (see ParseRequest).
	PreviousResponseID string
	// Background is the caller's background: the API runs the request in
	// a durable workflow and answers at once (see background.go).
	Background bool
	// Body and History are what the request was parsed from (the body as
	// sent; the stored chain's items when it names previous_response_id):
	// a background run parses them again (ParseRequestAfter).
	Body    json.RawMessage
	History []json.RawMessage
	// Input is this turn's own input items, as given (a string input is
	// one user message item): what a stored response keeps, so that its
	// chain can be rebuilt.
	Input []json.RawMessage
}

// Fields Beaver models itself; each is read below. A field sent as null is
// ignored, as on chat.
var knownFields = map[string]bool{
	"model": true, "input": true, "instructions": true, "tools": true, "tool_choice": true,
	"max_output_tokens": true, "max_tool_calls": true, "temperature": true, "top_p": true,
	"stream": true, "stream_options": true, "text": true, "metadata": true, "store": true,
	"user": true, "parallel_tool_calls": true, "reasoning": true, "include": true,
	"truncation": true, "background": true, "previous_response_id": true, "conversation": true,
	"service_tier": true, "safety_identifier": true, "prompt_cache_key": true,
}

// includeEncryptedReasoning is the one include value Beaver accepts.
const includeEncryptedReasoning = "reasoning.encrypted_content"

// notStored is why the fields of server-side state Beaver does not keep
// (conversations, item references) are refused.
const notStored = "Beaver does not store conversations or items: continue a stored response with previous_response_id, " +
	"or send the whole conversation in input (a response's output items can be sent back as input items)"

// refusedBecause explains the refusal of fields users often send.
var refusedBecause = map[string]string{
	"conversation": notStored,
	"prompt":       "stored prompt templates are not supported: send instructions and input",
	"top_logprobs": "logprobs are not returned on /v1/responses",
}

// invalid is a 400 naming the request field at fault.
var invalid = chat.Invalid

var isNull = strictjson.IsNull

func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{' && json.Valid(raw)
}

// ParseRequest decodes and validates a Responses API request body and
// translates it into the chat request the gateway runs. Errors are
// *chat.InvalidError, whose Param names the Responses field at fault; the
// API answers them with 400 invalid_request. Model may be empty (the API
// asks for it).
func ParseRequest(body []byte) (*Request, error) { return ParseRequestAfter(body, nil) }

// ParseRequestAfter is ParseRequest for a turn that continues a stored
// chain: history (the earlier turns' input and output items, oldest first)
// is read before the request's own input, as if the caller had sent it all.
func ParseRequestAfter(body []byte, history []json.RawMessage) (*Request, error) {
	fields, err := chat.DecodeFields(body)
	if err != nil {
		return nil, err
	}
	for name, raw := range fields {
		if isNull(raw) {
			delete(fields, name)
			continue
		}
		if why, ok := refusedBecause[name]; ok {
			return nil, invalid(name, "field %s is not supported: %s", name, why)
		}
		if !knownFields[name] {
			return nil, invalid(name, "unknown field %s: Beaver forwards only fields it can price (see the README on /v1/responses)", name)
		}
	}
	p := parser{fields: fields, history: history, r: &Request{Chat: &chat.Request{}, ParallelToolCalls: true,
		Body: body, History: history}}
	p.read()
	if p.err != nil {
		return nil, p.err
	}
	if err := p.r.Chat.Validate(); err != nil {
		return nil, chatError(err)
	}
	return p.r, nil
}

// parser reads one request's fields; the first error sticks.
type parser struct {
	fields  map[string]json.RawMessage
	history []json.RawMessage // a stored chain's items, read before input
	r       *Request
	err     error
	// Reasoning items of input (input.go): the text not yet given to an
	// assistant message, and the thought signatures of the calls.
	thinking   string
	signatures reasoning.State
}

// field decodes fields[name] into dst, if present; want is the expected
// type for the error message.
func (p *parser) field(name, want string, dst any) bool {
	raw, ok := p.fields[name]
	if p.err != nil || !ok {
		return false
	}
	if json.Unmarshal(raw, dst) != nil {
		p.err = invalid(name, "%s must be %s", name, want)
		return false
	}
	return true
}

func (p *parser) fail(param, format string, args ...any) {
	if p.err == nil {
		p.err = invalid(param, format, args...)
	}
}

func (p *parser) read() {
	r, c := p.r, p.r.Chat
	p.field("model", "a string", &c.Model)
	p.field("stream", "a boolean", &c.Stream)
	var streamOptions map[string]json.RawMessage // include_obfuscation: Beaver never obfuscates
	p.field("stream_options", "an object", &streamOptions)
	p.field("instructions", "a string", &r.Instructions)
	if p.field("max_output_tokens", "an integer", &r.MaxOutputTokens) {
		if *r.MaxOutputTokens < 1 {
			p.fail("max_output_tokens", "max_output_tokens must be at least 1")
		}
		c.MaxTokens = r.MaxOutputTokens // the adapter names it for its provider
	}
	if p.field("max_tool_calls", "an integer", &r.MaxToolCalls) && *r.MaxToolCalls < 1 {
		p.fail("max_tool_calls", "max_tool_calls must be at least 1")
	}
	p.field("temperature", "a number", &r.Temperature)
	p.field("top_p", "a number", &r.TopP)
	c.Temperature, c.TopP = r.Temperature, r.TopP
	if p.field("user", "a string", &r.User) {
		c.User = *r.User
	}
	p.readState()
	p.readMetadata()
	p.readPassThrough()
	p.readText()
	p.readTools()
	p.readToolChoice()
	p.readInput()
}

// readState reads store and previous_response_id (the API stores and
// loads), and refuses what Beaver does not run.
func (p *parser) readState() {
	var store, background bool
	if p.field("store", "a boolean", &store) {
		p.r.Store = &store
	}
	if p.field("previous_response_id", "a string", &p.r.PreviousResponseID) && p.r.PreviousResponseID == "" {
		p.fail("previous_response_id", "previous_response_id must not be empty")
	}
	if p.field("background", "a boolean", &background) {
		p.r.Background = background // the API checks it against store and stream (background.go)
	}
	var truncation string
	if p.field("truncation", `"disabled" or "auto"`, &truncation) && truncation != "disabled" {
		p.fail("truncation", `truncation must be "disabled": Beaver does not drop input items to fit the context window`)
	}
	var include []string
	p.field("include", "an array of strings", &include)
	for _, v := range include {
		// Clients that keep no state on the server ask for encrypted
		// reasoning; Beaver's reasoning items always carry what their
		// next turn needs.
		if v != includeEncryptedReasoning {
			p.fail("include", "include %q is not supported: Beaver returns no additional output data (only %q is accepted)", v, includeEncryptedReasoning)
		}
	}
}

func (p *parser) readMetadata() {
	if !p.field("metadata", "an object of string values", &p.r.Metadata) {
		return
	}
	if len(p.r.Metadata) > 16 {
		p.fail("metadata", "metadata may have at most 16 keys")
	}
	for k, v := range p.r.Metadata {
		if utf8.RuneCountInString(k) > 64 || utf8.RuneCountInString(v) > 512 {
			p.fail("metadata", "metadata keys may have at most 64 characters and values at most 512")
		}
	}
}

// readPassThrough reads the fields forwarded untouched to OpenAI-format
// upstreams as chat's pass-through fields (ignored by the others): none can
// make a request cost more than its hold. metadata and store are not
// forwarded: they are Beaver's to answer.
func (p *parser) readPassThrough() {
	r, c := p.r, p.r.Chat
	extra := func(name string, v any) {
		b, _ := json.Marshal(v)
		if c.Extra == nil {
			c.Extra = map[string]json.RawMessage{}
		}
		c.Extra[name] = b
	}
	if p.field("service_tier", "a string", &r.ServiceTier) {
		if *r.ServiceTier != "auto" && *r.ServiceTier != "default" {
			p.fail("service_tier", `service_tier must be "auto" or "default" (other tiers are priced differently)`)
		}
		extra("service_tier", *r.ServiceTier)
	}
	for _, name := range []string{"safety_identifier", "prompt_cache_key"} {
		var s string
		if p.field(name, "a string", &s) {
			extra(name, s)
		}
	}
	var parallel bool
	if p.field("parallel_tool_calls", "a boolean", &parallel) {
		r.ParallelToolCalls = parallel
		if raw, ok := p.fields["tools"]; ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("[]")) {
			extra("parallel_tool_calls", parallel) // OpenAI refuses it without tools
		}
	}
	var reasoning struct {
		Effort          *string `json:"effort"`
		Summary         *string `json:"summary"`
		GenerateSummary *string `json:"generate_summary"`
	}
	if p.field("reasoning", "an object", &reasoning) {
		if reasoning.Effort != nil {
			switch *reasoning.Effort {
			case "none", "minimal", "low", "medium", "high", "xhigh":
			default:
				p.fail("reasoning.effort", "reasoning.effort must be none, minimal, low, medium, high or xhigh")
			}
			r.ReasoningEffort = reasoning.Effort
			extra("reasoning_effort", *reasoning.Effort)
		}
		// A summary is best effort on OpenAI too; Beaver's reasoning item
		// has the model's own reasoning text as its summary, when its
		// provider gives it, whatever summary asks for.
		r.ReasoningSummary = reasoning.Summary
		if r.ReasoningSummary == nil {
			r.ReasoningSummary = reasoning.GenerateSummary
		}
	}
}

var schemaNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// readText maps text.format onto chat's response_format and text.verbosity
// onto chat's verbosity.
func (p *parser) readText() {
	r, c := p.r, p.r.Chat
	r.TextFormat = json.RawMessage(`{"type":"text"}`)
	var text map[string]json.RawMessage
	if !p.field("text", "an object", &text) {
		return
	}
	for k, raw := range text {
		switch {
		case isNull(raw):
		case k == "verbosity":
			var v string
			if json.Unmarshal(raw, &v) != nil || (v != "low" && v != "medium" && v != "high") {
				p.fail("text.verbosity", "text.verbosity must be low, medium or high")
				return
			}
			r.Verbosity = &v
			if c.Extra == nil {
				c.Extra = map[string]json.RawMessage{}
			}
			c.Extra["verbosity"] = raw
		case k != "format":
			p.fail("text."+k, "unknown field text.%s", k)
			return
		}
	}
	raw, ok := text["format"]
	if !ok || isNull(raw) {
		return
	}
	var f struct {
		Type        string          `json:"type"`
		Name        string          `json:"name"`
		Schema      json.RawMessage `json:"schema"`
		Description *string         `json:"description"`
		Strict      *bool           `json:"strict"`
	}
	if json.Unmarshal(raw, &f) != nil {
		p.fail("text.format", "text.format must be an object")
		return
	}
	r.TextFormat = raw
	switch f.Type {
	case "text":
	case "json_object":
		c.ResponseFormat = json.RawMessage(`{"type":"json_object"}`)
	case "json_schema":
		if !schemaNameRE.MatchString(f.Name) {
			p.fail("text.format.name", "text.format.name must be 1 to 64 letters, digits, underscores or dashes")
			return
		}
		if !isObject(f.Schema) {
			p.fail("text.format.schema", "text.format.schema must be a JSON Schema object")
			return
		}
		type jsonSchema struct {
			Name        string          `json:"name"`
			Schema      json.RawMessage `json:"schema"`
			Description *string         `json:"description,omitempty"`
			Strict      *bool           `json:"strict,omitempty"`
		}
		c.ResponseFormat, _ = json.Marshal(struct {
			Type       string     `json:"type"`
			JSONSchema jsonSchema `json:"json_schema"`
		}{"json_schema", jsonSchema{f.Name, f.Schema, f.Description, f.Strict}})
	default:
		p.fail("text.format.type", "text.format.type must be text, json_object or json_schema")
	}
}

// readTools maps function tools onto chat tools; hosted tools (web search,
// file search, code interpreter, ...) are refused: Beaver runs none.
func (p *parser) readTools() {
	var tools []map[string]json.RawMessage
	if !p.field("tools", "an array of tools", &tools) {
		return
	}
	c := p.r.Chat
	for i, t := range tools {
		var typ string
		_ = json.Unmarshal(t["type"], &typ)
		if typ != "function" {
			p.fail("tools", "tools[%d].type %q is not supported: only function tools (Beaver runs no hosted tools)", i, typ)
			return
		}
		var tool struct {
			Name        string          `json:"name"`
			Description *string         `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
			Strict      *bool           `json:"strict"`
		}
		b, _ := json.Marshal(t)
		if json.Unmarshal(b, &tool) != nil {
			p.fail("tools", "tools[%d] must be {type: \"function\", name, description?, parameters, strict?}", i)
			return
		}
		if len(tool.Parameters) > 0 && !isNull(tool.Parameters) && !isObject(tool.Parameters) {
			p.fail("tools", "tools[%d].parameters must be a JSON Schema object", i)
			return
		}
		if isNull(tool.Parameters) {
			tool.Parameters = nil
		}
		def := chat.FunctionDef{Name: tool.Name, Parameters: tool.Parameters, Strict: tool.Strict}
		if tool.Description != nil {
			def.Description = *tool.Description
		}
		c.Tools = append(c.Tools, chat.Tool{Type: "function", Function: def})
		params := tool.Parameters
		if params == nil {
			params = json.RawMessage("null")
		}
		p.r.Tools = append(p.r.Tools, Tool{Type: "function", Name: tool.Name, Description: tool.Description,
			Parameters: params, Strict: tool.Strict})
	}
}

// readToolChoice maps tool_choice: "none", "auto", "required", or
// {"type":"function","name":...} (chat's {"type":"function","function":{"name":...}}).
func (p *parser) readToolChoice() {
	raw, ok := p.fields["tool_choice"]
	if !ok || p.err != nil {
		p.r.ToolChoice = json.RawMessage(`"auto"`)
		return
	}
	p.r.ToolChoice = raw
	var s string
	if json.Unmarshal(raw, &s) == nil {
		p.r.Chat.ToolChoice = raw // chat checks the value
		return
	}
	var obj struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if json.Unmarshal(raw, &obj) != nil || obj.Type != "function" || obj.Name == "" {
		p.fail("tool_choice", `tool_choice must be "none", "auto", "required" or {"type":"function","name":...} (Beaver runs no hosted tools)`)
		return
	}
	p.r.Chat.ToolChoice, _ = json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": obj.Name}})
}

// chatParams maps the chat field an error of chat.Request.Validate (or of a
// provider adapter) names to the Responses field it came from.
var chatParams = map[string]string{
	"messages":              "input",
	"max_tokens":            "max_output_tokens",
	"max_completion_tokens": "max_output_tokens",
	"response_format":       "text.format",
}

// Param is the Responses field that a chat error's param names.
func Param(chatParam string) string {
	if p, ok := chatParams[chatParam]; ok {
		return p
	}
	return chatParam
}

func chatError(err error) error {
	ie, ok := err.(*chat.InvalidError)
	if !ok {
		return invalid("", "%s", err.Error())
	}
	return invalid(Param(ie.Param), "%s", ie.Message)
}
