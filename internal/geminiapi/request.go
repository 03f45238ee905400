package geminiapi

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/strictjson"
)

// accepted are the top-level fields Parse takes. safetySettings is accepted
// and ignored (Beaver has no safety filter to tune); model is what the
// SDKs may repeat from the path. Anything else is refused: Beaver forwards
// only what it can price.
var accepted = map[string]bool{
	"contents": true, "systemInstruction": true, "tools": true, "toolConfig": true,
	"generationConfig": true, "safetySettings": true, "model": true,
}

// generationFields are generationConfig's accepted fields: topK and
// thinkingConfig are accepted and ignored (chat has no equivalent).
var generationFields = map[string]bool{
	"temperature": true, "topP": true, "topK": true, "candidateCount": true, "maxOutputTokens": true,
	"stopSequences": true, "responseMimeType": true, "responseSchema": true, "responseJsonSchema": true,
	"thinkingConfig": true,
}

// Parse reads a generateContent body for model (the path's) into a chat
// request; stream says whether it came on :streamGenerateContent.
//   - contents: user text and inlineData images (→ data: URLs) and
//     fileData URIs (→ image URLs) make user messages; functionResponse
//     parts make tool messages answering the model's calls by id or name;
//     model turns make assistant messages, functionCall parts their
//     tool_calls with the thoughtSignature in chat's Google extra content;
//     thought parts are dropped (they are summaries, not the model's input);
//   - systemInstruction → a system message;
//   - tools.functionDeclarations → tools, toolConfig → tool_choice;
//   - generationConfig → max_tokens, temperature, top_p, stop,
//     response_format (responseMimeType application/json with or without a
//     schema).
func Parse(body []byte, model string, stream bool) (*chat.Request, error) {
	w, err := decode(body)
	if err != nil {
		return nil, err
	}
	req := &chat.Request{Model: model, Stream: stream}
	if w.SystemInstruction != nil {
		if t := joinText(w.SystemInstruction.Parts); t != "" {
			req.Messages = append(req.Messages, chat.Message{Role: chat.RoleSystem, Content: chat.TextContent(t)})
		}
	}
	if len(w.Contents) == 0 {
		return nil, invalid("contents", "contents must be a non-empty array")
	}
	var calls []pendingCall // the last model turn's calls, for functionResponse to answer
	for i := range w.Contents {
		msgs, next, err := translate(i, &w.Contents[i], calls)
		if err != nil {
			return nil, err
		}
		calls = next
		req.Messages = append(req.Messages, msgs...)
	}
	if err := applyGeneration(req, w.GenerationConfig); err != nil {
		return nil, err
	}
	if err := applyTools(req, w.Tools, w.ToolConfig); err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	return req, nil
}

// decode checks the body's fields and decodes it.
func decode(body []byte) (*Request, error) {
	fields, err := chat.DecodeFields(body)
	if err != nil {
		return nil, err
	}
	for name := range fields {
		if !accepted[name] {
			return nil, invalid(name, "unknown field %s: Beaver forwards only fields it can price (see the README's Gemini section)", name)
		}
	}
	if raw, ok := fields["generationConfig"]; ok && !isNull(raw) {
		var gc map[string]json.RawMessage
		if err := json.Unmarshal(raw, &gc); err != nil {
			return nil, invalid("generationConfig", "generationConfig must be an object")
		}
		for name := range gc {
			if !generationFields[name] {
				return nil, invalid("generationConfig."+name, "unknown field generationConfig.%s: Beaver forwards only fields it can price", name)
			}
		}
	}
	var w Request
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, invalid("", "invalid request: %v", err)
	}
	return &w, nil
}

// pendingCall is a model call a later functionResponse answers.
type pendingCall struct {
	id, name string
	answered bool
}

