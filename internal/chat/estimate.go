package chat

import "unicode/utf8"

// Constants of the prompt estimate. They lean high on purpose: the estimate
// decides how much money is held before the upstream answers, and the hold is
// released down to the real charge afterwards.
const (
	promptBytesPerToken = 3    // real tokenizers average ~4 bytes of English per token
	perMessageTokens    = 4    // role and separators, as OpenAI's cookbook counts them
	perRequestTokens    = 3    // the primed assistant reply
	perImageTokens      = 1600 // the most any provider bills for one normal image (Anthropic, ~1.15 MP)
	perToolTokens       = 8    // tool framing around its schema
)

// EstimatePromptTokens returns a deliberately conservative estimate of the
// prompt's tokens, used to hold money before the upstream answers:
//
//	ceil(B / 3) + 4 per message + 3 + 1600 per image + 8 per tool
//
// where B is the UTF-8 byte count of all message text, names, tool-call
// names and arguments, tool names, descriptions and parameter schemas, and
// the response_format and tool_choice values.
func (r *Request) EstimatePromptTokens() int {
	var bytes, images int
	for i := range r.Messages {
		m := &r.Messages[i]
		bytes += len(m.Name)
		for _, p := range m.Content.Parts() {
			switch p.Type {
			case PartImageURL:
				images++
			default:
				bytes += len(p.Text)
			}
		}
		for _, tc := range m.ToolCalls {
			bytes += len(tc.Function.Name) + len(tc.Function.Arguments)
		}
	}
	for _, t := range r.Tools {
		bytes += len(t.Function.Name) + len(t.Function.Description) + len(t.Function.Parameters)
	}
	bytes += len(r.ResponseFormat) + len(r.ToolChoice)
	return ceilDiv(bytes, promptBytesPerToken) +
		perMessageTokens*len(r.Messages) + perRequestTokens +
		perImageTokens*images + perToolTokens*len(r.Tools)
}

// EstimateTokens estimates the tokens of delivered completion text when the
// upstream never reported usage (a cut stream, a cancelled request):
//
//	ceil(ASCII bytes / 4) + one token per non-ASCII character
//
// English and code average about 4 characters per token in current
// tokenizers, while CJK and most other scripts take about one token per
// character. Call it once on the concatenated text: summing per-chunk
// estimates rounds up on every chunk.
func EstimateTokens(text string) int {
	ascii, other := 0, 0
	for i := 0; i < len(text); {
		if text[i] < utf8.RuneSelf {
			ascii++
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(text[i:])
		other++
		i += size
	}
	return ceilDiv(ascii, 4) + other
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
