package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/models"
)

// Cut streams and abandoned requests bill what they cost upstream, not
// Beaver's estimate (issue 26).

// lastTo is the last request the fake received on path.
func lastTo(t *testing.T, fake *fakeupstream.Server, path string) (fakeupstream.Recorded, int) {
	t.Helper()
	reqs, n := fake.Requests(), 0
	var last fakeupstream.Recorded
	for _, r := range reqs {
		if r.Path == path {
			last, n = r, n+1
		}
	}
	if n == 0 {
		t.Fatalf("no request to %s among %d", path, len(reqs))
	}
	return last, n
}

// usageLog is the usage log of generation id.
func (inf *inference) usageLog(id string) models.UsageLog {
	inf.t.Helper()
	var l models.UsageLog
	if err := inf.DB.Where("id = ?", id).Take(&l).Error; err != nil {
		inf.t.Fatalf("usage log %s: %v", id, err)
	}
	return l
}

// A 20,000 × "a " prompt to gpt-4o, its stream cut after 3 chunks: billed
// the prompt the upstream counts (OpenAI's tokenizer and template; the old
// estimate said about half) and the 3 tokens received.
func TestCutOpenAIStreamBillsTheExactPrompt(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		const model = "openai/gpt-4o"
		before, _ := inf.balance(u.Token)
		res, data := inf.stream(key, chatBody(model, strings.Repeat("a ", 20000)+"[[cut:3]]"))
		chunks, done := parseChunks(t, data)
		if !done || len(chunks) < 3 || chunks[len(chunks)-2].Error == nil {
			t.Fatalf("stream %v", data)
		}
		rec, _ := lastTo(t, inf.Fake, "/chat/completions")
		want, err := inf.Fake.PromptTokens(rec)
		if err != nil {
			t.Fatal(err)
		}
		usage := chunks[len(chunks)-1].Usage
		// "Hello from fake": 3 tokens in o200k_base.
		if want < 20_000 || usage == nil || usage.PromptTokens != int64(want) || usage.CompletionTokens != 3 {
			t.Fatalf("usage %+v, want the upstream's %d prompt tokens and 3", usage, want)
		}
		cost := inf.expectedCost(model, int64(want), 3)
		after, _ := inf.balance(u.Token)
		if usage.CostMicros != cost || before-after != cost {
			t.Fatalf("charged %d, shown %d, want %d", before-after, usage.CostMicros, cost)
		}
		if l := inf.usageLog(res.Header.Get("X-Beaver-Generation-Id")); l.PromptTokens != int64(want) || !l.UsageEstimated || l.Error == nil {
			t.Fatalf("usage log %+v", l)
		}
		inf.invariant(u.ID)
	})
}

// Anthropic and Gemini publish no tokenizer: a stream cut before the
// upstream reported any usage is billed the prompt of the provider's count
// endpoint (here the fake, which counts as it reports).
func TestCutStreamWithoutUsageBillsTheCountEndpoint(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", nil)
		for _, tt := range []struct{ model, path, count string }{
			{"anthropic/claude-3-5-haiku-20241022", "/v1/messages", "/v1/messages/count_tokens"},
			{"google/gemini-1.5-flash", "/v1beta/models/gemini-1.5-flash:streamGenerateContent", "/v1beta/models/gemini-1.5-flash:countTokens"},
		} {
			before, _ := inf.balance(u.Token)
			_, data := inf.stream(key, chatBody(tt.model, "count me please [[nousage]] [[cut:3]]"))
			chunks, done := parseChunks(t, data)
			if !done || len(chunks) < 3 {
				t.Fatalf("%s: stream %v", tt.model, data)
			}
			rec, _ := lastTo(t, inf.Fake, tt.path)
			want, err := inf.Fake.PromptTokens(rec)
			if err != nil {
				t.Fatal(err)
			}
			if _, n := lastTo(t, inf.Fake, tt.count); n != 1 {
				t.Fatalf("%s: %d count requests", tt.model, n)
			}
			usage := chunks[len(chunks)-1].Usage
			// 5 words + 3 for the message; "Hello from fake" by the estimator: 4.
			if want != 8 || usage == nil || usage.PromptTokens != int64(want) || usage.CompletionTokens != 4 {
				t.Fatalf("%s: usage %+v, want the count endpoint's %d prompt tokens", tt.model, usage, want)
			}
			after, _ := inf.balance(u.Token)
			if cost := inf.expectedCost(tt.model, int64(want), 4); usage.CostMicros != cost || before-after != cost {
				t.Fatalf("%s: charged %d, shown %d, want %d", tt.model, before-after, usage.CostMicros, cost)
			}
		}
		inf.invariant(u.ID)
	})
}

// A client that leaves a non-streamed request while the upstream writes
// its 4,000-token answer is billed that answer's usage, as if it had stayed
// (the old rule billed an estimate of the prompt only). The fake produces
// its answer only once the gateway has let the client go.
func TestAbandonedNonStreamedRequestIsBilledByTheUpstreamUsage(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		arrived, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		inf := newInference(t, dialect, fakeupstream.Options{Produce: func(ctx context.Context, word int) bool {
			if word == 0 {
				once.Do(func() { close(arrived) })
				select {
				case <-release:
				case <-ctx.Done(): // the upstream request was cancelled
					return false
				}
			}
			return ctx.Err() == nil
		}})
		u, key := inf.fundedKey("10", nil)
		before, _ := inf.balance(u.Token)
		// The API behind a server that says when its handler returned.
		handled := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer close(handled)
			inf.Server.Handler().ServeHTTP(w, r)
		}))
		defer srv.Close()
		const model = "openai/gpt-4o-mini"
		body, _ := json.Marshal(chatBody(model, "tell me a long story [[words:4000]]"))
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/chat/completions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		errc := make(chan error, 1)
		go func() {
			res, err := srv.Client().Do(req)
			if err == nil {
				res.Body.Close()
			}
			errc <- err
		}()
		<-arrived
		cancel() // the client leaves while the upstream works
		if err := <-errc; err == nil {
			t.Fatal("the request was answered")
		}
		<-handled      // the gateway let the client go
		close(release) // the upstream writes its answer
		inf.Server.Close(context.Background())

		rec, n := lastTo(t, inf.Fake, "/chat/completions")
		prompt, err := inf.Fake.PromptTokens(rec)
		if err != nil {
			t.Fatal(err)
		}
		var log models.UsageLog
		if err := inf.DB.Where("account_id = ?", u.ID).Take(&log).Error; err != nil {
			t.Fatal(err)
		}
		cost := inf.expectedCost(model, int64(prompt), 4000)
		if n != 1 || !log.Cancelled || log.PromptTokens != int64(prompt) || log.CompletionTokens != 4000 || log.UsageEstimated || log.ChargedMicros != cost {
			t.Fatalf("%d upstream requests; usage log %+v; want prompt %d, completion 4000, charged %d", n, log, prompt, cost)
		}
		after, _ := inf.balance(u.Token)
		if before-after != cost {
			t.Fatalf("balance moved %d, want %d", before-after, cost)
		}
		inf.invariant(u.ID)
		inf.waitReservedZero(u.ID)
	})
}