// translate turns one turn into chat messages; calls are the previous model
// turn's calls, and the answer's next are this turn's (for a model turn).
func translate(i int, c *Content, calls []pendingCall) (msgs []chat.Message, next []pendingCall, err error) {
	switch c.Role {
	case "model":
		m := chat.Message{Role: chat.RoleAssistant}
		var text strings.Builder
		for j, p := range c.Parts {
			switch {
			case p.Thought:
				continue
			case p.FunctionCall != nil:
				id := p.FunctionCall.ID
				if id == "" {
					id = fmt.Sprintf("call_%d_%d", i, j) // Gemini's calls often have no id; chat's must
				}
				args := "{}"
				if len(p.FunctionCall.Args) > 0 && !isNull(p.FunctionCall.Args) {
					args = string(p.FunctionCall.Args)
				}
				m.ToolCalls = append(m.ToolCalls, chat.ToolCall{ID: id, Type: "function",
					Function:     chat.FunctionCall{Name: p.FunctionCall.Name, Arguments: args},
					ExtraContent: chat.GoogleExtraContent(p.ThoughtSignature)})
				next = append(next, pendingCall{id: id, name: p.FunctionCall.Name})
			case p.Text != "":
				text.WriteString(p.Text)
			case p.InlineData != nil || p.FileData != nil || p.FunctionResponse != nil:
				return nil, nil, invalid("contents", "contents[%d].parts[%d]: a model turn takes text and functionCall parts", i, j)
			}
		}
		if text.Len() > 0 {
			m.Content = chat.TextContent(text.String())
		}
		if text.Len() == 0 && len(m.ToolCalls) == 0 {
			return nil, next, nil // only thoughts: nothing the model takes back
		}
		return []chat.Message{m}, next, nil
	case "user", "":
		var parts []chat.Part
		for j, p := range c.Parts {
			switch {
			case p.FunctionResponse != nil:
				tm, err := toolMessage(i, j, p.FunctionResponse, calls)
				if err != nil {
					return nil, nil, err
				}
				msgs = append(msgs, tm)
			case p.InlineData != nil:
				parts = append(parts, chat.Part{Type: chat.PartImageURL,
					ImageURL: &chat.ImageURL{URL: "data:" + p.InlineData.MimeType + ";base64," + p.InlineData.Data}})
			case p.FileData != nil:
				parts = append(parts, chat.Part{Type: chat.PartImageURL, ImageURL: &chat.ImageURL{URL: p.FileData.FileURI}})
			case p.FunctionCall != nil:
				return nil, nil, invalid("contents", "contents[%d].parts[%d]: functionCall belongs in a model turn", i, j)
			case p.Text != "":
				parts = append(parts, chat.Part{Type: chat.PartText, Text: p.Text})
			}
		}
		if len(parts) > 0 { // after the tool messages: chat wants the answers right after the calls
			msgs = append(msgs, chat.Message{Role: chat.RoleUser, Content: userContent(parts)})
		}
		return msgs, calls, nil
	}
	return nil, nil, invalid("contents", "contents[%d].role must be \"user\" or \"model\"", i)
}

// toolMessage answers the call with the response's id, or else the first
// unanswered one with its name.
func toolMessage(i, j int, r *FunctionResponse, calls []pendingCall) (chat.Message, error) {
	for k := range calls {
		c := &calls[k]
		if c.answered || (r.ID != "" && c.id != r.ID) || (r.ID == "" && c.name != r.Name) {
			continue
		}
		c.answered = true
		out := "{}"
		if len(r.Response) > 0 && !isNull(r.Response) {
			out = string(r.Response)
		}
		return chat.Message{Role: chat.RoleTool, ToolCallID: c.id, Name: c.name, Content: chat.TextContent(out)}, nil
	}
	return chat.Message{}, invalid("contents", "contents[%d].parts[%d].functionResponse %q answers no functionCall of the previous model turn", i, j, r.Name)
}

// userContent is plain text when there is only text, else parts.
func userContent(parts []chat.Part) chat.Content {
	if len(parts) == 1 && parts[0].Type == chat.PartText {
		return chat.TextContent(parts[0].Text)
	}
	return chat.PartsContent(parts...)
}

