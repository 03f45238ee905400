package finetune

import (
	"bufio"
	"bytes"
	"encoding/json"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/chat"
)

// The hold of a job must be a true upper bound of what it is charged:
// trained_tokens, which OpenAI reports as the tokens of the training file
// times the epochs trained. Beaver cannot download a fine-tune file once
// uploaded, so the bound is counted at upload (Analyze) and kept with it.
//
// Tokens: every tokenizer of OpenAI's models (byte-level BPE) spends at
// least one byte of text per token, and an example's JSON line holds all
// of its text (JSON escapes only ever lengthen it, and the tool schemas'
// keys are in it too). So an example trains on at most its line's bytes,
// plus the chat template's framing per message and per example
// (the bounds chat admission uses), plus an image bound per image part.
// A preference (DPO) example trains its input once with each of its two
// outputs: it counts twice.
//
// Epochs: n_epochs as given (1 to 50); "auto" (or none) is OpenAI's default
// heuristic, which aims at 3 epochs and then keeps epochs × examples
// within [100, 25000] with at most 25 epochs (OpenAI's cookbook, "Data
// preparation and analysis for chat model fine-tuning"): at most
// max(3, min(25, ceil(100 / examples))).
const (
	boundPerMessage = 8
	boundPerExample = 8
	maxEpochs       = 50
	autoMaxEpochs   = 25
	autoTarget      = 3
	autoMinExamples = 100
)

// Analysis is what admission needs of a training file.
type Analysis struct {
	Examples   int64
	TokenBound int64 // tokens one epoch trains on, at most
}

// Analyze reads a JSONL training file: one JSON object per line (blank
// lines skipped). A file that is not that is 400.
func Analyze(content []byte) (Analysis, error) {
	var a Analysis
	sc := bufio.NewScanner(bytes.NewReader(content))
	sc.Buffer(make([]byte, 0, 64<<10), len(content)+1)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var ex map[string]any
		if err := json.Unmarshal(b, &ex); err != nil {
			return Analysis{}, apierr.Invalid("the training file is not JSONL: line %d is not a JSON object", line).WithParam("file")
		}
		var c counts
		c.walk(ex)
		bound := int64(len(b)) + boundPerMessage*c.messages + boundPerExample + chat.ImageTokenBound*c.images
		if _, dpo := ex["preferred_output"]; dpo {
			bound *= 2
		}
		a.Examples++
		a.TokenBound += bound
	}
	if err := sc.Err(); err != nil {
		return Analysis{}, apierr.Invalid("the training file cannot be read as JSONL: %v", err).WithParam("file")
	}
	if a.Examples == 0 {
		return Analysis{}, apierr.Invalid("the training file has no examples").WithParam("file")
	}
	return a, nil
}

type counts struct{ messages, images int64 }

// walk counts the messages (objects with a role) and image parts of v.
func (c *counts) walk(v any) {
	switch t := v.(type) {
	case map[string]any:
		if _, ok := t["role"]; ok {
			c.messages++
		}
		if typ, _ := t["type"].(string); typ == "image_url" || typ == "input_image" {
			c.images++
		}
		for _, x := range t {
			c.walk(x)
		}
	case []any:
		for _, x := range t {
			c.walk(x)
		}
	}
}

// EpochBound is the most epochs a job can train: n as given, or the bound
// of OpenAI's "auto" for a file of examples (n = 0).
func EpochBound(n, examples int64) int64 {
	if n > 0 {
		return n
	}
	if examples <= 0 {
		return autoMaxEpochs
	}
	e := (autoMinExamples + examples - 1) / examples
	return max(autoTarget, min(autoMaxEpochs, e))
}
