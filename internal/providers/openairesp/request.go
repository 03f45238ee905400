package openairesp

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
	"github.com/beaver-gateway/beaver/internal/responses"
)

// wireRequest is a Responses request (the fields Beaver sends).
type wireRequest struct {
	Model           string          `json:"model"`
	Preset          json.RawMessage `json:"preset,omitempty"`
	Instructions    string          `json:"instructions,omitempty"`
	Input           []inputItem     `json:"input"`
	Tools           []wireTool      `json:"tools,omitempty"`
	ToolChoice      json.RawMessage `json:"tool_choice,omitempty"`
	MaxOutputTokens *int            `json:"max_output_tokens,omitempty"`
	MaxToolCalls    *int            `json:"max_tool_calls,omitempty"`
	Temperature     *float64        `json:"temperature,omitempty"`
	TopP            *float64        `json:"top_p,omitempty"`
	Reasoning       *wireReasoning  `json:"reasoning,omitempty"`
	Text            *wireText       `json:"text,omitempty"`
	ResponseFormat  json.RawMessage `json:"response_format,omitempty"`
	User            string          `json:"user,omitempty"`
	Stream          bool            `json:"stream,omitempty"`
	// Store is always false: Beaver keeps its own records and sends the
	// whole conversation each time.
	Store bool `json:"store"`

	// The chat pass-through fields the dialect takes (dialect.extras).
	ParallelToolCalls json.RawMessage `json:"parallel_tool_calls,omitempty"`
	Metadata          json.RawMessage `json:"metadata,omitempty"`
	PromptCacheKey    json.RawMessage `json:"prompt_cache_key,omitempty"`
	SafetyIdentifier  json.RawMessage `json:"safety_identifier,omitempty"`
	ServiceTier       json.RawMessage `json:"service_tier,omitempty"`
}

// inputItem is one item of input: a message, a function call the model
// made, or a function's output.
type inputItem struct {
	Type    string `json:"type"`
	Role    string `json:"role,omitempty"`
	Content any    `json:"content,omitempty"` // a string, or []inputPart
	// function_call and function_call_output; arguments and output are
	// required, even when empty.
	CallID           string  `json:"call_id,omitempty"`
	Name             string  `json:"name,omitempty"`
	Arguments        *string `json:"arguments,omitempty"`
	Output           *string `json:"output,omitempty"`
	ThoughtSignature string  `json:"thought_signature,omitempty"`
}

// inputPart is a part of a user message: input_text or input_image.
type inputPart struct {
	Type     string  `json:"type"`
	Text     *string `json:"text,omitempty"`
	ImageURL string  `json:"image_url,omitempty"`
	Detail   string  `json:"detail,omitempty"`
}

// wireTool is a function tool in the Responses shape (flat: no "function"
// object), or a built-in tool (web_search) with its options.
type wireTool struct {
	Type              string          `json:"type"`
	Name              string          `json:"name,omitempty"`
	Description       string          `json:"description,omitempty"`
	Parameters        json.RawMessage `json:"parameters,omitempty"`
	Strict            *bool           `json:"strict,omitempty"`
	SearchContextSize json.RawMessage `json:"search_context_size,omitempty"`
	UserLocation      json.RawMessage `json:"user_location,omitempty"`
}

type wireReasoning struct {
	Effort json.RawMessage `json:"effort"`
}

type wireText struct {
	Format    json.RawMessage `json:"format,omitempty"`
	Verbosity json.RawMessage `json:"verbosity,omitempty"`
}

// Input item, part and tool types.
const (
	itemMessage            = responses.ItemMessage
	itemFunctionCall       = responses.ItemFunctionCall
	itemFunctionCallOutput = "function_call_output"
	partInputText          = "input_text"
	partInputImage         = "input_image"
	toolFunction           = "function"
	toolWebSearch          = "web_search"
)

// emptySchema is the parameters of a function declared without any: the
// Responses API wants an object schema.
var emptySchema = json.RawMessage(`{"type":"object","properties":{}}`)

