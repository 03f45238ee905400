// Package tokens counts text in the public tokenizers some providers bill
// with: OpenAI's tiktoken encodings, which github.com/tiktoken-go/tokenizer
// embeds (nothing is downloaded at run time). Which encoding a model uses is
// its provider's configuration (upstream.Config.Tokenizers).
package tokens

import (
	"fmt"
	"sync"
	"unicode"
	"unicode/utf8"

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

// LastCut returns the last position i in text (0 < i < len(text)) at which
// Count(text) = Count(text[:i]) + Count(text[i:]) in both encodings, or 0
// when text has none. A count of a long text can then be taken in parts
// without keeping the text whole (a stream's received text).
//
// Both encodings split text into pieces by a pattern before merging bytes
// within a piece, so any piece boundary is such a position. These are
// boundaries in both patterns: after a letter, where a space and a letter
// follow (the space opens the next word's piece: " word"), and after a
// letter, where a punctuation mark other than an apostrophe follows (a
// letter run ends there; an apostrophe may continue it as "'s" in
// o200k_base). Neither pattern looks behind, and a letter run never looks
// ahead, so each side is split the same way on its own.
func LastCut(text []byte) int {
	for i := len(text) - 1; i > 0; {
		r, size := utf8.DecodeRune(text[i:])
		prev, psize := utf8.DecodeLastRune(text[:i])
		if psize == 0 || prev == utf8.RuneError || !unicode.IsLetter(prev) {
			i -= max(psize, 1)
			continue
		}
		switch {
		case r == ' ' && i+1 < len(text):
			if next, _ := utf8.DecodeRune(text[i+1:]); next != utf8.RuneError && unicode.IsLetter(next) {
				return i
			}
		case r != utf8.RuneError && r != '\'' && r < unicode.MaxRune && unicode.IsPunct(r) && size > 0:
			return i
		}
		i -= psize
	}
	return 0
}
