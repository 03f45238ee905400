package responses

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/beaver-gateway/beaver/internal/chat"
)

// Input item types.
const (
	inputMessage            = "message"
	inputFunctionCall       = "function_call"
	inputFunctionCallOutput = "function_call_output"
	inputReasoning          = "reasoning"
	inputItemReference      = "item_reference"
)

// inputItem is any input item; which fields count depends on Type (a
// message may leave it out). Fields a type does not use (id, status, phase,
// annotations...) are ignored: they never reach the upstream.
type inputItem struct {
	Type      string          `json:"type"`
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	CallID    string          `json:"call_id"`
	Name      string          `json:"name"`
	Arguments *string         `json:"arguments"`
	Output    json.RawMessage `json:"output"`
	// A reasoning item's (read leniently, see readReasoning).
	Summary          json.RawMessage `json:"summary"`
	EncryptedContent json.RawMessage `json:"encrypted_content"`
}

// inputPart is one content part of an input message or function output.
type inputPart struct {
	Type     string  `json:"type"`
	Text     *string `json:"text"`
	ImageURL *string `json:"image_url"`
	FileID   *string `json:"file_id"`
	Detail   string  `json:"detail"`
	Refusal  *string `json:"refusal"`
}

// readInput turns instructions and input into chat messages:
//
//   - instructions → a leading system message;
//   - a string → one user message;
//   - message items → messages of their role (input_text → text parts,
//     input_image → image_url parts; an assistant's output_text and refusal
//     parts → its text);
//   - function_call items → tool_calls of the assistant message before them
//     (a new assistant message when the item before is not one);
//   - function_call_output items → tool messages;
//   - reasoning items (sent back from an earlier response) → the
//     reasoning_content of the assistant message their turn's next
//     message or function_call item lands in (nothing, when a user
//     message or a tool result comes first), and thought signatures of
//     the function calls their token names (see reasoning.go).
func (p *parser) readInput() {
	if p.err != nil {
		return
	}
	c := p.r.Chat
	if p.r.Instructions != nil && *p.r.Instructions != "" {
		c.Messages = append(c.Messages, chat.Message{Role: chat.RoleSystem, Content: chat.TextContent(*p.r.Instructions)})
	}
	raw, ok := p.fields["input"]
	if !ok {
		p.fail("input", "input is required: a string or an array of input items")
		return
	}
	var items []json.RawMessage
	var text string
	if json.Unmarshal(raw, &text) == nil {
		items = []json.RawMessage{userMessage(text)}
	} else if json.Unmarshal(raw, &items) != nil {
		p.fail("input", "input must be a string or an array of input items")
		return
	}
	if len(items) == 0 {
		p.fail("input", "input must not be empty")
		return
	}
	p.r.Input = items
	before := len(c.Messages)
	// A stored chain's items were accepted when stored, so an error names
	// an item of this request's input.
	for _, list := range [][]json.RawMessage{p.history, items} {
		for i, b := range list {
			var it inputItem
			if err := json.Unmarshal(b, &it); err != nil {
				p.fail("input", "input[%d] must be an input item object with fields of the right types", i)
				return
			}
			if err := p.addItem(i, &it); err != nil {
				p.err = err
				return
			}
		}
	}
	if len(c.Messages) == before {
		p.fail("input", "input has no message, function_call or function_call_output item")
	}
	for i := range c.Messages {
		p.signatures.Apply(c.Messages[i].ToolCalls)
	}
}

// userMessage is the message item of a string input.
func userMessage(text string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"type": inputMessage, "role": chat.RoleUser, "content": text})
	return b
}

// takeThinking returns the reasoning text read since the last assistant
// content, and forgets it.
func (p *parser) takeThinking() string {
	t := p.thinking
	p.thinking = ""
	return t
}

func (p *parser) addItem(i int, it *inputItem) error {
	c := p.r.Chat
	switch it.Type {
	case "", inputMessage:
		m, err := message(i, it)
		if err != nil {
			return err
		}
		if thinking := p.takeThinking(); m.Role == chat.RoleAssistant {
			m.ReasoningContent = thinking
		}
		c.Messages = append(c.Messages, m)
	case inputFunctionCall:
		if it.CallID == "" || it.Name == "" {
			return invalid("input", "input[%d]: a function_call needs call_id and name", i)
		}
		args := ""
		if it.Arguments != nil {
			args = *it.Arguments
		}
		tc := chat.ToolCall{ID: it.CallID, Type: "function", Function: chat.FunctionCall{Name: it.Name, Arguments: args}}
		if n := len(c.Messages); n > 0 && c.Messages[n-1].Role == chat.RoleAssistant {
			c.Messages[n-1].ToolCalls = append(c.Messages[n-1].ToolCalls, tc)
		} else {
			c.Messages = append(c.Messages, chat.Message{Role: chat.RoleAssistant, ToolCalls: []chat.ToolCall{tc}})
		}
		c.Messages[len(c.Messages)-1].ReasoningContent += p.takeThinking()
	case inputFunctionCallOutput:
		if it.CallID == "" {
			return invalid("input", "input[%d]: a function_call_output needs call_id", i)
		}
		content, err := functionOutput(i, it.Output)
		if err != nil {
			return err
		}
		p.takeThinking() // a turn's reasoning comes before its calls' results
		c.Messages = append(c.Messages, chat.Message{Role: chat.RoleTool, ToolCallID: it.CallID, Content: content})
	case inputReasoning:
		text, state := readReasoning(it)
		p.thinking += text
		p.signatures.Merge(state)
	case inputItemReference:
		return invalid("input", "input[%d]: item_reference is not supported: %s", i, notStored)
	default:
		return invalid("input", "input[%d].type %q is not supported (use message, function_call or function_call_output)", i, it.Type)
	}
	return nil
}

