package tokens_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/tokens"
)

// Counts in OpenAI's encodings, as tiktoken gives them.
func TestCount(t *testing.T) {
	for _, tt := range []struct {
		enc, text string
		want      int
	}{
		{tokens.O200kBase, "", 0},
		{tokens.O200kBase, "Hello from fake", 3},
		{tokens.O200kBase, "Hello from fake openai!", 6}, // open, ai, !
		{tokens.O200kBase, strings.Repeat("a ", 20000), 20001},
		{tokens.Cl100kBase, "user", 1},
		{tokens.O200kBase, "<|endoftext|>", 7}, // special-token text is plain text
		{tokens.O200kBase, "caf\xe9", 2},       // invalid UTF-8 counts as U+FFFD
	} {
		got, err := tokens.Count(tt.enc, tt.text)
		if err != nil || got != tt.want {
			t.Errorf("Count(%s, %.20q) = %d, %v; want %d", tt.enc, tt.text, got, err, tt.want)
		}
	}
	if _, err := tokens.Count("p50k_base", "x"); err == nil {
		t.Error("an encoding outside the known ones was accepted")
	}
}

// The longest prefix names a model's encoding.
func TestFor(t *testing.T) {
	table := map[string]string{"gpt-4": tokens.Cl100kBase, "gpt-4o": tokens.O200kBase, "o1": tokens.O200kBase}
	for model, want := range map[string]string{
		"gpt-4o-mini": tokens.O200kBase, "gpt-4-turbo": tokens.Cl100kBase, "gpt-4": tokens.Cl100kBase,
		"o1-mini": tokens.O200kBase, "deepseek-chat": "", "": "",
	} {
		if got := tokens.For(table, model); got != want {
			t.Errorf("For(%q) = %q, want %q", model, got, want)
		}
	}
}

// A text counted in parts cut at LastCut counts as the whole does, in both
// encodings, over texts mixing the pieces the patterns treat differently:
// words, contractions, capitals, digits, CJK and its punctuation, marks,
// emoji, whitespace runs, code and special-token text.
func TestLastCutCountsAsWhole(t *testing.T) {
	frags := []string{"hello", "World", "don't", "it's", "I'm", "ALLCAPS", "camelCase", "12345", "7",
		"中文字符", "。", "，", "日本語", "!", "?", ".", ",", ";", ":", "-", "—", "(", ")", "{", "}", "->", "_",
		"'", "\"", "’", " ", " ", " ", "  ", "\n", "\n\n", "\t", "🙂", "é", "e\u0301", "<|endoftext|>",
		"func(x) {", "return", "naïve", "Ω", "|", "/", "\r\n", "¿Qué?", "straße", "x'"}
	rng := rand.New(rand.NewPCG(27, 4))
	checked := 0
	for n := 0; n < 40; n++ {
		var b strings.Builder
		for k := 0; k < 120; k++ {
			b.WriteString(frags[rng.IntN(len(frags))])
		}
		text := []byte(b.String())
		for j := 1; j <= len(text); j += 1 + rng.IntN(9) {
			c := tokens.LastCut(text[:j])
			if c == 0 {
				continue
			}
			if c <= 0 || c >= j {
				t.Fatalf("LastCut(%q) = %d: outside the text", text[:j], c)
			}
			checked++
			for _, enc := range []string{tokens.O200kBase, tokens.Cl100kBase} {
				whole, _ := tokens.Count(enc, string(text[:j]))
				head, _ := tokens.Count(enc, string(text[:c]))
				tail, _ := tokens.Count(enc, string(text[c:j]))
				if head+tail != whole {
					t.Fatalf("%s: %q cut at %d (%q | %q) counts %d + %d, whole %d", enc, text[:j], c, text[max(0, c-8):c], text[c:min(j, c+8)], head, tail, whole)
				}
			}
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d cuts checked", checked)
	}
	for _, s := range []string{"", "a", " a", "a ", "中文", "12 34", "a'b", "a\u0301 b"} {
		if c := tokens.LastCut([]byte(s)); c != 0 {
			t.Errorf("LastCut(%q) = %d, want 0 (no boundary)", s, c)
		}
	}
	if c := tokens.LastCut([]byte("one two three")); c != len("one two") {
		t.Errorf("LastCut = %d, want the last word's space", c)
	}
}
