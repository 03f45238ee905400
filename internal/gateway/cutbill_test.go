package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/chat"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/internal/tokens"
	"github.com/beaver-gateway/beaver/models"
)

// Cut streams and abandoned requests are billed what they cost upstream
// (issue 26): the exact prompt where the tokenizer is public, the
// provider's count endpoint where it is not, and an abandoned non-streamed
// answer by the usage the upstream reports.

// fakeProviders are the real adapters of OpenAI, Anthropic and Gemini
// (their default configurations) in front of one fake upstream.
func fakeProviders(t *testing.T, opts fakeupstream.Options) (*fakeupstream.Server, map[string]providers.Provider) {
	t.Helper()
	fake := fakeupstream.New(opts)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	provs := map[string]providers.Provider{}
	for _, name := range []string{"openai", "anthropic", "google"} {
		pc := providers.DefaultConfigs()[name]
		pc.BaseURL = srv.URL
		p, err := providers.New(pc)
		if err != nil {
			t.Fatal(err)
		}
		provs[name] = p
	}
	return fake, provs
}

func callFor(t *testing.T, f *fixture, model, text string, stream bool) gateway.Call {
	t.Helper()
	req := &chat.Request{Model: model, Stream: stream, Messages: []chat.Message{{Role: chat.RoleUser, Content: chat.TextContent(text)}}}
	if err := req.Validate(); err != nil {
		t.Fatal(err)
	}
	return gateway.Call{Principal: &auth.Principal{Account: f.account}, Request: req, Model: model, ClientIP: "127.0.0.1", RequestID: "req-1"}
}

// lastRequest is the last request the fake received on path.
func lastRequest(t *testing.T, fake *fakeupstream.Server, path string) fakeupstream.Recorded {
	t.Helper()
	reqs := fake.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Path == path {
			return reqs[i]
		}
	}
	t.Fatalf("no request to %s among %d", path, len(reqs))
	return fakeupstream.Recorded{}
}

func (f *fixture) logCount() int64 {
	f.t.Helper()
	var n int64
	if err := f.d.Model(&models.UsageLog{}).Where("account_id = ?", f.account.ID).Count(&n).Error; err != nil {
		f.t.Fatal(err)
	}
	return n
}

// A client that leaves an OpenAI stream after 3 chunks pays the prompt as
// OpenAI counts it (20,000 × "a " is 20,001 tokens in o200k_base, which
// the old estimate billed as about half) and the received text in the same
// tokenizer; the upstream request is cancelled.
func TestClientCutOpenAIStreamBillsTheExactPrompt(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			fake, provs := fakeProviders(t, fakeupstream.Options{})
			f := newFixtureOn(t, dialect, gateway.Options{}, provs)
			const gpt4o = "openai/gpt-4o"
			prompt := strings.Repeat("a ", 20000)
			rec := &recorder{goneAfter: 3} // the role chunk, "Hello", " from"; " fake" is refused
			before := f.balance()
			if err := f.gw.Stream(context.Background(), callFor(t, f, gpt4o, prompt, true), rec); err != nil {
				t.Fatal(err)
			}
			want, err := fake.PromptTokens(lastRequest(t, fake, "/chat/completions"))
			if err != nil {
				t.Fatal(err)
			}
			text, _ := tokens.Count(tokens.O200kBase, prompt)
			if want != 3+1+text+3 || want < 20_000 {
				t.Fatalf("the fake counts %d prompt tokens, OpenAI %d", want, 3+1+text+3)
			}
			l := f.lastLog()
			// "Hello from fake" is 3 tokens (the estimator says 4).
			if l.PromptTokens != int64(want) || l.CompletionTokens != 3 || !l.Cancelled || !l.UsageEstimated || !l.Streamed {
				t.Fatalf("usage log: prompt %d, completion %d, cancelled %v, estimated %v; want %d and 3",
					l.PromptTokens, l.CompletionTokens, l.Cancelled, l.UsageEstimated, want)
			}
			if cost := f.costOf(gpt4o, want, 3); before-f.balance() != cost || l.ChargedMicros != cost {
				t.Fatalf("charged %d (log %d), want %d", before-f.balance(), l.ChargedMicros, cost)
			}
		})
	}
}

// An Anthropic stream its client leaves before message_start (the first
// event, with the input count) is billed the prompt of Anthropic's count
// endpoint, not an estimate.
func TestClientCutAnthropicStreamBillsTheCountEndpoint(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			fake, provs := fakeProviders(t, fakeupstream.Options{})
			f := newFixtureOn(t, dialect, gateway.Options{}, provs)
			const haiku = "anthropic/claude-3-5-haiku-20241022"
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// The fake sends its headers and then nothing; the client leaves
			// as soon as the stream opens.
			rec := &openCanceller{cancel: cancel}
			before := f.balance()
			text := "please count this prompt of nine words [[hang]]"
			if err := f.gw.Stream(ctx, callFor(t, f, haiku, text, true), rec); err != nil {
				t.Fatal(err)
			}
			want, err := fake.PromptTokens(lastRequest(t, fake, "/v1/messages"))
			if err != nil {
				t.Fatal(err)
			}
			count := lastRequest(t, fake, "/v1/messages/count_tokens")
			if count.Header.Get("anthropic-version") == "" || strings.Contains(string(count.Body), "max_tokens") {
				t.Fatalf("count request %s %v", count.Body, count.Header)
			}
			l := f.lastLog()
			if want != 11 || l.PromptTokens != int64(want) || l.CompletionTokens != 0 || !l.Cancelled || !l.UsageEstimated {
				t.Fatalf("usage log: prompt %d, completion %d, cancelled %v; want %d (the count endpoint's) and 0",
					l.PromptTokens, l.CompletionTokens, l.Cancelled, want)
			}
			if cost := f.costOf(haiku, want, 0); before-f.balance() != cost {
				t.Fatalf("charged %d, want %d", before-f.balance(), cost)
			}
		})
	}
}