// message translates a message item.
func message(i int, it *inputItem) (chat.Message, error) {
	m := chat.Message{Role: it.Role}
	switch it.Role {
	case chat.RoleUser, chat.RoleSystem, chat.RoleDeveloper, chat.RoleAssistant:
	case "":
		return m, invalid("input", "input[%d].role is required (user, assistant, system or developer)", i)
	default:
		return m, invalid("input", "input[%d].role %q is not one of user, assistant, system, developer", i, it.Role)
	}
	if len(it.Content) == 0 || isNull(it.Content) {
		return m, invalid("input", "input[%d].content is required", i)
	}
	var text string
	if json.Unmarshal(it.Content, &text) == nil {
		m.Content = chat.TextContent(text)
		return m, nil
	}
	var parts []inputPart
	if json.Unmarshal(it.Content, &parts) != nil {
		return m, invalid("input", "input[%d].content must be a string or an array of content parts", i)
	}
	out := make([]chat.Part, 0, len(parts))
	for j, pt := range parts {
		cp, err := part(i, j, it.Role, &pt)
		if err != nil {
			return m, err
		}
		out = append(out, cp)
	}
	if it.Role == chat.RoleAssistant {
		// An assistant's earlier answer: its text, as one string.
		var b strings.Builder
		for _, cp := range out {
			b.WriteString(cp.Text)
		}
		m.Content = chat.TextContent(b.String())
		return m, nil
	}
	m.Content = chat.PartsContent(out...)
	return m, nil
}

// part translates one content part of message input[i] (role).
func part(i, j int, role string, pt *inputPart) (chat.Part, error) {
	where := func() string { return "input[" + strconv.Itoa(i) + "].content[" + strconv.Itoa(j) + "]" }
	switch pt.Type {
	case "input_text", "output_text":
		if pt.Type == "output_text" && role != chat.RoleAssistant {
			return chat.Part{}, invalid("input", "%s: output_text parts belong to assistant messages (use input_text)", where())
		}
		if pt.Text == nil {
			return chat.Part{}, invalid("input", "%s.text is required", where())
		}
		return chat.Part{Type: chat.PartText, Text: *pt.Text}, nil
	case "refusal":
		if role != chat.RoleAssistant || pt.Refusal == nil {
			return chat.Part{}, invalid("input", "%s: a refusal part belongs to an assistant message and needs refusal", where())
		}
		return chat.Part{Type: chat.PartText, Text: *pt.Refusal}, nil
	case "input_image":
		if role != chat.RoleUser {
			return chat.Part{}, invalid("input", "%s: images are only allowed in user messages", where())
		}
		if pt.FileID != nil && *pt.FileID != "" {
			return chat.Part{}, invalid("input", "%s: file_id is not supported (Beaver stores no files): send image_url, an http(s) or data: URL", where())
		}
		if pt.ImageURL == nil || *pt.ImageURL == "" {
			return chat.Part{}, invalid("input", "%s.image_url is required", where())
		}
		detail := pt.Detail
		if detail == "original" {
			detail = "high" // chat's closest
		}
		return chat.Part{Type: chat.PartImageURL, ImageURL: &chat.ImageURL{URL: *pt.ImageURL, Detail: detail}}, nil
	case "input_file", "input_audio":
		return chat.Part{}, invalid("input", "%s: content part type %q is not supported (use input_text or input_image)", where(), pt.Type)
	case "":
		return chat.Part{}, invalid("input", "%s.type is required", where())
	}
	return chat.Part{}, invalid("input", "%s: content part type %q is not supported (use input_text or input_image)", where(), pt.Type)
}

// functionOutput is a function_call_output's output: a string, or text
// parts (a tool message carries no images).
func functionOutput(i int, raw json.RawMessage) (chat.Content, error) {
	if len(raw) == 0 || isNull(raw) {
		return chat.Content{}, invalid("input", "input[%d].output is required", i)
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return chat.TextContent(s), nil
	}
	var parts []inputPart
	if json.Unmarshal(raw, &parts) != nil {
		return chat.Content{}, invalid("input", "input[%d].output must be a string or an array of input_text parts", i)
	}
	out := make([]chat.Part, 0, len(parts))
	for j, pt := range parts {
		if pt.Type != "input_text" || pt.Text == nil {
			return chat.Content{}, invalid("input", "input[%d].output[%d]: only input_text parts are supported in a function_call_output", i, j)
		}
		out = append(out, chat.Part{Type: chat.PartText, Text: *pt.Text})
	}
	return chat.PartsContent(out...), nil
}
