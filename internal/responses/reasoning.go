package responses

import (
	"encoding/json"
	"strings"

	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/reasoning"
)

// Reasoning items carry, both ways, what a reasoning model needs back on
// its next turn. Out, an answer's reasoning text is the item's summary and
// Beaver's reasoning token (the calls' Gemini thought signatures, see
// internal/reasoning) its encrypted_content. In, a reasoning item sent
// back (OpenAI's SDKs pass response.output into input as it came) gives
// its text to the assistant message that follows it in its turn, as
// reasoning_content (DeepSeek's thinking mode needs it back), and its
// token's signatures to the function calls they belong to.

// reasoningItem is the output item of an answer's reasoning text and
// token; the stream opens it empty and fills it as they come.
func reasoningItem(text, token string) Item {
	it := Item{Type: ItemReasoning, ID: ids.New(reasoningIDPrefix), EncryptedContent: token}
	if text != "" {
		it.Summary = []Part{{Type: PartSummaryText, Text: text}}
	}
	return it
}

// readReasoning reads a reasoning item of input: its text (the
// reasoning_text parts of its content, which hold raw reasoning, else the
// summary_text parts of its summary) and the state in its
// encrypted_content when that is Beaver's token. It is lenient, as
// reasoning items were always accepted and ignored: what is malformed, or
// encrypted by another provider (OpenAI's own), gives nothing.
func readReasoning(it *inputItem) (string, reasoning.State) {
	text := partsText(it.Content, PartReasoningText)
	if text == "" {
		text = partsText(it.Summary, PartSummaryText)
	}
	var token string
	if json.Unmarshal(it.EncryptedContent, &token) != nil {
		token = ""
	}
	return text, reasoning.Parse(token)
}

// partsText joins the text of raw's parts of type typ; raw that is not an
// array of parts gives "".
func partsText(raw json.RawMessage, typ string) string {
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &parts) != nil {
		return ""
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type == typ {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}
