package pricing_test

import (
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/pricing"
)

// realtime is priced like OpenAI's gpt-realtime: text $4/$16, cached
// $0.40, audio $32/$64, cached audio $0.40.
var realtime = pricing.MarkUpAs(pricing.Base{ModelID: "openai/gpt-realtime", Input: 4_000_000, Output: 16_000_000,
	CachedInput: 400_000, Reasoning: 16_000_000, CacheWrite: 4_000_000, CacheWrite1h: 4_000_000,
	AudioInput: 32_000_000, CachedAudioInput: 400_000, AudioOutput: 64_000_000}, pricing.MidRange)

// A realtime usage block is charged per modality: uncached text and audio
// input, cached text and audio, output text and audio, one ceiling.
func TestChargeAudioApart(t *testing.T) {
	// 789 input (313 text of which 256 cached, 476 audio of which 384
	// cached), 32 output (9 text, 23 audio).
	tok := pricing.Tokens{Prompt: 789, Completion: 32, Cached: 640, AudioPrompt: 476, CachedAudio: 384, AudioCompletion: 23}
	c := pricing.ChargeTokens(realtime, tok, time.Time{})
	p := realtime
	sum := 57*p.Input + 256*p.CachedInput + 92*p.AudioInput + 384*p.CachedAudioInput + 9*p.Output + 23*p.AudioOutput
	if want := (sum + 999_999) / 1_000_000; c.ChargedMicros != want {
		t.Fatalf("charged %d, want %d", c.ChargedMicros, want)
	}
	want := map[string]int64{"input": 57, "cached_input": 256, "input_audio": 92, "cached_input_audio": 384, "output": 9, "output_audio": 23}
	var lines int64
	for _, l := range c.Details.Lines {
		if want[l.Dimension] != l.Quantity {
			t.Errorf("%s: %d tokens, want %d", l.Dimension, l.Quantity, want[l.Dimension])
		}
		delete(want, l.Dimension)
		lines += l.CostMicros
	}
	if len(want) != 0 || lines+c.Details.RoundingMicros != c.ChargedMicros {
		t.Fatalf("lines %+v, missing %v", c.Details.Lines, want)
	}
	// Without audio counts the same tokens are text.
	text := pricing.ChargeTokens(realtime, pricing.Tokens{Prompt: 789, Completion: 32, Cached: 640}, time.Time{})
	if text.ChargedMicros >= c.ChargedMicros {
		t.Fatalf("text-only %d ≥ with audio %d", text.ChargedMicros, c.ChargedMicros)
	}
}

// The upper bound covers audio: holding prompt and completion at it pays
// for any mix of text and audio, cached or not.
func TestUpperBoundCoversAudio(t *testing.T) {
	b := realtime.UpperBound(time.Time{}, 1000, 0)
	if b.Input != realtime.AudioInput || b.Output != realtime.AudioOutput {
		t.Fatalf("bound in %d out %d, want the audio prices %d/%d", b.Input, b.Output, realtime.AudioInput, realtime.AudioOutput)
	}
	worst := pricing.ChargeTokens(realtime, pricing.Tokens{Prompt: 1000, Completion: 500, AudioPrompt: 1000, AudioCompletion: 500}, time.Time{})
	if held := pricing.Cost(b.Input, b.Output, b.Fee, 1000, 500); held < worst.ChargedMicros {
		t.Fatalf("held %d < charged %d", held, worst.ChargedMicros)
	}
	// Tokens reported beyond their totals are clamped, never negative.
	odd := pricing.ChargeTokens(realtime, pricing.Tokens{Prompt: 10, Completion: 5, AudioPrompt: 50, CachedAudio: 80, AudioCompletion: 9}, time.Time{})
	for _, l := range odd.Details.Lines {
		if l.Quantity < 0 {
			t.Fatalf("negative line %+v", l)
		}
	}
}
