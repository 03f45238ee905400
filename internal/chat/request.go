package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/beaver-gateway/beaver/internal/strictjson"
)

// ParseRequest decodes and validates an OpenAI chat completions request body.
// Errors are *InvalidError with a message fit for the client. Model may be
// empty: the path form of the API supplies it.
func ParseRequest(body []byte) (*Request, error) {
	var r Request
	if err := r.UnmarshalJSON(body); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Top-level fields Request models itself; the admission bound counts each
// of them that can cost tokens. stream_options is dropped: adapters set it
// themselves.
var knownFields = map[string]bool{
	"model": true, "messages": true, "stream": true, "max_tokens": true,
	"max_completion_tokens": true, "temperature": true, "top_p": true,
	"stop": true, "tools": true, "tool_choice": true, "response_format": true,
	"user": true, "stream_options": true, "n": true,
	"models": true, "route": true, // routing (routing.go), never sent upstream
}

// passThrough lists the other fields Beaver accepts: they are forwarded
// untouched to OpenAI-format upstreams (and ignored by the others) because
// none of them can make a request cost more than its admission hold. They
// steer sampling, logging or caching, or (reasoning_effort, verbosity) how
// the completion tokens, which max_tokens already bounds, are spent.
//
// Everything else is refused with 400 naming the field: a provider may bill
// for it (audio, predicted outputs, web search, priority tiers) in ways the
// hold does not cover, and an exact gateway does not forward what it cannot
// price.
var passThrough = map[string]bool{
	"frequency_penalty": true, "presence_penalty": true, "seed": true,
	"logit_bias": true, "logprobs": true, "top_logprobs": true,
	"parallel_tool_calls": true, "reasoning_effort": true, "verbosity": true,
	"metadata": true, "store": true, "prompt_cache_key": true,
	"safety_identifier": true, "service_tier": true,
}

// refusedBecause explains the refusal of fields users often send.
var refusedBecause = map[string]string{
	"functions":         "use tools instead (the legacy functions API is not supported)",
	"function_call":     "use tool_choice instead (the legacy functions API is not supported)",
	"prediction":        "predicted outputs are billed beyond max_tokens and are not supported",
	"audio":             "audio output is not supported",
	"modalities":        "only text output is supported",
	"search_parameters": "live search is billed per source and is not supported",
}

// providerOptions are the fields Beaver accepts for the models of one
// provider only, by that provider (Request.ProviderOptions): Perplexity's
// preset, web_search_options (search_context_size, user_location) and
// max_tool_calls steer the searches its Agent API runs and bills per call,
// which its adapter caps at MaxServerToolCalls (max_tool_calls can only
// lower that). A request for any other model that carries one is refused
// with 400 naming the field (CheckProviderOptions).
var providerOptions = map[string]string{
	"preset": "perplexity", "web_search_options": "perplexity", "max_tool_calls": "perplexity",
}

// MaxChoices is the largest n accepted (OpenAI's own limit).
const MaxChoices = 128

func checkPassThrough(name string, raw json.RawMessage) error {
	if why, ok := refusedBecause[name]; ok {
		if name == "modalities" && isTextOnly(raw) {
			return nil
		}
		return invalidField(name, "field %s is not supported: %s", name, why)
	}
	if !passThrough[name] {
		return invalidField(name, "unknown field %s: Beaver forwards only fields it can price (see the README's list of accepted fields)", name)
	}
	if name == "service_tier" {
		var tier string
		if json.Unmarshal(raw, &tier) != nil || (tier != "auto" && tier != "default") {
			return invalidField(name, "service_tier must be \"auto\" or \"default\" (other tiers are priced differently)")
		}
	}
	return nil
}

// checkProviderOption checks the type of a provider option; what its
// provider accepts inside it is its adapter's to say.
func checkProviderOption(name string, raw json.RawMessage) error {
	switch name {
	case "preset":
		var s string
		if json.Unmarshal(raw, &s) != nil || strings.TrimSpace(s) == "" {
			return invalidField(name, "preset must be a non-empty string")
		}
	case "web_search_options":
		if !isObject(raw) {
			return invalidField(name, "web_search_options must be an object")
		}
	case "max_tool_calls":
		var n int
		if json.Unmarshal(raw, &n) != nil || n < 0 {
			return invalidField(name, "max_tool_calls must be a non-negative integer")
		}
	}
	return nil
}

// CheckProviderOptions refuses the provider options (see providerOptions)
// of a request for a model of another provider than the one they are for,
// naming the field; nil when there is none such.
func (r *Request) CheckProviderOptions(provider string) *InvalidError {
	for _, name := range slices.Sorted(maps.Keys(r.ProviderOptions)) {
		if owner := providerOptions[name]; owner != provider {
			return invalidField(name, "field %s is accepted for %s models only, and this model's provider is %s", name, owner, provider)
		}
	}
	return nil
}

func isTextOnly(raw json.RawMessage) bool {
	var m []string
	return json.Unmarshal(raw, &m) == nil && len(m) == 1 && m[0] == "text"
}

// UnmarshalJSON decodes a request without validating it (see Validate).
// Errors are *InvalidError.
func (r *Request) UnmarshalJSON(body []byte) error {
	fields, err := DecodeFields(body)
	if err != nil {
		return err
	}
	*r = Request{}
	for name, raw := range fields {
		if knownFields[name] || isNull(raw) {
			continue
		}
		if _, ok := providerOptions[name]; ok {
			if err := checkProviderOption(name, raw); err != nil {
				return err
			}
			if r.ProviderOptions == nil {
				r.ProviderOptions = make(map[string]json.RawMessage)
			}
			r.ProviderOptions[name] = raw
			continue
		}
		if err := checkPassThrough(name, raw); err != nil {
			return err
		}
		if name == "modalities" {
			continue // ["text"] is the default: nothing to forward
		}
		if r.Extra == nil {
			r.Extra = make(map[string]json.RawMessage)
		}
		r.Extra[name] = raw
	}

	err = nil
	field := func(name, want string, dst any) {
		raw, ok := fields[name]
		if err != nil || !ok || isNull(raw) {
			return
		}
		if e := json.Unmarshal(raw, dst); e != nil {
			err = invalidField(name, "%s must be %s", name, want)
		}
	}
	field("model", "a string", &r.Model)
	field("stream", "a boolean", &r.Stream)
	var maxTokens, maxCompletion *int
	field("max_tokens", "an integer", &maxTokens)
	field("max_completion_tokens", "an integer", &maxCompletion)
	field("temperature", "a number", &r.Temperature)
	field("top_p", "a number", &r.TopP)
	field("user", "a string", &r.User)
	field("tools", "an array of tools", &r.Tools)
	var n *int
	field("n", "an integer", &n)
	if err != nil {
		return err
	}
	if n != nil {
		if *n < 1 || *n > MaxChoices {
			return invalidField("n", "n must be between 1 and %d", MaxChoices)
		}
		r.N = *n
	}
	if err := r.decodeRouting(fields); err != nil {
		return err
	}
	switch {
	case maxCompletion != nil:
		r.MaxTokens, r.MaxTokensParam = maxCompletion, "max_completion_tokens"
	case maxTokens != nil:
		r.MaxTokens, r.MaxTokensParam = maxTokens, "max_tokens"
	}
	if raw, ok := fields["stop"]; ok && !isNull(raw) {
		if r.Stop, err = decodeStop(raw); err != nil {
			return err
		}
	}
	if raw, ok := fields["tool_choice"]; ok && !isNull(raw) {
		r.ToolChoice = raw
	}
	if raw, ok := fields["response_format"]; ok && !isNull(raw) {
		r.ResponseFormat = raw
	}
	if raw, ok := fields["messages"]; ok && !isNull(raw) {
		if r.Messages, err = decodeMessages(raw); err != nil {
			return err
		}
	}
	return nil
}

func isNull(raw json.RawMessage) bool { return strictjson.IsNull(raw) }

func decodeStop(raw json.RawMessage) ([]string, error) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if json.Unmarshal(raw, &many) != nil {
		return nil, invalidField("stop", "stop must be a string or an array of strings")
	}
	return many, nil
}

