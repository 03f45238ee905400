package upstream

import (
	"encoding/json"
	"strings"
	"sync"

	"github.com/tiktoken-go/tokenizer/codec"
)

// OpenAI's own models count their prompt the way OpenAI does: the model's
// tiktoken encoding (o200k_base for gpt-4o, gpt-4.1, gpt-5 and the
// o-series; cl100k_base for gpt-4, gpt-4-turbo and gpt-3.5-turbo) over the
// chat template of OpenAI's cookbook (num_tokens_from_messages and
// num_tokens_for_tools, gpt-4o's constants). Other models served in the
// OpenAI format (DeepSeek, xAI, test names) keep the word rule.

// oaEncoding is the encoding OpenAI counts model's tokens with; "" for a
// model that is not OpenAI's.
func oaEncoding(model string) string {
	switch {
	case strings.HasPrefix(model, "gpt-4o"), strings.HasPrefix(model, "chatgpt-4o"), strings.HasPrefix(model, "gpt-4.1"),
		strings.HasPrefix(model, "gpt-4.5"), strings.HasPrefix(model, "gpt-5"),
		strings.HasPrefix(model, "o1"), strings.HasPrefix(model, "o3"), strings.HasPrefix(model, "o4"):
		return "o200k_base"
	case strings.HasPrefix(model, "gpt-4"), strings.HasPrefix(model, "gpt-3.5"):
		return "cl100k_base"
	}
	return ""
}

// Image tokens: OpenAI's figure for a low-detail image, and for a
// 1024×1024 one in high detail (the fake never looks at the image).
const (
	oaImageLow  = 85
	oaImageHigh = 765
)

type oaCounter struct{ codec *codec.Codec }

var codecs sync.Map // encoding → *codec.Codec

func oaCodec(enc string) *codec.Codec {
	if c, ok := codecs.Load(enc); ok {
		return c.(*codec.Codec)
	}
	c := codec.NewCl100kBase()
	if enc == "o200k_base" {
		c = codec.NewO200kBase()
	}
	c.SetErrorMode(codec.ErrorModeReplace)
	actual, _ := codecs.LoadOrStore(enc, c)
	return actual.(*codec.Codec)
}

func (c oaCounter) n(s string) int {
	if s == "" {
		return 0
	}
	n, _ := c.codec.Count(s)
	return n
}

// oaPromptTokens counts r's prompt in enc: per message 3 + its role, text,
// name (+1), tool call id and tool calls (name and arguments); 3 to prime
// the reply; and the tool definitions.
func oaPromptTokens(enc string, r *oaRequest) int {
	c := oaCounter{oaCodec(enc)}
	n := 3
	for _, m := range r.Messages {
		n += 3 + c.n(m.Role) + c.n(m.ToolCallID)
		if m.Name != "" {
			n += 1 + c.n(m.Name)
		}
		var s string
		if json.Unmarshal(m.Content, &s) == nil {
			n += c.n(s)
		} else {
			var parts []struct {
				Type     string `json:"type"`
				Text     string `json:"text"`
				ImageURL *struct {
					Detail string `json:"detail"`
				} `json:"image_url"`
			}
			_ = json.Unmarshal(m.Content, &parts)
			for _, p := range parts {
				switch {
				case p.Type == "text":
					n += c.n(p.Text)
				case p.Type == "image_url" && p.ImageURL != nil && p.ImageURL.Detail == "low":
					n += oaImageLow
				case p.Type == "image_url":
					n += oaImageHigh
				}
			}
		}
		for _, tc := range m.ToolCalls {
			n += c.n(tc.Function.Name) + c.n(tc.Function.Arguments)
		}
	}
	return n + oaToolTokens(c, enc, r)
}

// oaToolTokens is the cookbook's count of function definitions: per
// function 7 (10 in cl100k_base) + "name:description"; 3 when it has
// properties, and per property 3 + "name:type:description" (an enum −3,
// and 3 + the item per item); 12 at the end.
func oaToolTokens(c oaCounter, enc string, r *oaRequest) int {
	if len(r.Tools) == 0 {
		return 0
	}
	funcInit := 7
	if enc == "cl100k_base" {
		funcInit = 10
	}
	n := 0
	for _, t := range r.Tools {
		f := t.Function
		n += funcInit + c.n(f.Name+":"+strings.TrimSuffix(f.Description, "."))
		var params struct {
			Properties map[string]struct {
				Type        string   `json:"type"`
				Description string   `json:"description"`
				Enum        []string `json:"enum"`
			} `json:"properties"`
		}
		_ = json.Unmarshal(f.Parameters, &params)
		if len(params.Properties) > 0 {
			n += 3
		}
		for name, p := range params.Properties {
			n += 3
			if len(p.Enum) > 0 {
				n -= 3
				for _, item := range p.Enum {
					n += 3 + c.n(item)
				}
			}
			n += c.n(name + ":" + p.Type + ":" + strings.TrimSuffix(p.Description, "."))
		}
	}
	return n + 12
}
