// Package tokens counts text in the public tokenizers some providers bill
// with: OpenAI's tiktoken encodings, which github.com/tiktoken-go/tokenizer
// embeds (nothing is downloaded at run time). Which encoding a model uses is
// its provider's configuration (upstream.Config.Tokenizers).
package tokens

import (
	"fmt"
	"sync"

	"github.com/tiktoken-go/tokenizer/codec"
)

// Encodings.
const (
	O200kBase  = "o200k_base"  // gpt-4o, gpt-4.1, gpt-5, the o-series
	Cl100kBase = "cl100k_base" // gpt-4, gpt-4-turbo, gpt-3.5-turbo
)

// Known reports whether enc is an encoding Count supports.
func Known(enc string) bool { return enc == O200kBase || enc == Cl100kBase }

var (
	mu     sync.Mutex
	codecs = map[string]*codec.Codec{}
)

// codecOf returns enc's codec, built on first use: its vocabulary is a
// large map, so a gateway that never counts never builds it. The codecs are
// made by name, not through tokenizer.Get, so that only these two
// vocabularies are linked in.
func codecOf(enc string) (*codec.Codec, error) {
	mu.Lock()
	defer mu.Unlock()
	if c, ok := codecs[enc]; ok {
		return c, nil
	}
	var c *codec.Codec
	switch enc {
	case O200kBase:
		c = codec.NewO200kBase()
	case Cl100kBase:
		c = codec.NewCl100kBase()
	default:
		return nil, fmt.Errorf("tokens: unknown encoding %q", enc)
	}
	// Invalid UTF-8 is counted as U+FFFD, as tiktoken does by default.
	c.SetErrorMode(codec.ErrorModeReplace)
	codecs[enc] = c
	return c, nil
}

// Count returns the tokens of text in encoding enc. Special-token text
// ("<|endoftext|>") counts as ordinary text, as in the OpenAI API, where a
// prompt cannot contain special tokens.
func Count(enc, text string) (int, error) {
	if text == "" {
		return 0, nil
	}
	c, err := codecOf(enc)
	if err != nil {
		return 0, err
	}
	n, err := c.Count(text)
	if err != nil {
		return 0, fmt.Errorf("tokens: count in %s: %w", enc, err)
	}
	return n, nil
}

// For returns the encoding a table of model-name prefixes gives model: the
// longest prefix that model starts with wins; "" when none does.
func For(table map[string]string, model string) string {
	best, enc := -1, ""
	for prefix, e := range table {
		if len(prefix) > best && len(model) >= len(prefix) && model[:len(prefix)] == prefix {
			best, enc = len(prefix), e
		}
	}
	return enc
}
