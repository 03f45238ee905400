package anthropic_test

import (
	"encoding/json"
	"testing"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers/anthropic"
)

// A batch request's params are the direct request's body, never streamed;
// a result's message and error read as a direct answer's.
func TestBatchTranslation(t *testing.T) {
	req, err := chat.ParseRequest([]byte(`{"model":"claude-x","stream":true,"max_tokens":20,
		"messages":[{"role":"system","content":"sys"},{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := anthropic.BatchParams(req)
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil || p["model"] != "claude-x" || p["system"] != "sys" || p["max_tokens"] != 20.0 || p["stream"] != nil {
		t.Fatalf("params %s", raw)
	}
	resp, err := anthropic.BatchMessage(json.RawMessage(`{"id":"msg_1","type":"message","role":"assistant","model":"claude-x",
		"content":[{"type":"text","text":"hello"}],"stop_reason":"end_turn",
		"usage":{"input_tokens":5,"output_tokens":2,"cache_creation_input_tokens":3,"cache_read_input_tokens":4}}`))
	if err != nil || resp.Choices[0].Message.Content.Text() != "hello" || resp.Usage.PromptTokens != 12 ||
		resp.Usage.PromptTokensDetails.CacheWriteTokens != 3 || resp.Usage.PromptTokensDetails.CachedTokens != 4 {
		t.Fatalf("%+v %v", resp, err)
	}
	for _, c := range []struct {
		raw    string
		status int
	}{
		{`{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}`, 400},
		{`{"type":"overloaded_error","message":"busy"}`, 529},
		{`not json`, 500},
	} {
		if e := anthropic.BatchError(json.RawMessage(c.raw)); e.Status != c.status {
			t.Fatalf("%s: status %d, want %d", c.raw, e.Status, c.status)
		}
	}
}
