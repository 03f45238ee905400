package upstream_test

import (
	"encoding/json"
	"strings"
	"testing"

	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
)

// The count endpoints answer in the real wire formats the prompt tokens the
// generating endpoints report, and refuse what the real APIs refuse.
func TestCountEndpoints(t *testing.T) {
	fake, url := start(t, fakeupstream.Options{})
	msgs := `"system":"be brief","messages":[{"role":"user","content":"count these four words"}]`
	resp, body := post(t, url+"/v1/messages/count_tokens", `{"model":"claude-3-5-haiku-20241022",`+msgs+`}`)
	// "be brief" 2 + 3, "count these four words" 4 + 3
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"input_tokens":12}` {
		t.Fatalf("anthropic count: %d %s", resp.StatusCode, body)
	}
	_, gen := post(t, url+"/v1/messages", `{"model":"claude-3-5-haiku-20241022","max_tokens":10,`+msgs+`}`)
	var m struct {
		Usage struct {
			InputTokens int `json:"input_tokens"`
		} `json:"usage"`
	}
	if json.Unmarshal(gen, &m) != nil || m.Usage.InputTokens != 12 {
		t.Fatalf("messages reports %s", gen)
	}
	// The count endpoint takes the prompt fields only.
	resp, body = post(t, url+"/v1/messages/count_tokens", `{"model":"c","max_tokens":10,`+msgs+`}`)
	if resp.StatusCode != 400 || !strings.Contains(string(body), `"max_tokens: Extra inputs are not permitted"`) ||
		!strings.Contains(string(body), `"invalid_request_error"`) {
		t.Fatalf("anthropic count with max_tokens: %d %s", resp.StatusCode, body)
	}

	contents := `"contents":[{"role":"user","parts":[{"text":"count these four words"}]}]`
	system := `"systemInstruction":{"parts":[{"text":"be brief"}]}`
	for _, tt := range []struct {
		body   string
		status int
		tokens int
	}{
		{`{` + contents + `}`, 200, 7}, // contents alone: no system instruction
		{`{"generateContentRequest":{"model":"models/gemini-1.5-flash",` + system + `,` + contents + `}}`, 200, 12},
		{`{"generateContentRequest":{` + contents + `}}`, 400, 0}, // its model is required
		{`{` + contents + `,"generateContentRequest":{"model":"models/gemini-1.5-flash",` + contents + `}}`, 400, 0},
	} {
		resp, body := post(t, url+"/v1beta/models/gemini-1.5-flash:countTokens", tt.body)
		var v struct {
			TotalTokens int `json:"totalTokens"`
			Details     []struct {
				Modality   string `json:"modality"`
				TokenCount int    `json:"tokenCount"`
			} `json:"promptTokensDetails"`
			Error *struct {
				Status string `json:"status"`
			} `json:"error"`
		}
		_ = json.Unmarshal(body, &v)
		switch {
		case resp.StatusCode != tt.status:
			t.Errorf("gemini count %s: %d %s", tt.body, resp.StatusCode, body)
		case tt.status == 200 && (v.TotalTokens != tt.tokens || len(v.Details) != 1 || v.Details[0].TokenCount != tt.tokens):
			t.Errorf("gemini count %s: %s, want %d", tt.body, body, tt.tokens)
		case tt.status == 400 && (v.Error == nil || v.Error.Status != "INVALID_ARGUMENT"):
			t.Errorf("gemini count %s: %s", tt.body, body)
		}
	}
	_, gen = post(t, url+"/v1beta/models/gemini-1.5-flash:generateContent", `{`+system+`,`+contents+`}`)
	if !strings.Contains(string(gen), `"promptTokenCount":12`) {
		t.Fatalf("generateContent reports %s", gen)
	}
	// PromptTokens is what the generating endpoints report.
	for _, r := range fake.Requests() {
		if strings.HasSuffix(r.Path, "count_tokens") || strings.HasSuffix(r.Path, ":countTokens") {
			continue
		}
		if n, err := fake.PromptTokens(r); err != nil || n != 12 {
			t.Errorf("PromptTokens(%s) = %d, %v", r.Path, n, err)
		}
	}
}

// OpenAI's own models count their prompt as OpenAI does; others keep the
// word rule.
func TestOpenAIModelsCountWithTheirTokenizer(t *testing.T) {
	_, url := start(t, fakeupstream.Options{})
	text := strings.Repeat("a ", 2000)
	for model, want := range map[string]int{
		"gpt-4o":        3 + 1 + 2001 + 3, // o200k_base: "a", 1999 × " a", " "
		"gpt-3.5-turbo": 3 + 1 + 2001 + 3, // cl100k_base, the same here
		"deepseek-chat": 2000 + 3,         // words + 3
	} {
		_, body := post(t, url+"/v1/chat/completions", `{"model":"`+model+`","messages":[{"role":"user","content":"`+text+`"}]}`)
		var v struct {
			Usage struct {
				PromptTokens int `json:"prompt_tokens"`
			} `json:"usage"`
		}
		if json.Unmarshal(body, &v) != nil || v.Usage.PromptTokens != want {
			t.Errorf("%s: %.200s, want %d prompt tokens", model, body, want)
		}
	}
}
