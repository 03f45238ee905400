package gemini

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/geminiapi"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
)

// Gemini's request types have one home, internal/geminiapi, shared with
// Beaver's own Gemini-native surface.
type (
	wireRequest           = geminiapi.Request
	content               = geminiapi.Content
	part                  = geminiapi.Part
	blob                  = geminiapi.Blob
	fileData              = geminiapi.FileData
	functionCall          = geminiapi.FunctionCall
	functionResponse      = geminiapi.FunctionResponse
	wireTool              = geminiapi.Tool
	functionDeclaration   = geminiapi.FunctionDeclaration
	toolConfig            = geminiapi.ToolConfig
	functionCallingConfig = geminiapi.FunctionCallingConfig
	generationConfig      = geminiapi.GenerationConfig
)

// encodeRequest translates an OpenAI request to generateContent:
//   - system and developer messages join systemInstruction;
//   - assistant → role "model", its tool_calls → functionCall parts; tool
//     messages → functionResponse parts in a user turn, named after the tool
//     call they answer, with the JSON object the tool returned as response
//     or {"content": text} when it returned something else; consecutive
//     turns of one role merge;
//   - images: data: URLs → inlineData, http(s) URLs → fileData with the
//     media type guessed from the file extension;
//   - max_tokens, temperature, top_p, stop → generationConfig; json_object
//     → responseMimeType application/json, json_schema → the same plus
//     responseSchema;
//   - tools → functionDeclarations, tool_choice → functionCallingConfig.
//
// Gemini's schema dialect (an OpenAPI subset) rejects some JSON Schema
// keywords, so "$schema" and "additionalProperties" are removed from tool
// parameters and response schemas.
func encodeRequest(req *chat.Request) ([]byte, error) {
	w, err := buildRequest(req)
	if err != nil {
		return nil, err
	}
	return json.Marshal(w)
}

// buildRequest is encodeRequest before the JSON encoding.
func buildRequest(req *chat.Request) (*wireRequest, error) {
	if req.ChoiceCount() > 1 {
		// One completion per request in this format; n > 1 is refused, not
		// silently answered with one choice.
		return nil, &chat.InvalidError{Message: "n > 1 is not supported by this model's provider", Param: "n"}
	}
	var w wireRequest
	var system []part
	toolNames := map[string]string{} // tool call id → function name
	for i, m := range req.Messages {
		var role string
		var parts []part
		var err error
		switch m.Role {
		case chat.RoleSystem, chat.RoleDeveloper:
			if t := m.Content.Text(); t != "" {
				system = append(system, part{Text: t})
			}
			continue
		case chat.RoleAssistant:
			role = "model"
			parts, err = messageParts(i, &m)
			for _, tc := range m.ToolCalls {
				toolNames[tc.ID] = tc.Function.Name
				parts = append(parts, part{FunctionCall: &functionCall{Name: tc.Function.Name, Args: argsObject(tc.Function.Arguments)},
					ThoughtSignature: tc.ThoughtSignature()})
			}
		case chat.RoleTool:
			role = "user"
			name := toolNames[m.ToolCallID]
			if name == "" {
				name = m.Name
			}
			if name == "" {
				return nil, &chat.InvalidError{Message: fmt.Sprintf("messages[%d].tool_call_id %q matches no earlier tool call", i, m.ToolCallID)}
			}
			parts = []part{{FunctionResponse: &functionResponse{Name: name, Response: toolResponse(m.Content.Text())}}}
		default:
			role = "user"
			parts, err = messageParts(i, &m)
		}
		if err != nil {
			return nil, err
		}
		if len(parts) == 0 {
			continue
		}
		if n := len(w.Contents); n > 0 && w.Contents[n-1].Role == role {
			w.Contents[n-1].Parts = append(w.Contents[n-1].Parts, parts...)
		} else {
			w.Contents = append(w.Contents, content{Role: role, Parts: parts})
		}
	}
	if len(w.Contents) == 0 {
		return nil, &chat.InvalidError{Message: "the request needs at least one non-system message with content"}
	}
	if len(system) > 0 {
		w.SystemInstruction = &content{Parts: system}
	}

	gc := generationConfig{Temperature: req.Temperature, TopP: req.TopP, MaxOutputTokens: req.MaxTokens, StopSequences: req.Stop}
	switch req.ResponseFormatType() {
	case "json_object":
		gc.ResponseMimeType = "application/json"
	case "json_schema":
		gc.ResponseMimeType = "application/json"
		gc.ResponseSchema = sanitizeSchema(req.JSONSchema())
	}
	if gc.Temperature != nil || gc.TopP != nil || gc.MaxOutputTokens != nil || len(gc.StopSequences) > 0 || gc.ResponseMimeType != "" {
		w.GenerationConfig = &gc
	}

	if len(req.Tools) > 0 {
		decls := make([]functionDeclaration, 0, len(req.Tools))
		for _, t := range req.Tools {
			decls = append(decls, functionDeclaration{Name: t.Function.Name, Description: t.Function.Description,
				Parameters: parametersSchema(t.Function.Parameters)})
		}
		w.Tools = []wireTool{{FunctionDeclarations: decls}}
		tc, err := encodeToolChoice(req.ToolChoice)
		if err != nil {
			return nil, err
		}
		w.ToolConfig = tc
	}
	return &w, nil
}