func decodeMessages(raw json.RawMessage) ([]Message, error) {
	var raws []json.RawMessage
	if json.Unmarshal(raw, &raws) != nil {
		return nil, invalidField("messages", "messages must be an array of message objects")
	}
	msgs := make([]Message, len(raws))
	for i, m := range raws {
		if err := json.Unmarshal(m, &msgs[i]); err != nil {
			var te *json.UnmarshalTypeError
			var ce *contentPartError
			switch {
			case errors.As(err, &ce):
				return nil, invalidField("messages", "messages[%d].content: %s", i, ce.msg)
			case errors.Is(err, errContentType):
				return nil, invalidField("messages", "messages[%d].%v", i, err)
			case errors.As(err, &te) && te.Field != "":
				return nil, invalidField("messages", "messages[%d].%s has the wrong type", i, te.Field)
			default:
				return nil, invalidField("messages", "messages[%d] must be a message object", i)
			}
		}
	}
	return msgs, nil
}

// MarshalJSON renders the request in OpenAI's format, with Extra fields merged
// in (sorted by name) and MaxTokens under the field named by MaxTokensParam
// (max_tokens when empty).
func (r Request) MarshalJSON() ([]byte, error) {
	type wire struct {
		Model               string          `json:"model"`
		Messages            []Message       `json:"messages"`
		Stream              bool            `json:"stream,omitempty"`
		MaxTokens           *int            `json:"max_tokens,omitempty"`
		MaxCompletionTokens *int            `json:"max_completion_tokens,omitempty"`
		Temperature         *float64        `json:"temperature,omitempty"`
		TopP                *float64        `json:"top_p,omitempty"`
		Stop                []string        `json:"stop,omitempty"`
		Tools               []Tool          `json:"tools,omitempty"`
		ToolChoice          json.RawMessage `json:"tool_choice,omitempty"`
		ResponseFormat      json.RawMessage `json:"response_format,omitempty"`
		User                string          `json:"user,omitempty"`
		N                   int             `json:"n,omitempty"`
	}
	w := wire{N: r.N,
		Model: r.Model, Messages: r.Messages, Stream: r.Stream,
		Temperature: r.Temperature, TopP: r.TopP, Stop: r.Stop, Tools: r.Tools,
		ToolChoice: r.ToolChoice, ResponseFormat: r.ResponseFormat, User: r.User,
	}
	if w.Messages == nil {
		w.Messages = []Message{}
	}
	if r.MaxTokensParam == "max_completion_tokens" {
		w.MaxCompletionTokens = r.MaxTokens
	} else {
		w.MaxTokens = r.MaxTokens
	}
	b, err := json.Marshal(w)
	if err != nil || len(r.Extra) == 0 {
		return b, err
	}
	names := make([]string, 0, len(r.Extra))
	for name := range r.Extra {
		// A known field in Extra would produce a duplicate key: skip it.
		if !knownFields[name] || name == "stream_options" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	b = b[:len(b)-1] // drop the closing brace and append the extra fields
	for _, name := range names {
		key, _ := json.Marshal(name)
		val := r.Extra[name]
		if !json.Valid(val) {
			return nil, fmt.Errorf("extra field %q is not valid JSON", name)
		}
		b = append(b, ',')
		b = append(b, key...)
		b = append(b, ':')
		b = append(b, val...)
	}
	return append(b, '}'), nil
}

var toolNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// Validate checks what ParseRequest promises: a non-empty message list with
// known roles and well-formed content, and sane sampling parameters. Errors
// are *InvalidError.
func (r *Request) Validate() error {
	if len(r.Messages) == 0 {
		return invalidField("messages", "messages must be a non-empty array")
	}
	for i := range r.Messages {
		if err := validateMessage(i, &r.Messages[i]); err != nil {
			return err
		}
	}
	if r.MaxTokens != nil && *r.MaxTokens < 1 {
		name := r.MaxTokensParam
		if name == "" {
			name = "max_tokens"
		}
		return invalidField(name, "%s must be at least 1", name)
	}
	if t := r.Temperature; t != nil && (math.IsNaN(*t) || *t < 0 || *t > 2) {
		return invalidField("temperature", "temperature must be between 0 and 2")
	}
	if p := r.TopP; p != nil && (math.IsNaN(*p) || *p < 0 || *p > 1) {
		return invalidField("top_p", "top_p must be between 0 and 1")
	}
	for i, t := range r.Tools {
		if t.Type != "function" {
			return invalidField("tools", "tools[%d].type must be \"function\"", i)
		}
		if !toolNameRE.MatchString(t.Function.Name) {
			return invalidField("tools", "tools[%d].function.name must be 1 to 64 letters, digits, underscores or dashes", i)
		}
		if len(t.Function.Parameters) > 0 && !isNull(t.Function.Parameters) && !isObject(t.Function.Parameters) {
			return invalidField("tools", "tools[%d].function.parameters must be a JSON Schema object", i)
		}
	}
	if len(r.ToolChoice) > 0 {
		if err := validateToolChoice(r.ToolChoice, len(r.Tools) > 0); err != nil {
			return err
		}
	}
	if len(r.ResponseFormat) > 0 {
		if err := validateResponseFormat(r.ResponseFormat); err != nil {
			return err
		}
	}
	return nil
}

func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{' && json.Valid(raw)
}

func validateMessage(i int, m *Message) error {
	switch m.Role {
	case RoleSystem, RoleDeveloper, RoleUser, RoleAssistant, RoleTool:
	case "":
		return invalidField("messages", "messages[%d].role is required", i)
	default:
		return invalidField("messages", "messages[%d].role %q is not one of system, developer, user, assistant, tool", i, m.Role)
	}
	if m.Content.IsNull() {
		if m.Role != RoleAssistant || len(m.ToolCalls) == 0 {
			return invalidField("messages", "messages[%d].content is required", i)
		}
	}
	for j, p := range m.Content.Parts() {
		switch p.Type {
		case PartText:
		case PartImageURL:
			if m.Role != RoleUser {
				return invalidField("messages", "messages[%d].content[%d]: images are only allowed in user messages", i, j)
			}
			if p.ImageURL == nil || p.ImageURL.URL == "" {
				return invalidField("messages", "messages[%d].content[%d].image_url.url is required", i, j)
			}
			u := p.ImageURL.URL
			if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "data:") {
				return invalidField("messages", "messages[%d].content[%d].image_url.url must be an http(s) or data: URL", i, j)
			}
			switch p.ImageURL.Detail {
			case "", "auto", "low", "high":
			default:
				return invalidField("messages", "messages[%d].content[%d].image_url.detail must be auto, low or high", i, j)
			}
		case "":
			return invalidField("messages", "messages[%d].content[%d].type is required", i, j)
		default:
			return invalidField("messages", "messages[%d].content[%d]: content part type %q is not supported (use text or image_url)", i, j, p.Type)
		}
	}
	if len(m.ToolCalls) > 0 && m.Role != RoleAssistant {
		return invalidField("messages", "messages[%d]: only assistant messages may have tool_calls", i)
	}
	for j, tc := range m.ToolCalls {
		if tc.ID == "" || tc.Function.Name == "" {
			return invalidField("messages", "messages[%d].tool_calls[%d] needs an id and a function name", i, j)
		}
		if tc.Type != "" && tc.Type != "function" {
			return invalidField("messages", "messages[%d].tool_calls[%d].type must be \"function\"", i, j)
		}
	}
	if m.Role == RoleTool && m.ToolCallID == "" {
		return invalidField("messages", "messages[%d].tool_call_id is required for tool messages", i)
	}
	return nil
}