func joinText(parts []Part) string {
	var b strings.Builder
	for _, p := range parts {
		if p.Text != "" {
			if b.Len() > 0 {
				b.WriteString("\n")
			}
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

func applyGeneration(req *chat.Request, gc *GenerationConfig) error {
	if gc == nil {
		return nil
	}
	if gc.CandidateCount != nil && *gc.CandidateCount != 1 {
		return invalid("generationConfig.candidateCount", "candidateCount must be 1")
	}
	if gc.MaxOutputTokens != nil && *gc.MaxOutputTokens < 1 {
		return invalid("generationConfig.maxOutputTokens", "maxOutputTokens must be at least 1")
	}
	req.MaxTokens, req.Temperature, req.TopP, req.Stop = gc.MaxOutputTokens, gc.Temperature, gc.TopP, gc.StopSequences
	switch gc.ResponseMimeType {
	case "", "text/plain":
	case "application/json":
		schema := gc.ResponseJSONSchema
		if len(schema) == 0 || isNull(schema) {
			schema = openAPISchema(gc.ResponseSchema)
		}
		if len(schema) == 0 || isNull(schema) {
			req.ResponseFormat = json.RawMessage(`{"type":"json_object"}`)
			break
		}
		rf, err := json.Marshal(map[string]any{"type": "json_schema",
			"json_schema": map[string]any{"name": "response", "schema": schema}})
		if err != nil {
			return invalid("generationConfig.responseSchema", "responseSchema must be a JSON object")
		}
		req.ResponseFormat = rf
	default:
		return invalid("generationConfig.responseMimeType", "responseMimeType must be text/plain or application/json")
	}
	return nil
}

func applyTools(req *chat.Request, tools []Tool, cfg *ToolConfig) error {
	for i, t := range tools {
		if len(t.FunctionDeclarations) == 0 {
			return invalid("tools", "tools[%d]: only functionDeclarations are supported (Google's server tools are billed beyond tokens)", i)
		}
		for _, d := range t.FunctionDeclarations {
			params := d.ParametersJSONSchema
			if len(params) == 0 {
				params = openAPISchema(d.Parameters)
			}
			req.Tools = append(req.Tools, chat.Tool{Type: "function",
				Function: chat.FunctionDef{Name: d.Name, Description: d.Description, Parameters: params}})
		}
	}
	if cfg == nil || len(req.Tools) == 0 {
		return nil
	}
	fc := cfg.FunctionCallingConfig
	switch fc.Mode {
	case "", "AUTO", "VALIDATED", "MODE_UNSPECIFIED":
		req.ToolChoice = json.RawMessage(`"auto"`)
	case "NONE":
		req.ToolChoice = json.RawMessage(`"none"`)
	case "ANY":
		req.ToolChoice = json.RawMessage(`"required"`)
		if len(fc.AllowedFunctionNames) == 1 {
			b, _ := json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": fc.AllowedFunctionNames[0]}})
			req.ToolChoice = b
		}
	default:
		return invalid("toolConfig.functionCallingConfig.mode", "mode must be AUTO, ANY or NONE")
	}
	return nil
}

// openAPISchema turns Gemini's OpenAPI-subset schema into JSON Schema for
// the other providers: its types are upper case ("OBJECT"), JSON Schema's
// lower case.
func openAPISchema(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || isNull(raw) {
		return raw
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return raw // Validate reports what is wrong with it
	}
	b, err := json.Marshal(lowerTypes(v))
	if err != nil {
		return raw
	}
	return b
}

func lowerTypes(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "type" {
				x[k] = strings.ToLower(s)
				continue
			}
			x[k] = lowerTypes(e)
		}
	case []any:
		for i, e := range x {
			x[i] = lowerTypes(e)
		}
	}
	return v
}

var isNull = strictjson.IsNull

func invalid(param, format string, args ...any) error { return chat.Invalid(param, format, args...) }