func messageParts(i int, m *chat.Message) ([]part, error) {
	var parts []part
	for _, p := range m.Content.Parts() {
		switch p.Type {
		case chat.PartText:
			if p.Text != "" {
				parts = append(parts, part{Text: p.Text})
			}
		case chat.PartImageURL:
			u := p.ImageURL.URL
			if strings.HasPrefix(u, "data:") {
				mime, data, err := upstream.ParseDataURL(u)
				if err != nil {
					return nil, &chat.InvalidError{Message: fmt.Sprintf("messages[%d]: %v", i, err)}
				}
				parts = append(parts, part{InlineData: &blob{MimeType: mime, Data: data}})
			} else {
				parts = append(parts, part{FileData: &fileData{MimeType: guessImageType(u), FileURI: u}})
			}
		}
	}
	return parts, nil
}

// guessImageType guesses an image's media type from its URL's extension
// (JPEG when unknown: the most common kind of image on the web).
func guessImageType(u string) string {
	p, _, _ := strings.Cut(u, "#")
	p, _, _ = strings.Cut(p, "?")
	switch strings.ToLower(path.Ext(p)) {
	case ".png":
		return "image/png"
	case ".webp":
		return "image/webp"
	case ".gif":
		return "image/gif"
	case ".heic":
		return "image/heic"
	case ".heif":
		return "image/heif"
	}
	return "image/jpeg"
}

// argsObject turns an arguments string into the object functionCall.args
// needs ({} when it is not one).
func argsObject(args string) json.RawMessage {
	b := bytes.TrimSpace([]byte(args))
	if len(b) > 0 && b[0] == '{' && json.Valid(b) {
		return b
	}
	return json.RawMessage(`{}`)
}

// toolResponse wraps a tool's output for functionResponse.response, which
// must be an object.
func toolResponse(text string) json.RawMessage {
	b := bytes.TrimSpace([]byte(text))
	if len(b) > 0 && b[0] == '{' && json.Valid(b) {
		return b
	}
	out, _ := json.Marshal(map[string]string{"content": text})
	return out
}

// parametersSchema prepares a tool's parameters: Gemini rejects an OBJECT
// schema without properties, so a function without parameters sends none.
func parametersSchema(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var probe struct {
		Type       string          `json:"type"`
		Properties json.RawMessage `json:"properties"`
	}
	if json.Unmarshal(raw, &probe) == nil && probe.Type == "object" {
		if p := bytes.TrimSpace(probe.Properties); len(p) == 0 || string(p) == "{}" || string(p) == "null" {
			return nil
		}
	}
	return sanitizeSchema(raw)
}

// sanitizeSchema removes the JSON Schema keywords Gemini's schema rejects.
func sanitizeSchema(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return raw
	}
	out, err := json.Marshal(strip(v))
	if err != nil {
		return raw
	}
	return out
}

func strip(v any) any {
	switch x := v.(type) {
	case map[string]any:
		delete(x, "$schema")
		delete(x, "additionalProperties")
		for k, e := range x {
			x[k] = strip(e)
		}
	case []any:
		for i, e := range x {
			x[i] = strip(e)
		}
	}
	return v
}

// encodeToolChoice maps tool_choice: auto → AUTO, none → NONE, required →
// ANY, a named function → ANY limited to that name.
func encodeToolChoice(raw json.RawMessage) (*toolConfig, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		mode := map[string]string{"auto": "AUTO", "none": "NONE", "required": "ANY"}[s]
		if mode == "" {
			return nil, &chat.InvalidError{Message: fmt.Sprintf("tool_choice %q is not supported", s)}
		}
		return &toolConfig{FunctionCallingConfig: functionCallingConfig{Mode: mode}}, nil
	}
	var obj struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(raw, &obj) != nil || obj.Function.Name == "" {
		return nil, &chat.InvalidError{Message: "tool_choice must name a function"}
	}
	return &toolConfig{FunctionCallingConfig: functionCallingConfig{Mode: "ANY", AllowedFunctionNames: []string{obj.Function.Name}}}, nil
}
