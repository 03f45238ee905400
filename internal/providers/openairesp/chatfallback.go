package openairesp

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers/openai"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
)

// chatFallback speaks Chat Completions ({base}/chat/completions, through
// the openai adapter on the same client) to the endpoints of a provider
// that turn out to have no Responses API: servers compatible with the
// provider's older API only (Perplexity's Sonar API, which ended on
// 2026-09-27, lives on in self-hosted and proxy servers). An endpoint is
// found out by its Responses path answering 404 or 405 about no model
// (an unknown route, not an unknown model), once, and remembered for the
// life of the process.
type chatFallback struct {
	chat  *openai.Adapter
	log   *slog.Logger
	name  string
	bases []string // the endpoints' base URLs, by index, for the log

	mu   sync.Mutex
	gone map[int]bool // endpoints without the Responses API, by index
}

func newChatFallback(c *upstream.Client) *chatFallback {
	cfg := c.Config()
	bases := []string{cfg.BaseURL}
	if len(cfg.Endpoints) > 0 {
		bases = bases[:0]
		for _, e := range cfg.Endpoints {
			bases = append(bases, e.BaseURL)
		}
	}
	return &chatFallback{chat: openai.On(c), log: cfg.Logger, name: cfg.Name, bases: bases, gone: map[int]bool{}}
}

// any reports whether some endpoint has no Responses API.
func (f *chatFallback) any() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.gone) > 0
}

// has reports whether endpoint has no Responses API.
func (f *chatFallback) has(endpoint int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gone[endpoint]
}

// mark records that endpoint has no Responses API, and says so once.
func (f *chatFallback) mark(endpoint int, e *upstream.Error) {
	f.mu.Lock()
	known := f.gone[endpoint]
	f.gone[endpoint] = true
	f.mu.Unlock()
	if known {
		return
	}
	base := ""
	if endpoint < len(f.bases) {
		base = f.bases[endpoint]
	}
	f.log.Info("upstream endpoint has no Responses API; speaking Chat Completions to it from now on",
		"provider", f.name, "endpoint", endpoint, "base_url", base, "status", e.Status)
}

// noResponsesAPI reports an answer that says the Responses path does not
// exist there: 404 or 405, not about a model (OpenAI answers an unknown
// model with 404 model_not_found).
func noResponsesAPI(e *upstream.Error) bool {
	return (e.Status == http.StatusNotFound || e.Status == http.StatusMethodNotAllowed) &&
		!strings.Contains(strings.ToLower(e.Message), "model")
}

// open sends the request, encoded as body, and returns the answer's body
// and whether it is a Chat Completions answer: an endpoint known to have no
// Responses API gets req in Chat Completions instead, and one that answers
// so is marked and the request sent again (each endpoint can be found out
// once, so this ends).
func (a *Adapter) open(ctx context.Context, req *chat.Request, body []byte, stream bool) (*upstream.Body, bool, error) {
	r := a.request(body, stream)
	f := a.fallback
	if f == nil {
		b, err := a.client.Open(ctx, r)
		return b, false, err
	}
	for range len(f.bases) + 1 {
		// Built only once some endpoint needs it: an endpoint found out
		// by another request meanwhile gets the Responses request once
		// more, and its 404 brings it here.
		var legacy *upstream.Request
		if f.any() {
			lr, err := f.chat.Request(req, stream)
			if err != nil {
				return nil, false, err
			}
			legacy = &lr
		}
		last, viaChat := -1, false
		r.ForEndpoint = func(endpoint int) upstream.Request {
			last, viaChat = endpoint, legacy != nil && f.has(endpoint)
			if viaChat {
				return *legacy
			}
			plain := r
			plain.ForEndpoint = nil
			return plain
		}
		b, err := a.client.Open(ctx, r)
		if err == nil {
			return b, viaChat, nil
		}
		var ue *upstream.Error
		if last < 0 || viaChat || !errors.As(err, &ue) || !noResponsesAPI(ue) {
			return nil, false, err
		}
		f.mark(last, ue)
	}
	return nil, false, &upstream.Error{Status: http.StatusNotFound, Message: "no endpoint of the provider answers its Responses or Chat Completions API"}
}
