package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
)

type wireRequest struct {
	Model         string      `json:"model"`
	MaxTokens     int         `json:"max_tokens"`
	System        string      `json:"system,omitempty"`
	Messages      []message   `json:"messages"`
	StopSequences []string    `json:"stop_sequences,omitempty"`
	Temperature   *float64    `json:"temperature,omitempty"`
	TopP          *float64    `json:"top_p,omitempty"`
	Tools         []tool      `json:"tools,omitempty"`
	ToolChoice    *toolChoice `json:"tool_choice,omitempty"`
	Metadata      *metadata   `json:"metadata,omitempty"`
	Stream        bool        `json:"stream,omitempty"`
}

type message struct {
	Role    string  `json:"role"`
	Content []block `json:"content"`
}

// block is a content block, in requests and responses alike.
type block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	Source    *imageSource    `json:"source,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	// Content is a tool result's: a string or an array of blocks, in a
	// request's tool_result and in the answer's server tool results
	// (web_search_tool_result carries an array of web_search_result), kept
	// raw since Beaver only passes it along.
	Content  json.RawMessage `json:"content,omitempty"`
	Thinking string          `json:"thinking,omitempty"`
}

type imageSource struct {
	Type      string `json:"type"` // "base64" or "url"
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type toolChoice struct {
	Type                   string `json:"type"` // auto, any, tool, none
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

type metadata struct {
	UserID string `json:"user_id"`
}

// Instructions added to the system prompt for OpenAI's response_format,
// which the Messages API has no parameter for.
const (
	jsonObjectInstruction = "Respond with a single valid JSON object and nothing else: no prose, no code fences."
	jsonSchemaInstruction = "Respond with a single valid JSON value that conforms to this JSON Schema, and nothing else (no prose, no code fences):\n"
)

var emptySchema = json.RawMessage(`{"type":"object","properties":{}}`)

// encodeRequest translates an OpenAI request to the Messages API:
//   - system and developer messages (wherever they are) join the top-level
//     system prompt;
//   - response_format json_object / json_schema become a system instruction
//     to answer with JSON only (the schema is quoted in it);
//   - assistant tool_calls become tool_use blocks and tool messages become
//     tool_result blocks in a user turn; consecutive turns of one role merge;
//   - temperature is clamped to Anthropic's range [0, 1];
//   - parallel_tool_calls: false becomes disable_parallel_tool_use;
//   - user becomes metadata.user_id.
func encodeRequest(req *chat.Request, stream bool) ([]byte, error) {
	w, err := buildRequest(req, stream)
	if err != nil {
		return nil, err
	}
	return json.Marshal(w)
}

// buildRequest is encodeRequest before the JSON encoding.
func buildRequest(req *chat.Request, stream bool) (*wireRequest, error) {
	if req.ChoiceCount() > 1 {
		// One completion per request in this format; n > 1 is refused, not
		// silently answered with one choice.
		return nil, &chat.InvalidError{Message: "n > 1 is not supported by this model's provider", Param: "n"}
	}
	w := wireRequest{
		Model: req.Model, MaxTokens: DefaultMaxTokens, StopSequences: req.Stop,
		Temperature: req.Temperature, TopP: req.TopP, Stream: stream,
	}
	if req.MaxTokens != nil {
		w.MaxTokens = *req.MaxTokens
	}
	if t := w.Temperature; t != nil && *t > 1 {
		one := 1.0
		w.Temperature = &one
	}
	if req.User != "" {
		w.Metadata = &metadata{UserID: req.User}
	}

	var system []string
	for i, m := range req.Messages {
		switch m.Role {
		case chat.RoleSystem, chat.RoleDeveloper:
			if t := m.Content.Text(); t != "" {
				system = append(system, t)
			}
			continue
		}
		blocks, err := contentBlocks(i, &m)
		if err != nil {
			return nil, err
		}
		if len(blocks) == 0 {
			continue // Anthropic rejects empty turns
		}
		role := chat.RoleUser
		if m.Role == chat.RoleAssistant {
			role = chat.RoleAssistant
		}
		if n := len(w.Messages); n > 0 && w.Messages[n-1].Role == role {
			w.Messages[n-1].Content = append(w.Messages[n-1].Content, blocks...)
		} else {
			w.Messages = append(w.Messages, message{Role: role, Content: blocks})
		}
	}
	if w.Messages == nil {
		return nil, &chat.InvalidError{Message: "the request needs at least one non-system message with content"}
	}
	switch req.ResponseFormatType() {
	case "json_object":
		system = append(system, jsonObjectInstruction)
	case "json_schema":
		system = append(system, jsonSchemaInstruction+string(req.JSONSchema()))
	}
	w.System = strings.Join(system, "\n\n")

	for _, t := range req.Tools {
		schema := t.Function.Parameters
		if len(schema) == 0 || string(schema) == "null" {
			schema = emptySchema
		}
		w.Tools = append(w.Tools, tool{Name: t.Function.Name, Description: t.Function.Description, InputSchema: schema})
	}
	tc, err := encodeToolChoice(req)
	if err != nil {
		return nil, err
	}
	w.ToolChoice = tc
	return &w, nil
}

func contentBlocks(i int, m *chat.Message) ([]block, error) {
	if m.Role == chat.RoleTool {
		return []block{{Type: "tool_result", ToolUseID: m.ToolCallID, Content: textContent(m.Content.Text())}}, nil
	}
	var blocks []block
	for _, p := range m.Content.Parts() {
		switch p.Type {
		case chat.PartText:
			if p.Text != "" {
				blocks = append(blocks, block{Type: "text", Text: p.Text})
			}
		case chat.PartImageURL:
			src, err := imageSourceFor(p.ImageURL.URL)
			if err != nil {
				return nil, &chat.InvalidError{Message: fmt.Sprintf("messages[%d]: %v", i, err)}
			}
			blocks = append(blocks, block{Type: "image", Source: src})
		}
	}
	for _, tc := range m.ToolCalls {
		blocks = append(blocks, block{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: toolInput(tc.Function.Arguments)})
	}
	return blocks, nil
}

// toolInput turns OpenAI's arguments string into the JSON object Anthropic
// wants; arguments that are not an object (a model's broken output sent
// back) become {}.
func toolInput(args string) json.RawMessage {
	b := bytes.TrimSpace([]byte(args))
	if len(b) > 0 && b[0] == '{' && json.Valid(b) {
		return b
	}
	return json.RawMessage(`{}`)
}

// imageSourceFor turns a data: URL into a base64 source and an http(s) URL
// into a url source.
func imageSourceFor(u string) (*imageSource, error) {
	if strings.HasPrefix(u, "data:") {
		mime, data, err := upstream.ParseDataURL(u)
		if err != nil {
			return nil, err
		}
		return &imageSource{Type: "base64", MediaType: mime, Data: data}, nil
	}
	return &imageSource{Type: "url", URL: u}, nil
}

// encodeToolChoice maps tool_choice: auto → auto, none → none, required →
// any, a named function → tool.
// Without tools there is nothing to choose, and nothing is sent.
func encodeToolChoice(req *chat.Request) (*toolChoice, error) {
	if len(req.Tools) == 0 {
		return nil, nil
	}
	var tc *toolChoice
	if len(req.ToolChoice) > 0 {
		var s string
		if json.Unmarshal(req.ToolChoice, &s) == nil {
			switch s {
			case "auto":
				tc = &toolChoice{Type: "auto"}
			case "none":
				tc = &toolChoice{Type: "none"}
			case "required":
				tc = &toolChoice{Type: "any"}
			default:
				return nil, &chat.InvalidError{Message: fmt.Sprintf("tool_choice %q is not supported", s)}
			}
		} else {
			var obj struct {
				Function struct {
					Name string `json:"name"`
				} `json:"function"`
			}
			if json.Unmarshal(req.ToolChoice, &obj) != nil || obj.Function.Name == "" {
				return nil, &chat.InvalidError{Message: "tool_choice must name a function"}
			}
			tc = &toolChoice{Type: "tool", Name: obj.Function.Name}
		}
	}
	var parallel *bool
	if raw, ok := req.Extra["parallel_tool_calls"]; ok {
		_ = json.Unmarshal(raw, &parallel)
	}
	if parallel != nil && !*parallel {
		if tc == nil {
			tc = &toolChoice{Type: "auto"}
		}
		if tc.Type != "none" {
			tc.DisableParallelToolUse = true
		}
	}
	return tc, nil
}

// textContent is a block's content given as a string ("" leaves it out).
func textContent(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	b, _ := json.Marshal(s) // a string always marshals
	return b
}
