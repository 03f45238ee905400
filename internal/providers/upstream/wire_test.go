package upstream_test

import (
	"testing"

	"github.com/beaver-gateway/beaver/internal/providers/upstream"
)

// A count endpoint's answer gives its count, or a 502 when it has none.
func TestTokenCount(t *testing.T) {
	if n, err := upstream.TokenCount([]byte(`{"input_tokens": 42}`), "input_tokens", "count"); n != 42 || err != nil {
		t.Fatalf("= %d, %v", n, err)
	}
	if n, err := upstream.TokenCount([]byte(`{"totalTokens":7,"promptTokensDetails":[]}`), "totalTokens", "count"); n != 7 || err != nil {
		t.Fatalf("= %d, %v", n, err)
	}
	for _, bad := range []string{`not json`, `{}`, `{"input_tokens": null}`, `{"input_tokens": -1}`, `{"input_tokens": "3"}`, `[]`} {
		_, err := upstream.TokenCount([]byte(bad), "input_tokens", "count")
		if e, ok := err.(*upstream.Error); !ok || e.Status != 502 {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
