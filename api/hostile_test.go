package api_test

import (
	"strings"
	"testing"

	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/models"
)

// An adversarial pass over the inference routes: inputs built to exhaust
// the server or to slip past routing get a clear 4xx and cost nothing, and
// the spellings of a route that do reach it charge exactly once.
func TestHostileInputsCostNothing(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		before, _ := inf.balance(u.Token)
		noCharge := func(what string) {
			t.Helper()
			if after, reserved := inf.balance(u.Token); after != before || reserved != 0 {
				t.Fatalf("%s: balance %d → %d, reserved %d", what, before, after, reserved)
			}
			var n int64
			inf.DB.Model(&models.UsageLog{}).Where("account_id = ?", u.ID).Count(&n)
			if n != 0 || len(inf.Fake.Requests()) != 0 {
				t.Fatalf("%s: %d usage logs, %d upstream requests", what, n, len(inf.Fake.Requests()))
			}
		}

		// JSON nested deeper than any schema needs: refused before any work.
		deep := strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000)
		inf.do("POST", "/v1/chat/completions", key, `{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],`+
			`"tools":[{"type":"function","function":{"name":"f","parameters":`+deep+`}}]}`).wantError(400, "invalid_request")
		noCharge("deep JSON")
		inf.do("POST", "/v1/embeddings", key, `{"model":"openai/text-embedding-3-small","input":`+strings.Repeat("[", 20000)+strings.Repeat("]", 20000)+`}`).
			wantError(400, "invalid_request")
		noCharge("deep embeddings input")

		// More embedding inputs than OpenAI takes in one request.
		many := make([]string, 2049)
		for i := range many {
			many[i] = "x"
		}
		inf.do("POST", "/v1/embeddings", key, embedBody("openai/text-embedding-3-small", many)).wantError(400, "invalid_request")
		noCharge("2049 embedding inputs")

		// Encoded or doubled separators are not another way in.
		for _, p := range []string{"/v1/chat%2Fcompletions", "/v1//chat/completions", "/v1/./chat/completions", "/V1/chat/completions"} {
			inf.do("POST", p, key, chatBody("openai/gpt-4o-mini", "hi")).wantError(404, "not_found")
			noCharge(p)
		}

		// The spellings that are the chat route charge once each.
		for i, p := range []string{"/v1/chat/completions/", "/v1/models/openai%2Fgpt-4o-mini/chat"} {
			r := inf.do("POST", p, key, chatBody("openai/gpt-4o-mini", "hi")).want(200)
			after, _ := inf.balance(u.Token)
			inf.chargedOnce(u.ID, r.Header.Get("X-Beaver-Generation-Id"), r.num("usage.cost_micros"), before, after)
			before = after
			if n := len(inf.Fake.Requests()); n != i+1 {
				t.Fatalf("%s: %d upstream requests in all", p, n)
			}
		}
	})
}
