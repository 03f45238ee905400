package providers_test

import (
	"context"
	"io"
	"testing"

	"github.com/beaver-gateway/beaver/internal/chat"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
)

// Cached prompt tokens and reasoning tokens reach chat.Usage from each wire
// format, complete and streamed: OpenAI's prompt_tokens_details and
// completion_tokens_details; Anthropic's cache_read_input_tokens (its
// input_tokens excludes them; output_tokens includes thinking, with no
// breakdown); Gemini's cachedContentTokenCount (inside promptTokenCount) and
// thoughtsTokenCount (apart from candidatesTokenCount: added to the
// completion).
func TestUsageDetails(t *testing.T) {
	// prompt: 3 words + 3 for the message (OpenAI's count for its model);
	// reply: 8 words + 5 reasoning tokens
	text := "hi [[cached:2]] [[reasoning:5]]"
	oa := wantPrompt(t, "openai", text)
	want := map[string]chat.Usage{
		"openai": {PromptTokens: oa, CompletionTokens: 13, TotalTokens: oa + 13,
			PromptTokensDetails: &chat.PromptTokensDetails{CachedTokens: 2}, CompletionTokensDetails: &chat.CompletionTokensDetails{ReasoningTokens: 5}},
		"anthropic": {PromptTokens: 6, CompletionTokens: 13, TotalTokens: 19,
			PromptTokensDetails: &chat.PromptTokensDetails{CachedTokens: 2}},
		"google": {PromptTokens: 6, CompletionTokens: 13, TotalTokens: 19,
			PromptTokensDetails: &chat.PromptTokensDetails{CachedTokens: 2}, CompletionTokensDetails: &chat.CompletionTokensDetails{ReasoningTokens: 5}},
		// Perplexity's Agent API: input_tokens includes the cache reads;
		// the search Beaver offers is one search_web invocation.
		"perplexity": {PromptTokens: 6, CompletionTokens: 13, TotalTokens: 19,
			PromptTokensDetails: &chat.PromptTokensDetails{CachedTokens: 2}, CompletionTokensDetails: &chat.CompletionTokensDetails{ReasoningTokens: 5},
			ServerToolUse: map[string]int{"web_search": 1}},
	}
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			e := setup(t, f.format, fakeupstream.Options{}, nil)
			w := want[f.name]
			resp, err := e.p.Complete(context.Background(), request(f.model, text))
			if err != nil {
				t.Fatal(err)
			}
			usageWant(t, resp.Usage, &w)

			s, err := e.p.Stream(context.Background(), request(f.model, text))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			chunks, err := drain(s)
			if err != io.EOF {
				t.Fatalf("stream end %v", err)
			}
			usageWant(t, summarize(chunks).usage, &w)
			usageWant(t, s.Usage(), &w)
		})
	}
}