// encode renders the upstream body of req. Errors are *chat.InvalidError
// for what the API cannot carry.
func (a *Adapter) encode(req *chat.Request, stream bool) ([]byte, error) {
	if req.N > 1 {
		return nil, &chat.InvalidError{Param: "n", Message: "n above 1 is not supported by this model's API: ask for one choice per request"}
	}
	d := a.dialect
	w := wireRequest{Model: req.Model, MaxOutputTokens: req.MaxTokens, Temperature: req.Temperature, TopP: req.TopP,
		Stream: stream}
	if m, ok := d.models[req.Model]; ok {
		w.Model = m
	}
	var err error
	if w.Instructions, w.Input, err = a.input(req.Messages); err != nil {
		return nil, err
	}
	if w.Tools, err = a.tools(req); err != nil {
		return nil, err
	}
	w.ToolChoice = a.toolChoice(req.ToolChoice)
	if err := a.responseFormat(req, &w); err != nil {
		return nil, err
	}
	if effort, ok := req.Extra["reasoning_effort"]; ok {
		w.Reasoning = &wireReasoning{Effort: effort}
	}
	extra := func(name string) json.RawMessage {
		if !d.extras[name] {
			return nil
		}
		return req.Extra[name]
	}
	w.ParallelToolCalls, w.Metadata = extra("parallel_tool_calls"), extra("metadata")
	w.PromptCacheKey, w.SafetyIdentifier, w.ServiceTier = extra("prompt_cache_key"), extra("safety_identifier"), extra("service_tier")
	if d.agentAPI {
		w.Preset = req.ProviderOptions["preset"]
		n, err := maxToolCalls(req.ProviderOptions["max_tool_calls"])
		if err != nil {
			return nil, err
		}
		w.MaxToolCalls = &n
	} else {
		w.User = req.User
		if v, ok := req.Extra["verbosity"]; ok {
			if w.Text == nil {
				w.Text = &wireText{}
			}
			w.Text.Verbosity = v
		}
	}
	return json.Marshal(w)
}

// maxToolCalls is the bound on the provider's own tool calls a request
// gets: chat.MaxServerToolCalls, the most Beaver holds money for, unless
// the client asked for fewer (raw, its max_tool_calls).
func maxToolCalls(raw json.RawMessage) (int, error) {
	n := chat.MaxServerToolCalls
	if len(raw) == 0 {
		return n, nil
	}
	var asked int
	if err := json.Unmarshal(raw, &asked); err != nil || asked < 0 {
		return 0, &chat.InvalidError{Param: "max_tool_calls", Message: "max_tool_calls must be a non-negative integer"}
	}
	return min(n, asked), nil
}

// input turns the messages into instructions and input items: the leading
// system and developer messages are the instructions (a preset's own are
// replaced by them, as a Sonar system prompt replaced none); later ones
// stay input messages of their role. Assistant tool calls become
// function_call items, tool messages function_call_output items. The
// assistant's reasoning_content has no place on the wire and is not sent.
func (a *Adapter) input(msgs []chat.Message) (string, []inputItem, error) {
	var system []string
	i := 0
	for ; i < len(msgs) && (msgs[i].Role == chat.RoleSystem || msgs[i].Role == chat.RoleDeveloper); i++ {
		system = append(system, msgs[i].Content.Text())
	}
	items := make([]inputItem, 0, len(msgs)-i)
	called := map[string]string{} // function name by call id, for function_call_output
	for j, m := range msgs[i:] {
		switch m.Role {
		case chat.RoleUser:
			content, err := a.userContent(i+j, m.Content)
			if err != nil {
				return "", nil, err
			}
			items = append(items, inputItem{Type: itemMessage, Role: m.Role, Content: content})
		case chat.RoleAssistant:
			if text := m.Content.Text(); !m.Content.IsNull() && (text != "" || len(m.ToolCalls) == 0) {
				items = append(items, inputItem{Type: itemMessage, Role: m.Role, Content: text})
			}
			for _, tc := range m.ToolCalls {
				args := tc.Function.Arguments
				it := inputItem{Type: itemFunctionCall, CallID: tc.ID, Name: tc.Function.Name, Arguments: &args}
				if a.dialect.agentAPI {
					it.ThoughtSignature = tc.ThoughtSignature()
				}
				called[tc.ID] = tc.Function.Name
				items = append(items, it)
			}
		case chat.RoleTool:
			out := m.Content.Text()
			it := inputItem{Type: itemFunctionCallOutput, CallID: m.ToolCallID, Output: &out}
			if a.dialect.agentAPI {
				it.Name = called[m.ToolCallID]
			}
			items = append(items, it)
		default: // system or developer, after the conversation began
			items = append(items, inputItem{Type: itemMessage, Role: m.Role, Content: m.Content.Text()})
		}
	}
	return strings.Join(system, "\n\n"), items, nil
}

// userContent is a user message's content: its string, or its parts as
// input_text and input_image parts. A malformed data URL is refused here
// rather than by the upstream.
func (a *Adapter) userContent(i int, c chat.Content) (any, error) {
	if !c.IsParts() {
		return c.Text(), nil
	}
	parts := make([]inputPart, 0, len(c.Parts()))
	for j, p := range c.Parts() {
		switch p.Type {
		case chat.PartText:
			text := p.Text
			parts = append(parts, inputPart{Type: partInputText, Text: &text})
		case chat.PartImageURL:
			u := p.ImageURL.URL
			if strings.HasPrefix(u, "data:") {
				if _, _, err := upstream.ParseDataURL(u); err != nil {
					return nil, &chat.InvalidError{Param: "messages", Message: fmt.Sprintf("messages[%d].content[%d]: %v", i, j, err)}
				}
			}
			part := inputPart{Type: partInputImage, ImageURL: u}
			if !a.dialect.agentAPI { // OpenAI requires it; Perplexity refuses it
				part.Detail = p.ImageURL.Detail
				if part.Detail == "" {
					part.Detail = "auto"
				}
			}
			parts = append(parts, part)
		}
	}
	return parts, nil
}

