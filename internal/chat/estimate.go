package chat

import (
	"unicode/utf8"

	"github.com/beaver-gateway/beaver/internal/money"
)

// The prompt bound (PromptTokenBound) is what admission holds money for:
// the most tokens an upstream can report for the prompt, so that a request never costs more
// than was held. It is also what a prompt is billed at when the upstream
// never reported its count and Beaver cannot count it either (see the
// gateway's count.go): no public tokenizer, no count endpoint.
//
// The bound rests on this: every tokenizer the catalog's providers use
// (byte-level BPE for OpenAI, Anthropic, DeepSeek, xAI; SentencePiece with
// byte fallback for Gemini) spends at least one byte of input per token, so
// the UTF-8 byte count bounds the tokens of any text. What is not text is
// bounded by constants: chat-template framing per message and per request,
// images, and the system prompt a provider adds when tools are present
// (Anthropic's tool-use preamble is at most 346 tokens).
const (
	boundPerMessage   = 8   // role and separators (OpenAI counts 4; other templates more)
	boundPerRequest   = 8   // the primed assistant reply and template start
	boundPerTool      = 16  // tool framing around its schema
	boundToolPreamble = 512 // the tool-use system prompt a provider prepends when tools are given
)

// ImageTokenBound is what admission holds for one image: the most any
// provider bills for one normal image (Anthropic, ~1.15 MP). A count that
// cannot see an image's size uses it too.
const ImageTokenBound = 1600

// promptText is the text of a request that reaches the model's prompt, and
// what is not text.
type promptText struct {
	bytes, ascii, other int // UTF-8 bytes; ASCII bytes and other characters
	messages, images    int
	tools               int
}

func (p *promptText) add(s string) {
	p.bytes += len(s)
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			p.ascii++
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		p.other++
		i += size
	}
}

// scanPrompt collects message text, names, reasoning sent back, tool-call
// ids, names, arguments and extra content, tool names, descriptions and
// parameter schemas, and the response_format, tool_choice and stop values.
// Reasoning and extra content count wherever they go: DeepSeek reads an
// assistant turn's reasoning_content as prompt, Gemini a call's thought
// signature, and a client can send either (on /v1/messages and
// /v1/responses too, inside Beaver's reasoning token), so the hold must
// cover them even though the other providers never get them.
func (r *Request) scanPrompt() promptText {
	var p promptText
	p.messages, p.tools = len(r.Messages), len(r.Tools)
	for i := range r.Messages {
		m := &r.Messages[i]
		p.add(m.Name)
		p.add(m.ToolCallID)
		p.add(m.ReasoningContent)
		for _, part := range m.Content.Parts() {
			if part.Type == PartImageURL {
				p.images++
				continue
			}
			p.add(part.Text)
		}
		for _, tc := range m.ToolCalls {
			p.add(tc.ID)
			p.add(tc.Function.Name)
			p.add(tc.Function.Arguments)
			p.add(string(tc.ExtraContent))
		}
	}
	for _, t := range r.Tools {
		p.add(t.Function.Name)
		p.add(t.Function.Description)
		p.add(string(t.Function.Parameters))
	}
	for _, s := range r.Stop {
		p.add(s)
	}
	p.add(string(r.ResponseFormat))
	p.add(string(r.ToolChoice))
	return p
}

// PromptTokenBound returns an upper bound of the prompt's tokens:
//
//	B + 8 per message + 8 + 1600 per image + (512 + 16 per tool, when tools are given)
//
// where B is the UTF-8 byte count of the prompt's text (see scanPrompt).
func (r *Request) PromptTokenBound() int {
	p := r.scanPrompt()
	n := p.bytes + boundPerMessage*p.messages + boundPerRequest + ImageTokenBound*p.images
	if p.tools > 0 {
		n += boundToolPreamble + boundPerTool*p.tools
	}
	return n
}

// EstimatePromptTokens estimates the prompt's tokens where no tokenizer
// or count endpoint can count them (POST /v1/messages/count_tokens on such
// a model): the text as EstimateTokens counts it, plus OpenAI's chat
// template overhead (3 per message, 3 to prime the answer) and each image
// at its bound. An estimate, not a bound: holds use PromptTokenBound.
func (r *Request) EstimatePromptTokens() int {
	p := r.scanPrompt()
	return ceilDiv(p.ascii, 4) + p.other + 3*p.messages + 3 + ImageTokenBound*p.images
}

// EstimateTokens estimates the tokens of delivered completion text when the
// upstream never reported usage (a cut stream, a cancelled request):
//
//	ceil(ASCII bytes / 4) + one token per non-ASCII character
//
// English and code average about 4 characters per token in current
// tokenizers, while CJK and most other scripts take about one token per
// character. Call it once on the concatenated text, or add the parts to
// a TextEstimate: summing per-chunk estimates rounds up on every chunk.
func EstimateTokens(text string) int {
	var e TextEstimate
	e.Add(text)
	return e.Tokens()
}

// TextEstimate is EstimateTokens over a text given in parts, each cut
// between characters: the estimate of the whole without keeping it.
type TextEstimate struct{ ascii, other int }

// Add counts s after the parts added before.
func (e *TextEstimate) Add(s string) {
	var p promptText
	p.add(s)
	e.ascii += p.ascii
	e.other += p.other
}

// Tokens is EstimateTokens of the parts added, concatenated.
func (e TextEstimate) Tokens() int { return ceilDiv(e.ascii, 4) + e.other }

func ceilDiv(a, b int) int { return int(money.CeilDiv(int64(a), int64(b))) }
