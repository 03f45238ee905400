package providers_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/beaver-gateway/beaver/internal/chat"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/providers"
)

// Each adapter counts a prompt as its upstream reports it when generating:
// OpenAI's models with their tokenizer (no call), Anthropic and Gemini
// through their count endpoints.
func TestCountPrompt(t *testing.T) {
	weather := chat.Tool{Type: "function", Function: chat.FunctionDef{Name: "get_weather", Description: "Get the weather.",
		Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string","description":"The city."},"unit":{"type":"string","enum":["c","f"]}}}`)}}
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			e := setup(t, f.format, fakeupstream.Options{}, func(c *providers.Config) { c.Tokenizers = providers.OpenAITokenizers })
			c, ok := e.p.(providers.Counter)
			if !ok {
				t.Fatal("the adapter counts no tokens")
			}
			if f.format == providers.FormatResponses {
				// No count endpoint, and no published prompt rendering.
				if _, err := c.CountPrompt(context.Background(), request(f.model, "hi")); !errors.Is(err, providers.ErrNoCount) {
					t.Errorf("CountPrompt: %v, want ErrNoCount", err)
				}
				return
			}
			for _, tools := range []bool{false, true} {
				req := request(f.model, "count these four words")
				req.Messages = append([]chat.Message{{Role: chat.RoleSystem, Content: chat.TextContent("be brief")}}, req.Messages...)
				if tools {
					req.Tools = []chat.Tool{weather}
				}
				resp, err := e.p.Complete(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				e.fake.Reset()
				n, err := c.CountPrompt(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				reported := resp.Usage.PromptTokens
				switch {
				case f.format == providers.FormatOpenAI && tools:
					// OpenAI does not publish how it renders tool definitions:
					// counted from above, never beyond admission's bound.
					if n < reported || n > req.PromptTokenBound() {
						t.Errorf("with tools: counted %d, the upstream reports %d, the bound is %d", n, reported, req.PromptTokenBound())
					}
				case n != reported:
					t.Errorf("tools %v: counted %d, the upstream reports %d", tools, n, reported)
				}
				reqs := e.fake.Requests()
				switch f.format {
				case providers.FormatOpenAI:
					if len(reqs) != 0 {
						t.Errorf("the tokenizer called the upstream: %+v", reqs)
					}
				case providers.FormatAnthropic:
					var body map[string]any
					if len(reqs) != 1 || reqs[0].Path != "/v1/messages/count_tokens" || json.Unmarshal(reqs[0].Body, &body) != nil ||
						body["model"] != f.model || body["system"] != "be brief" || body["max_tokens"] != nil || reqs[0].Header.Get("x-api-key") != "test-key" {
						t.Errorf("count request %+v", reqs)
					}
				case providers.FormatGemini:
					var body struct {
						G struct {
							Model    string `json:"model"`
							Contents []any  `json:"contents"`
						} `json:"generateContentRequest"`
					}
					if len(reqs) != 1 || reqs[0].Path != "/v1beta/models/"+f.model+":countTokens" || json.Unmarshal(reqs[0].Body, &body) != nil ||
						body.G.Model != "models/"+f.model || len(body.G.Contents) != 1 || reqs[0].Header.Get("x-goog-api-key") != "test-key" {
						t.Errorf("count request %+v %s", reqs, reqs[0].Body)
					}
				}
			}
		})
	}
}

// A model without a public tokenizer in an OpenAI-format provider cannot be
// counted; completion text is counted only in a public tokenizer.
func TestCountWithoutTokenizer(t *testing.T) {
	e := setup(t, providers.FormatOpenAI, fakeupstream.Options{}, func(c *providers.Config) { c.Tokenizers = providers.OpenAITokenizers })
	c := e.p.(providers.Counter)
	if _, err := c.CountPrompt(context.Background(), request("deepseek-chat", "hi")); !errors.Is(err, providers.ErrNoCount) {
		t.Fatalf("deepseek-chat: %v", err)
	}
	if n, ok := c.CountText("gpt-4o-mini", "Hello from fake"); !ok || n != 3 {
		t.Fatalf("gpt-4o-mini text: %d %v", n, ok)
	}
	if _, ok := c.CountText("deepseek-chat", "Hello"); ok {
		t.Fatal("deepseek-chat text counted")
	}
	for _, f := range formats[1:] {
		if _, ok := setup(t, f.format, fakeupstream.Options{}, nil).p.(providers.Counter).CountText(f.model, "Hello"); ok {
			t.Errorf("%s: text counted without a public tokenizer", f.name)
		}
	}
}