// openCanceller is a client that leaves when the stream opens.
type openCanceller struct {
	recorder
	cancel context.CancelFunc
}

func (o *openCanceller) Open(id string) { o.recorder.Open(id); o.cancel() }

// gatedComplete is an upstream whose answer waits for release (or for its
// context to end): a client can leave while it works.
func gatedComplete(started, release chan struct{}, calls *atomic.Int64,
	answer func() (*chat.Response, error)) func(context.Context, *chat.Request) (*chat.Response, error) {
	return func(ctx context.Context, _ *chat.Request) (*chat.Response, error) {
		if calls.Add(1) == 1 {
			close(started)
		}
		select {
		case <-release:
			return answer()
		case <-ctx.Done():
			return nil, &providers.Error{Message: "request cancelled: " + ctx.Err().Error(), Err: ctx.Err()}
		}
	}
}

// leave runs Complete, cancels its context once the upstream is working,
// and returns Complete's error.
func leave(t *testing.T, f *fixture, call gateway.Call, started chan struct{}) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := f.gw.Complete(ctx, call)
		errc <- err
	}()
	<-started
	cancel()
	return <-errc
}

// A client that leaves a non-streamed request while the upstream works
// gets context.Canceled at once; the answer is read in the background and
// billed by the upstream's usage, once.
func TestAbandonedCompleteIsBilledByTheUpstreamUsage(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newFixtureOn(t, dialect, gateway.Options{}, nil)
			started, release := make(chan struct{}), make(chan struct{})
			var calls atomic.Int64
			f.up.complete = gatedComplete(started, release, &calls, func() (*chat.Response, error) {
				return &chat.Response{Choices: []chat.Choice{{Message: chat.Message{Role: "assistant", Content: text("long answer")}, FinishReason: "stop"}},
					Usage: &chat.Usage{PromptTokens: 12, CompletionTokens: 4000}}, nil
			})
			before := f.balance()
			if err := leave(t, f, f.call("hello"), started); !errors.Is(err, context.Canceled) {
				t.Fatalf("Complete = %v, want context.Canceled", err)
			}
			close(release)
			f.gw.Close(context.Background())
			l := f.lastLog()
			if !l.Cancelled || l.PromptTokens != 12 || l.CompletionTokens != 4000 || l.UsageEstimated || before-f.balance() != f.cost(12, 4000) {
				t.Fatalf("usage log %+v, charged %d, want %d", l, before-f.balance(), f.cost(12, 4000))
			}
			if n := f.logCount(); n != 1 || calls.Load() != 1 {
				t.Fatalf("%d usage logs, %d upstream calls", n, calls.Load())
			}
		})
	}
}

// An abandoned request whose upstream then fails is free, as for a client
// that stayed, and is neither retried nor passed to a fallback model for
// nobody; one whose upstream does not answer within AbandonTimeout, or by
// shutdown, is cut off and pays its prompt.
func TestAbandonedCompleteThatFailsOrHangs(t *testing.T) {
	fallbacks := map[string][]string{model: {"openai/gpt-4o"}}
	t.Run("fails", func(t *testing.T) {
		f := newFixture(t, gateway.Options{Fallbacks: fallbacks})
		started, release := make(chan struct{}), make(chan struct{})
		var calls atomic.Int64
		f.up.complete = gatedComplete(started, release, &calls, func() (*chat.Response, error) {
			return nil, &providers.Error{Status: http.StatusServiceUnavailable, Message: "overloaded"}
		})
		before := f.balance()
		if err := leave(t, f, f.call("hello"), started); !errors.Is(err, context.Canceled) {
			t.Fatalf("Complete = %v", err)
		}
		close(release)
		f.gw.Close(context.Background())
		if l := f.lastLog(); !l.Cancelled || l.ChargedMicros != 0 || before != f.balance() || calls.Load() != 1 {
			t.Fatalf("usage log %+v, charged %d, %d upstream calls", l, before-f.balance(), calls.Load())
		}
	})
	for _, how := range []string{"timeout", "shutdown"} {
		t.Run(how, func(t *testing.T) {
			opts := gateway.Options{AbandonTimeout: time.Hour}
			if how == "timeout" {
				opts.AbandonTimeout = time.Millisecond
			}
			f := newFixture(t, opts)
			started := make(chan struct{})
			var calls atomic.Int64
			f.up.complete = gatedComplete(started, nil, &calls, nil) // answers never
			before := f.balance()
			if err := leave(t, f, f.call("hello"), started); !errors.Is(err, context.Canceled) {
				t.Fatalf("Complete = %v", err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			if how == "shutdown" {
				cancel() // no time left: cut off at once
			}
			f.gw.Close(ctx)
			cancel()
			// This provider cannot count: the prompt at its bound (5 + 8 + 8).
			if l := f.lastLog(); !l.Cancelled || l.PromptTokens != 21 || l.CompletionTokens != 0 || !l.UsageEstimated ||
				before-f.balance() != f.cost(21, 0) || f.logCount() != 1 {
				t.Fatalf("usage log %+v, charged %d", l, before-f.balance())
			}
		})
	}
}
