package messages

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/reasoning"
	"github.com/beaver-gateway/beaver/internal/strictjson"
)

// The request fields Parse accepts. Everything else is refused with 400
// naming the field, as on chat: Beaver forwards only what it can price.
//
// Modelled: model, max_tokens, system, messages, tools, tool_choice,
// stop_sequences, temperature, top_p, stream, metadata (its user_id becomes
// chat's user). Accepted and not forwarded (no chat field carries them, and
// none can make a request cost more than its hold): top_k, thinking (the
// reasoning a model does is bounded by max_tokens like any output) and
// service_tier ("auto" or "standard_only").
var accepted = map[string]bool{
	"model": true, "max_tokens": true, "system": true, "messages": true,
	"tools": true, "tool_choice": true, "stop_sequences": true,
	"temperature": true, "top_p": true, "top_k": true, "stream": true,
	"metadata": true, "thinking": true, "service_tier": true,
}

// refusedBecause explains the refusal of Anthropic fields Beaver cannot
// price or serve.
var refusedBecause = map[string]string{
	"container":          "code execution containers are billed by the provider beyond tokens",
	"mcp_servers":        "remote MCP servers are not supported",
	"context_management": "context management is not supported",
}

// Parse decodes an Anthropic Messages API request body into Beaver's chat
// request, validated as chat validates its own. Errors are
// *chat.InvalidError, whose Param names the offending field.
//
// The translation:
//   - system (a string or text blocks) becomes the first message, role system;
//   - a user turn's tool_result blocks become tool messages (tool_call_id =
//     tool_use_id), in order, followed by a user message with the turn's
//     other blocks (text, and images, including the images of tool results,
//     which chat's tool messages cannot carry); is_error is not forwarded;
//   - images: base64 sources become data: URLs, url sources stay URLs;
//   - an assistant turn's text becomes its content and its tool_use blocks
//     its tool_calls (arguments = input as compact JSON); its thinking
//     blocks give back what Beaver's answer put in them (see response.go):
//     their text, joined, becomes reasoning_content (which DeepSeek's
//     thinking mode needs back) and a signature that is Beaver's token
//     gives the turn's calls their Gemini thought signatures; any other
//     signature is ignored, and redacted_thinking blocks are dropped (no
//     provider behind chat reads them);
//   - tools become functions (input_schema = parameters); tool_choice auto →
//     "auto", any → "required", tool → that function, none → "none", and
//     disable_parallel_tool_use → parallel_tool_calls: false;
//   - stop_sequences → stop, metadata.user_id → user;
//   - cache_control is accepted anywhere and ignored.
func Parse(body []byte) (*chat.Request, error) { return parse(body, true) }

// ParseCount reads a POST /v1/messages/count_tokens body: a messages
// request without max_tokens (Anthropic's count endpoint takes none), as
// the chat request whose prompt is to be counted.
func ParseCount(body []byte) (*chat.Request, error) { return parse(body, false) }

