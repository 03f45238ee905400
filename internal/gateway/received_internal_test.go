package gateway

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/internal/tokens"
)

// o200k counts text as OpenAI's newer models do; it has no other method.
type o200k struct{ providers.Provider }

func (o200k) CountPrompt(context.Context, *chat.Request) (int, error) { return 0, providers.ErrNoCount }

func (o200k) CountText(_, text string) (int, bool) {
	n, err := tokens.Count(tokens.O200kBase, text)
	return n, err == nil
}

// A long stream's received text is counted in parts as it comes, holding
// about receivedKeep of it, and the parts add up to the count of the whole
// text, with the model's tokenizer and with the estimator alike.
func TestReceivedTextCountsAsWhole(t *testing.T) {
	words := []string{"the", " model", " streams", " reasoning", ",", " then", " 42", " answers", ".", "\n\n",
		" 中文", "。", " don't", " Über", " 🙂", " code(x)", " {", "}", " naïve", " ALLCAPS"}
	rng := rand.New(rand.NewPCG(27, 1))
	var whole strings.Builder
	var chunks []string
	for whole.Len() < 10*receivedKeep {
		var c strings.Builder
		for n := 1 + rng.IntN(6); n > 0; n-- {
			c.WriteString(words[rng.IntN(len(words))])
		}
		chunks = append(chunks, c.String())
		whole.WriteString(c.String())
	}
	for _, tt := range []struct {
		name string
		prov providers.Provider
	}{{"tokenizer", o200k{}}, {"estimator", nil}} {
		r := &run{prov: tt.prov}
		var got receivedText
		most := 0
		for _, c := range chunks {
			content := c
			got.add(r, &chat.Chunk{Choices: []chat.ChunkChoice{{Delta: chat.Delta{Content: &content}}}})
			most = max(most, len(got.tail))
		}
		if want := r.countText(whole.String()); got.total(r) != want {
			t.Errorf("%s: counted %d in parts, %d whole", tt.name, got.total(r), want)
		}
		if most > receivedKeep+64 {
			t.Errorf("%s: kept %d bytes of text uncounted, want about %d", tt.name, most, receivedKeep)
		}
	}
}

// Text without a boundary the tokenizer allows (one unspaced run) is kept
// whole rather than miscounted, and counted once it ends.
func TestReceivedTextWithoutBoundaryIsKept(t *testing.T) {
	r := &run{prov: o200k{}}
	var got receivedText
	run := strings.Repeat("字", receivedKeep) // 3 bytes each
	for i := 0; i < len(run); i += 300 {
		s := run[i:min(i+300, len(run))]
		got.add(r, &chat.Chunk{Choices: []chat.ChunkChoice{{Delta: chat.Delta{Content: &s}}}})
	}
	if len(got.tail) != len(run) {
		t.Fatalf("kept %d of %d bytes", len(got.tail), len(run))
	}
	if want := r.countText(run); got.total(r) != want {
		t.Errorf("counted %d, want %d", got.total(r), want)
	}
}
