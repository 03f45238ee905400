package reasoning_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/reasoning"
)

const sig = "EpwICpkIAXLI2nxlU6gsWZaZHRYkX1orzuM8vSUFwaAt1JRx"

func call(id, signature string) chat.ToolCall {
	return chat.ToolCall{ID: id, Type: "function", Function: chat.FunctionCall{Name: "f", Arguments: "{}"},
		ExtraContent: chat.GoogleExtraContent(signature)}
}

func TestRoundTrip(t *testing.T) {
	s := reasoning.Collect([]chat.ToolCall{call("call_1", sig), call("call_2", ""), call("", "orphan")})
	tok := s.Token()
	if !strings.HasPrefix(tok, reasoning.Prefix) {
		t.Fatalf("token %q", tok)
	}
	got := reasoning.Parse(tok)
	if len(got.ThoughtSignatures) != 1 || got.ThoughtSignatures["call_1"] != sig {
		t.Fatalf("parsed %+v", got)
	}
	// Applied to the calls sent back, which lost their extra_content.
	back := []chat.ToolCall{call("call_1", ""), call("call_2", ""), call("call_3", "own")}
	got.Apply(back)
	if back[0].ThoughtSignature() != sig || back[1].ExtraContent != nil || back[2].ThoughtSignature() != "own" {
		t.Fatalf("applied %+v", back)
	}
	// A call's own signature wins over the token's.
	own := []chat.ToolCall{call("call_1", "mine")}
	got.Apply(own)
	if own[0].ThoughtSignature() != "mine" {
		t.Fatalf("own signature replaced: %s", own[0].ExtraContent)
	}
}

func TestNothingToCarry(t *testing.T) {
	if tok := reasoning.Collect([]chat.ToolCall{call("c", "")}).Token(); tok != "" {
		t.Fatalf("token %q for no signatures", tok)
	}
	if !reasoning.Parse("").IsZero() {
		t.Fatal("empty token")
	}
}

func TestMerge(t *testing.T) {
	s := reasoning.Of("a", "1")
	s.Merge(reasoning.Of("b", "2"))
	s.Merge(reasoning.State{})
	if len(s.ThoughtSignatures) != 2 || s.ThoughtSignatures["b"] != "2" {
		t.Fatalf("merged %+v", s)
	}
}

// Whatever a client sends is read leniently: what is not a well-formed
// Beaver token carries nothing.
func TestParseIgnoresWhatIsNotAToken(t *testing.T) {
	enc := func(s string) string { return reasoning.Prefix + base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for name, tok := range map[string]string{
		"anthropic signature": "EvMCCkYICxgCKkCHP2cSuEdcJK/0rFwqES/ecn+VurRpNTwI4XNyM0vnNfGsc9OmE8YYHauwBZ/uaRpmlEn2I4==",
		"prefix only":         reasoning.Prefix,
		"not base64":          reasoning.Prefix + "!!!",
		"padded base64":       reasoning.Prefix + base64.URLEncoding.EncodeToString([]byte(`{"gemini":{"a":"b"}}`)),
		"not JSON":            enc("gemini"),
		"wrong shape":         enc(`{"gemini":["a","b"]}`),
		"wrong value type":    enc(`{"gemini":{"a":1}}`),
		"JSON array":          enc(`[1,2]`),
		"oversized":           enc(`{"gemini":{"a":"` + strings.Repeat("x", reasoning.MaxTokenLen) + `"}}`),
	} {
		if s := reasoning.Parse(tok); !s.IsZero() {
			t.Errorf("%s: parsed %+v", name, s)
		}
	}
	// Empty ids and signatures are dropped; unknown keys (a later version's) ignored.
	s := reasoning.Parse(enc(`{"gemini":{"":"x","a":"","b":"sig"},"future":{"k":1}}`))
	if len(s.ThoughtSignatures) != 1 || s.ThoughtSignatures["b"] != "sig" {
		t.Fatalf("parsed %+v", s)
	}
}

// Token never makes what Parse would refuse.
func TestTokenRespectsTheCap(t *testing.T) {
	if tok := reasoning.Of("a", strings.Repeat("x", reasoning.MaxTokenLen)).Token(); tok != "" {
		t.Fatalf("oversized token of %d bytes", len(tok))
	}
}
