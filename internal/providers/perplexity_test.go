package providers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/beaver-gateway/beaver/internal/chat"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/providers"
)

// paths records the paths a server was asked for; without the Agent API,
// its /v1/responses answers as a router without the route does.
type paths struct {
	next        http.Handler
	noResponses bool
	mu          sync.Mutex
	seen        []string
}

func (p *paths) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.seen = append(p.seen, r.URL.Path)
	p.mu.Unlock()
	if p.noResponses && r.URL.Path == providers.PerplexityResponsesPath {
		http.NotFound(w, r) // "404 page not found"
		return
	}
	p.next.ServeHTTP(w, r)
}

func (p *paths) take() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := strings.Join(p.seen, " ")
	p.seen = nil
	return s
}

func server(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// lockedBuffer is a log sink for one test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// PERPLEXITY_API_FORMAT=openai (providers.UseFormat) puts Perplexity back
// on its Chat Completions API at {base}/chat/completions, with the bare
// model name; Agent API options are refused there.
func TestPerplexityLegacyFormat(t *testing.T) {
	up := &paths{next: fakeupstream.New(fakeupstream.Options{})}
	cfg := providers.UseFormat(providers.DefaultConfigs()["perplexity"], providers.FormatOpenAI)
	cfg.BaseURL = server(t, up)
	p, err := providers.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.Complete(context.Background(), request("sonar", "hi [[words:3]]"))
	if err != nil {
		t.Fatal(err)
	}
	if got := up.take(); got != "/chat/completions" || resp.Choices[0].Message.Content.Text() != "Hello from fake" {
		t.Errorf("asked %q, answer %+v", got, resp.Choices[0])
	}
	if resp.Citations == nil {
		t.Error("the legacy answer's citations are lost")
	}
	req := request("sonar", "hi")
	req.ProviderOptions = map[string]json.RawMessage{"preset": json.RawMessage(`"fast"`)}
	var ie *chat.InvalidError
	if _, err := p.Complete(context.Background(), req); !errors.As(err, &ie) || ie.Param != "preset" {
		t.Errorf("preset on the legacy API: %v", err)
	}
	if same := providers.UseFormat(providers.DefaultConfigs()["perplexity"], ""); same.Format != providers.FormatResponses ||
		same.ResponsesPath != providers.PerplexityResponsesPath {
		t.Errorf("UseFormat(\"\") changed the config: %+v", same)
	}
}

// An endpoint whose Agent API path does not exist (404 about no model: an
// older Perplexity-compatible server) is spoken to in Chat Completions at
// {base}/chat/completions from then on, complete and streamed, and said so
// once in the log; the provider's other endpoints keep the Agent API.
func TestPerplexityFallsBackToChatCompletions(t *testing.T) {
	old := &paths{next: fakeupstream.New(fakeupstream.Options{}), noResponses: true}
	current := &paths{next: fakeupstream.New(fakeupstream.Options{})}
	var logs lockedBuffer
	cfg := providers.DefaultConfigs()["perplexity"]
	cfg.Endpoints = []providers.Endpoint{{BaseURL: server(t, old)}, {BaseURL: server(t, current)}}
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	p, err := providers.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if i%2 == 0 {
			resp, err := p.Complete(context.Background(), request("sonar", "hi [[words:3]]"))
			if err != nil || resp.Choices[0].Message.Content.Text() != "Hello from fake" {
				t.Fatalf("request %d: %v %+v", i, err, resp)
			}
			continue
		}
		s, err := p.Stream(context.Background(), request("sonar", "hi [[words:3]]"))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		chunks, err := drain(s)
		s.Close()
		if sum := summarize(chunks); err != io.EOF || sum.content != "Hello from fake" || sum.usage == nil {
			t.Fatalf("request %d: %v %+v", i, err, sum)
		}
	}
	// The requests were spread over both (round robin): the old server was
	// asked its Agent API path once, then only Chat Completions; the
	// current one only its Agent API.
	oldPaths, currentPaths := old.take(), current.take()
	if rest, ok := strings.CutPrefix(oldPaths, "/v1/responses /chat/completions"); !ok || strings.Contains(rest, "responses") {
		t.Errorf("old server asked %q", oldPaths)
	}
	if currentPaths == "" || strings.Contains(currentPaths, "chat") {
		t.Errorf("current server asked %q", currentPaths)
	}
	if n := strings.Count(logs.String(), "no Responses API"); n != 1 || !strings.Contains(logs.String(), "level=INFO") {
		t.Errorf("logged %d times:\n%s", n, logs.String())
	}
}

// A 404 about a model is the request's fault, not a missing API: no
// fallback.
func TestPerplexityModelNotFoundIsNoFallback(t *testing.T) {
	up := &paths{next: fakeupstream.New(fakeupstream.Options{})}
	cfg := providers.DefaultConfigs()["perplexity"]
	cfg.BaseURL = server(t, up)
	p, err := providers.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_, err = p.Complete(context.Background(), request("sonar", "[[error:404]]"))
		if pe := asError(t, err); pe.Status != 404 || !strings.Contains(pe.Message, "model") {
			t.Fatalf("error %+v", pe)
		}
	}
	if got := up.take(); got != "/v1/responses /v1/responses" {
		t.Errorf("asked %q", got)
	}
}