// tools are the request's functions in the Responses shape, and, for the
// Agent API, its web_search tool.
func (a *Adapter) tools(req *chat.Request) ([]wireTool, error) {
	out := make([]wireTool, 0, len(req.Tools)+1)
	for _, t := range req.Tools {
		f := t.Function
		params := f.Parameters
		if len(params) == 0 || string(params) == "null" {
			params = emptySchema
		}
		strict := f.Strict
		if strict == nil { // the Responses API makes functions strict unless told otherwise; chat does not
			strict = upstream.Ptr(false)
		}
		out = append(out, wireTool{Type: toolFunction, Name: f.Name, Description: f.Description, Parameters: params, Strict: strict})
	}
	if !a.dialect.agentAPI {
		return out, nil
	}
	search, err := searchTool(req.ProviderOptions)
	if err != nil {
		return nil, err
	}
	if search != nil {
		out = append(out, *search)
	}
	return out, nil
}

// searchTool is the Agent API's web_search tool, carrying the client's
// web_search_options (the Sonar API's field; the Agent API takes them on
// the tool). A preset bundles its own search: with a preset and no
// options, nil.
func searchTool(opts map[string]json.RawMessage) (*wireTool, error) {
	t := &wireTool{Type: toolWebSearch}
	raw, ok := opts["web_search_options"]
	if !ok {
		if _, preset := opts["preset"]; preset {
			return nil, nil
		}
		return t, nil
	}
	var o map[string]json.RawMessage
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, &chat.InvalidError{Param: "web_search_options", Message: "web_search_options must be an object"}
	}
	for k, v := range o {
		switch k {
		case "search_context_size":
			var size string
			if json.Unmarshal(v, &size) != nil || (size != "low" && size != "medium" && size != "high") {
				return nil, &chat.InvalidError{Param: "web_search_options", Message: "web_search_options.search_context_size must be low, medium or high"}
			}
			t.SearchContextSize = v
		case "user_location":
			t.UserLocation = v
		default:
			return nil, &chat.InvalidError{Param: "web_search_options",
				Message: fmt.Sprintf("web_search_options.%s is not supported (search_context_size and user_location are)", k)}
		}
	}
	return t, nil
}

// toolChoice maps chat's tool_choice: the strings are the same; a forced
// function is {"type":"function","name":...} (OpenAI) or {"name":...}
// (the Agent API).
func (a *Adapter) toolChoice(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return raw
	}
	var c struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	_ = json.Unmarshal(raw, &c) // chat.Validate checked its shape
	if a.dialect.agentAPI {
		b, _ := json.Marshal(map[string]string{"name": c.Function.Name})
		return b
	}
	b, _ := json.Marshal(map[string]string{"type": toolFunction, "name": c.Function.Name})
	return b
}

// responseFormat sets the structured-output format: OpenAI's text.format,
// whose json_schema is flat ({"type":"json_schema","name","schema",...}),
// or the Agent API's top-level response_format in chat's own shape, which
// has json_schema only. "text" is the default and is not sent.
func (a *Adapter) responseFormat(req *chat.Request, w *wireRequest) error {
	typ := req.ResponseFormatType()
	if typ == "" || typ == "text" {
		return nil
	}
	if a.dialect.agentAPI {
		if typ != "json_schema" {
			return &chat.InvalidError{Param: "response_format", Message: "response_format " + typ + " is not supported by this model's API: use json_schema"}
		}
		w.ResponseFormat = req.ResponseFormat
		return nil
	}
	format := json.RawMessage(`{"type":"json_object"}`)
	if typ == "json_schema" {
		var rf struct {
			JSONSchema map[string]json.RawMessage `json:"json_schema"`
		}
		if err := json.Unmarshal(req.ResponseFormat, &rf); err != nil || rf.JSONSchema == nil {
			return &chat.InvalidError{Param: "response_format", Message: "response_format.json_schema must be an object"}
		}
		rf.JSONSchema["type"] = json.RawMessage(`"json_schema"`)
		format, _ = json.Marshal(rf.JSONSchema)
	}
	w.Text = &wireText{Format: format}
	return nil
}

// functionNames are the names of the request's functions: a function call
// naming any other is the provider's own tool (Perplexity streams its
// searches as search_web function calls), not one for the client to run.
func functionNames(req *chat.Request) map[string]bool {
	names := make(map[string]bool, len(req.Tools))
	for _, t := range req.Tools {
		names[t.Function.Name] = true
	}
	return names
}
