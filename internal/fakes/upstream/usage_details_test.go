package upstream_test

import (
	"encoding/json"
	"testing"

	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
)

// [[cached:N]] and [[reasoning:N]] come out in each format's own fields,
// complete and streamed.
func TestCachedAndReasoningDirectives(t *testing.T) {
	_, url := start(t, fakeupstream.Options{})
	// prompt: "hi [[cached:2]] [[reasoning:5]]" = 3 words + 3; reply 8 words
	text := "hi [[cached:2]] [[reasoning:5]]"
	_, body := post(t, url+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"`+text+`"}]}`)
	var oa struct {
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
			Prompt           struct {
				CachedTokens int `json:"cached_tokens"`
			} `json:"prompt_tokens_details"`
			Completion struct {
				ReasoningTokens int `json:"reasoning_tokens"`
			} `json:"completion_tokens_details"`
		} `json:"usage"`
	}
	_ = json.Unmarshal(body, &oa)
	if u := oa.Usage; u.PromptTokens != 6 || u.CompletionTokens != 13 || u.Prompt.CachedTokens != 2 || u.Completion.ReasoningTokens != 5 {
		t.Fatalf("openai usage %s", body)
	}
	_, body = post(t, url+"/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"`+text+`"}]}`)
	evs := events(t, body)
	if len(evs) < 2 || json.Unmarshal(evs[len(evs)-2].Data, &oa) != nil || oa.Usage.Prompt.CachedTokens != 2 || oa.Usage.Completion.ReasoningTokens != 5 {
		t.Fatalf("openai stream usage %s", body)
	}

	_, body = post(t, url+"/v1/messages", `{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"`+text+`"}]}`)
	var an struct {
		Usage struct {
			Input  int `json:"input_tokens"`
			Read   int `json:"cache_read_input_tokens"`
			Output int `json:"output_tokens"`
		} `json:"usage"`
	}
	_ = json.Unmarshal(body, &an)
	if u := an.Usage; u.Input != 4 || u.Read != 2 || u.Output != 13 {
		t.Fatalf("anthropic usage %s", body)
	}

	_, body = post(t, url+"/v1beta/models/g:generateContent", `{"contents":[{"role":"user","parts":[{"text":"`+text+`"}]}]}`)
	var ge struct {
		UsageMetadata map[string]int `json:"usageMetadata"`
	}
	_ = json.Unmarshal(body, &ge)
	if u := ge.UsageMetadata; u["promptTokenCount"] != 6 || u["cachedContentTokenCount"] != 2 || u["candidatesTokenCount"] != 8 ||
		u["thoughtsTokenCount"] != 5 || u["totalTokenCount"] != 19 {
		t.Fatalf("gemini usage %s", body)
	}
}
