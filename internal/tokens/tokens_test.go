package tokens_test

import (
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