func validateToolChoice(raw json.RawMessage, haveTools bool) error {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "none", "auto":
			return nil
		case "required":
			if !haveTools {
				return invalidField("tool_choice", "tool_choice \"required\" needs tools")
			}
			return nil
		}
		return invalidField("tool_choice", "tool_choice must be \"none\", \"auto\", \"required\" or a function choice object")
	}
	var obj struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(raw, &obj) != nil || obj.Type != "function" || obj.Function.Name == "" {
		return invalidField("tool_choice", "tool_choice must be \"none\", \"auto\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":...}}")
	}
	if !haveTools {
		return invalidField("tool_choice", "tool_choice names a function but no tools were given")
	}
	return nil
}

func validateResponseFormat(raw json.RawMessage) error {
	var rf struct {
		Type       string          `json:"type"`
		JSONSchema json.RawMessage `json:"json_schema"`
	}
	if json.Unmarshal(raw, &rf) != nil {
		return invalidField("response_format", "response_format must be an object")
	}
	switch rf.Type {
	case "text", "json_object":
		return nil
	case "json_schema":
		if !isObject(rf.JSONSchema) {
			return invalidField("response_format", "response_format.json_schema must be an object")
		}
		return nil
	}
	return invalidField("response_format", "response_format.type must be text, json_object or json_schema")
}

// ResponseFormatType returns response_format.type ("" when absent).
func (r *Request) ResponseFormatType() string {
	var rf struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(r.ResponseFormat, &rf)
	return rf.Type
}

// JSONSchema returns response_format.json_schema.schema when the response
// format is json_schema, else nil.
func (r *Request) JSONSchema() json.RawMessage {
	var rf struct {
		Type       string `json:"type"`
		JSONSchema struct {
			Schema json.RawMessage `json:"schema"`
		} `json:"json_schema"`
	}
	if json.Unmarshal(r.ResponseFormat, &rf) != nil || rf.Type != "json_schema" {
		return nil
	}
	return rf.JSONSchema.Schema
}

// ChoiceCount is how many completions the request asks for (n, default 1).
func (r *Request) ChoiceCount() int {
	if r.N < 1 {
		return 1
	}
	return r.N
}