func parse(body []byte, generating bool) (*chat.Request, error) {
	fields, err := chat.DecodeFields(body)
	if err != nil {
		return nil, err
	}
	for name, raw := range fields {
		if accepted[name] || isNull(raw) {
			continue
		}
		if why, ok := refusedBecause[name]; ok {
			return nil, invalid(name, "field %s is not supported: %s", name, why)
		}
		return nil, invalid(name, "unknown field %s: Beaver forwards only fields it can price (see the README's /v1/messages section)", name)
	}
	d := decoder{fields: fields}
	req := &chat.Request{}
	var (
		maxTokens *int
		topK      *int
		system    json.RawMessage
		msgs      []wireMessage
		tools     []wireTool
		choice    *wireToolChoice
		metadata  *struct {
			UserID *string `json:"user_id"`
		}
		thinking *struct {
			Type string `json:"type"`
		}
		tier *string
	)
	d.field("model", "a string", &req.Model)
	d.field("max_tokens", "an integer", &maxTokens)
	d.field("stream", "a boolean", &req.Stream)
	d.field("temperature", "a number", &req.Temperature)
	d.field("top_p", "a number", &req.TopP)
	d.field("top_k", "an integer", &topK)
	d.field("stop_sequences", "an array of strings", &req.Stop)
	d.field("metadata", "an object", &metadata)
	d.field("thinking", "an object", &thinking)
	d.field("service_tier", "a string", &tier)
	d.field("tools", "an array of tools", &tools)
	d.field("tool_choice", "an object", &choice)
	d.field("messages", "an array of messages", &msgs)
	if raw, ok := fields["system"]; ok && !isNull(raw) {
		system = raw
	}
	if d.err != nil {
		return nil, d.err
	}

	if req.Model == "" {
		return nil, invalid("model", "model is required")
	}
	if maxTokens == nil && !generating {
		one := 1 // nothing is generated; the field only satisfies the request's shape
		maxTokens = &one
	}
	if maxTokens == nil {
		return nil, invalid("max_tokens", "max_tokens is required")
	}
	if *maxTokens < 1 {
		return nil, invalid("max_tokens", "max_tokens must be at least 1")
	}
	req.MaxTokens = maxTokens // MaxTokensParam "": each adapter sends its provider's field
	if t := req.Temperature; t != nil && (math.IsNaN(*t) || *t < 0 || *t > 1) {
		return nil, invalid("temperature", "temperature must be between 0 and 1")
	}
	if topK != nil && *topK < 0 {
		return nil, invalid("top_k", "top_k must be at least 0")
	}
	if thinking != nil {
		switch thinking.Type {
		case "enabled", "disabled", "adaptive":
		default:
			return nil, invalid("thinking", "thinking.type must be enabled, disabled or adaptive")
		}
	}
	if tier != nil && *tier != "auto" && *tier != "standard_only" {
		return nil, invalid("service_tier", "service_tier must be \"auto\" or \"standard_only\"")
	}
	if metadata != nil && metadata.UserID != nil {
		req.User = *metadata.UserID
	}

	if system != nil {
		m, err := systemMessage(system)
		if err != nil {
			return nil, err
		}
		if m != nil {
			req.Messages = append(req.Messages, *m)
		}
	}
	if len(msgs) == 0 {
		return nil, invalid("messages", "messages must be a non-empty array")
	}
	for i := range msgs {
		out, err := translateMessage(i, &msgs[i])
		if err != nil {
			return nil, err
		}
		req.Messages = append(req.Messages, out...)
	}
	for i, t := range tools {
		if t.Type != "" && t.Type != "custom" {
			return nil, invalid("tools", "tools[%d]: tool type %q is not supported (server tools are billed by the provider beyond tokens)", i, t.Type)
		}
		if t.Name == "" {
			return nil, invalid("tools", "tools[%d].name is required", i)
		}
		if len(t.InputSchema) > 0 && !isNull(t.InputSchema) && !isObject(t.InputSchema) {
			return nil, invalid("tools", "tools[%d].input_schema must be a JSON Schema object", i)
		}
		req.Tools = append(req.Tools, chat.Tool{Type: "function",
			Function: chat.FunctionDef{Name: t.Name, Description: t.Description, Parameters: t.InputSchema}})
	}
	if choice != nil {
		if err := applyToolChoice(req, choice); err != nil {
			return nil, err
		}
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	return req, nil
}

// wireMessage is one input message. Content is a string or an array of
// content blocks.
type wireMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// wireBlock is an input content block of any type; each type reads its own
// fields.
type wireBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	Source    *wireSource     `json:"source"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"` // tool_result: a string or blocks
	Thinking  string          `json:"thinking"`
	Signature string          `json:"signature"`
}

// wireSource is an image source: base64 (media_type, data), url, or file
// (the Files API, not supported).
type wireSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type"`
	Data      string `json:"data"`
	URL       string `json:"url"`
}

type wireTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type wireToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use"`
}

// The image media types Anthropic accepts.
var imageTypes = map[string]bool{"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true}

func systemMessage(raw json.RawMessage) (*chat.Message, error) {
	text, blocks, isText, err := decodeContent(raw)
	if err != nil {
		return nil, invalid("system", "system must be a string or an array of text blocks")
	}
	if isText {
		if text == "" {
			return nil, nil
		}
		return &chat.Message{Role: chat.RoleSystem, Content: chat.TextContent(text)}, nil
	}
	var parts []chat.Part
	for j, b := range blocks {
		if b.Type != BlockText {
			return nil, invalid("system", "system[%d]: only text blocks are allowed in system", j)
		}
		parts = append(parts, chat.Part{Type: chat.PartText, Text: b.Text})
	}
	if len(parts) == 0 {
		return nil, nil
	}
	return &chat.Message{Role: chat.RoleSystem, Content: textContent(parts)}, nil
}

// translateMessage turns one Anthropic message into chat messages: one,
// or, for a user turn with tool results, one tool message per result and
// then the user message (when anything else is left), or none for an
// assistant turn that only carried thinking.
func translateMessage(i int, m *wireMessage) ([]chat.Message, error) {
	if m.Role != chat.RoleUser && m.Role != chat.RoleAssistant {
		if m.Role == "" {
			return nil, invalid("messages", "messages[%d].role is required", i)
		}
		return nil, invalid("messages", "messages[%d].role must be \"user\" or \"assistant\", not %q", i, m.Role)
	}
	if len(m.Content) == 0 || isNull(m.Content) {
		return nil, invalid("messages", "messages[%d].content is required", i)
	}
	text, blocks, isText, err := decodeContent(m.Content)
	if err != nil {
		return nil, invalid("messages", "messages[%d].content: %v", i, err)
	}
	if isText {
		return []chat.Message{{Role: m.Role, Content: chat.TextContent(text)}}, nil
	}
	if len(blocks) == 0 {
		return nil, invalid("messages", "messages[%d].content must not be empty", i)
	}
	if m.Role == chat.RoleAssistant {
		return assistantMessage(i, blocks)
	}
	return userMessages(i, blocks)
}

func assistantMessage(i int, blocks []wireBlock) ([]chat.Message, error) {
	var parts []chat.Part
	var calls []chat.ToolCall
	var thinking strings.Builder
	var state reasoning.State // the thought signatures of this turn's calls
	for j, b := range blocks {
		switch b.Type {
		case BlockText:
			parts = append(parts, chat.Part{Type: chat.PartText, Text: b.Text})
		case BlockToolUse:
			if b.ID == "" || b.Name == "" {
				return nil, invalid("messages", "messages[%d].content[%d]: tool_use needs an id and a name", i, j)
			}
			args := "{}"
			if len(b.Input) > 0 && !isNull(b.Input) {
				if !isObject(b.Input) {
					return nil, invalid("messages", "messages[%d].content[%d].input must be an object", i, j)
				}
				var buf bytes.Buffer
				if json.Compact(&buf, b.Input) == nil {
					args = buf.String()
				}
			}
			calls = append(calls, chat.ToolCall{ID: b.ID, Type: "function", Function: chat.FunctionCall{Name: b.Name, Arguments: args}})
		case BlockThinking:
			thinking.WriteString(b.Thinking)
			state.Merge(reasoning.Parse(b.Signature))
		case BlockRedactedThinking:
			// Anthropic's encrypted reasoning: no provider behind chat reads it.
		case BlockImage:
			return nil, invalid("messages", "messages[%d].content[%d]: images are only allowed in user messages", i, j)
		case BlockToolResult:
			return nil, invalid("messages", "messages[%d].content[%d]: tool_result blocks belong in user messages", i, j)
		default:
			return nil, unsupportedBlock(i, j, b.Type)
		}
	}
	if len(parts) == 0 && len(calls) == 0 {
		return nil, nil
	}
	msg := chat.Message{Role: chat.RoleAssistant, ToolCalls: calls, ReasoningContent: thinking.String()}
	state.Apply(msg.ToolCalls)
	if len(parts) > 0 {
		msg.Content = textContent(parts)
	}
	return []chat.Message{msg}, nil
}

func userMessages(i int, blocks []wireBlock) ([]chat.Message, error) {
	var out []chat.Message
	var parts []chat.Part
	for j, b := range blocks {
		switch b.Type {
		case BlockText:
			parts = append(parts, chat.Part{Type: chat.PartText, Text: b.Text})
		case BlockImage:
			p, err := imagePart(b.Source)
			if err != nil {
				return nil, invalid("messages", "messages[%d].content[%d]: %v", i, j, err)
			}
			parts = append(parts, p)
		case BlockToolResult:
			if b.ToolUseID == "" {
				return nil, invalid("messages", "messages[%d].content[%d].tool_use_id is required", i, j)
			}
			content, images, err := toolResultContent(b.Content)
			if err != nil {
				return nil, invalid("messages", "messages[%d].content[%d].content: %v", i, j, err)
			}
			out = append(out, chat.Message{Role: chat.RoleTool, ToolCallID: b.ToolUseID, Content: content})
			parts = append(parts, images...)
		case BlockToolUse:
			return nil, invalid("messages", "messages[%d].content[%d]: tool_use blocks belong in assistant messages", i, j)
		default:
			return nil, unsupportedBlock(i, j, b.Type)
		}
	}
	if len(parts) > 0 {
		out = append(out, chat.Message{Role: chat.RoleUser, Content: userContent(parts)})
	}
	return out, nil
}

// toolResultContent is a tool result's text as a tool message's content,
// and its images, which go to the user message that follows.
func toolResultContent(raw json.RawMessage) (chat.Content, []chat.Part, error) {
	if len(raw) == 0 || isNull(raw) {
		return chat.TextContent(""), nil, nil
	}
	text, blocks, isText, err := decodeContent(raw)
	if err != nil {
		return chat.Content{}, nil, err
	}
	if isText {
		return chat.TextContent(text), nil, nil
	}
	var texts, images []chat.Part
	for k, b := range blocks {
		switch b.Type {
		case BlockText:
			texts = append(texts, chat.Part{Type: chat.PartText, Text: b.Text})
		case BlockImage:
			p, err := imagePart(b.Source)
			if err != nil {
				return chat.Content{}, nil, fmt.Errorf("[%d]: %v", k, err)
			}
			images = append(images, p)
		default:
			return chat.Content{}, nil, fmt.Errorf("[%d]: block type %q is not supported in tool results (use text or image)", k, b.Type)
		}
	}
	if len(texts) == 0 {
		return chat.TextContent(""), images, nil
	}
	return textContent(texts), images, nil
}

func imagePart(src *wireSource) (chat.Part, error) {
	if src == nil {
		return chat.Part{}, errors.New("image.source is required")
	}
	var url string
	switch src.Type {
	case "base64":
		if !imageTypes[src.MediaType] {
			return chat.Part{}, fmt.Errorf("image.source.media_type must be image/jpeg, image/png, image/gif or image/webp, not %q", src.MediaType)
		}
		if src.Data == "" {
			return chat.Part{}, errors.New("image.source.data is required")
		}
		url = "data:" + src.MediaType + ";base64," + src.Data
	case "url":
		if src.URL == "" {
			return chat.Part{}, errors.New("image.source.url is required")
		}
		url = src.URL
	case "file":
		return chat.Part{}, errors.New("image sources of type file (the Files API) are not supported: send base64 or url")
	default:
		return chat.Part{}, fmt.Errorf("image.source.type must be base64 or url, not %q", src.Type)
	}
	return chat.Part{Type: chat.PartImageURL, ImageURL: &chat.ImageURL{URL: url}}, nil
}

func unsupportedBlock(i, j int, typ string) error {
	if typ == "" {
		return invalid("messages", "messages[%d].content[%d].type is required", i, j)
	}
	return invalid("messages", "messages[%d].content[%d]: content block type %q is not supported (use text, image, tool_use or tool_result)", i, j, typ)
}

// textContent is text parts as chat content: one part as a plain string
// (every provider takes it), more as an array of parts.
func textContent(parts []chat.Part) chat.Content {
	if len(parts) == 1 {
		return chat.TextContent(parts[0].Text)
	}
	return chat.PartsContent(parts...)
}

// userContent is like textContent, keeping an array whenever there is an image.
func userContent(parts []chat.Part) chat.Content {
	if len(parts) == 1 && parts[0].Type == chat.PartText {
		return chat.TextContent(parts[0].Text)
	}
	return chat.PartsContent(parts...)
}

func applyToolChoice(req *chat.Request, tc *wireToolChoice) error {
	var choice string
	switch tc.Type {
	case "auto":
		choice = `"auto"`
	case "none":
		choice = `"none"`
	case "any":
		choice = `"required"`
	case "tool":
		if tc.Name == "" {
			return invalid("tool_choice", "tool_choice.name is required when tool_choice.type is tool")
		}
		name, _ := json.Marshal(tc.Name)
		choice = `{"type":"function","function":{"name":` + string(name) + `}}`
	default:
		return invalid("tool_choice", "tool_choice.type must be auto, any, tool or none")
	}
	if len(req.Tools) == 0 {
		if tc.Type == "any" || tc.Type == "tool" {
			return invalid("tool_choice", "tool_choice %s needs tools", tc.Type)
		}
		return nil // nothing to choose from: sent nowhere (OpenAI refuses tool_choice without tools)
	}
	req.ToolChoice = json.RawMessage(choice)
	if tc.DisableParallelToolUse && tc.Type != "none" {
		req.Extra = map[string]json.RawMessage{"parallel_tool_calls": json.RawMessage("false")}
	}
	return nil
}

// decodeContent reads a string or an array of blocks.
func decodeContent(raw json.RawMessage) (text string, blocks []wireBlock, isText bool, err error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) > 0 && raw[0] == '"':
		if err := json.Unmarshal(raw, &text); err != nil {
			return "", nil, false, errors.New("must be a string or an array of content blocks")
		}
		return text, nil, true, nil
	case len(raw) > 0 && raw[0] == '[':
		var raws []json.RawMessage
		if err := json.Unmarshal(raw, &raws); err != nil {
			return "", nil, false, errors.New("must be a string or an array of content blocks")
		}
		blocks = make([]wireBlock, len(raws))
		for k, r := range raws {
			if err := json.Unmarshal(r, &blocks[k]); err != nil {
				var te *json.UnmarshalTypeError
				if errors.As(err, &te) && te.Field != "" {
					return "", nil, false, fmt.Errorf("[%d].%s has the wrong type", k, te.Field)
				}
				return "", nil, false, fmt.Errorf("[%d] must be a content block object", k)
			}
		}
		return "", blocks, false, nil
	}
	return "", nil, false, errors.New("must be a string or an array of content blocks")
}

// decoder decodes top-level fields, keeping the first error.
type decoder struct {
	fields map[string]json.RawMessage
	err    error
}

func (d *decoder) field(name, want string, dst any) {
	raw, ok := d.fields[name]
	if d.err != nil || !ok || isNull(raw) {
		return
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			d.err = invalid(name, "%s.%s has the wrong type", name, te.Field)
			return
		}
		d.err = invalid(name, "%s must be %s", name, want)
	}
}

var invalid = chat.Invalid

var isNull = strictjson.IsNull

func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{' && json.Valid(raw)
}
