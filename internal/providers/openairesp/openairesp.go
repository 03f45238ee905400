// Package openairesp is the adapter for the OpenAI Responses wire format
// (POST /responses), for any provider that speaks it: OpenAI itself, xAI,
// and Perplexity's Agent API, which replaced its Chat Completions (Sonar)
// API on 2026-09-27. A chat request goes out as a Responses request
// (request.go); the Response object (response.go), or its stream of events
// (stream.go), comes back as a chat completion. Where a provider's Responses
// API differs from OpenAI's, its dialect says how (dialect.go).
package openairesp

import (
	"context"
	"net/http"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
)

// DefaultPath is where requests go after the base URL when the config
// names no ResponsesPath: OpenAI's base URL ends in /v1.
const DefaultPath = "/responses"

// Adapter talks to one provider in the Responses format.
type Adapter struct {
	client  *upstream.Client
	path    string // after the base URL of the endpoint each attempt goes to
	header  http.Header
	dialect dialect
	// fallback speaks Chat Completions to the endpoints that turn out to
	// have no Responses API (nil: the dialect has no such older API).
	fallback *chatFallback
}

// New returns the adapter for cfg; it posts to cfg.ResponsesPath (default
// DefaultPath) under the base URL and sends the key as a bearer token.
func New(cfg upstream.Config) (*Adapter, error) {
	c, err := upstream.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "beaver-gateway")
	a := &Adapter{client: c, path: cfg.ResponsesPath, header: h, dialect: dialectOf(cfg.Name)}
	if a.path == "" {
		a.path = DefaultPath
	}
	if a.dialect.chatFallback {
		a.fallback = newChatFallback(c)
	}
	return a, nil
}

// Client is the adapter's upstream client (its endpoints' health).
func (a *Adapter) Client() *upstream.Client { return a.client }

// Complete sends a non-streaming request.
func (a *Adapter) Complete(ctx context.Context, req *chat.Request) (*chat.Response, error) {
	body, err := a.encode(req, false)
	if err != nil {
		return nil, err
	}
	b, viaChat, err := a.open(ctx, req, body, false)
	if err != nil {
		return nil, err
	}
	data, err := b.ReadAll()
	if err != nil {
		return nil, err
	}
	if viaChat {
		return a.fallback.chat.Decode(data)
	}
	return decode(data, functionNames(req))
}

// Stream starts a streaming request.
func (a *Adapter) Stream(ctx context.Context, req *chat.Request) (upstream.Stream, error) {
	body, err := a.encode(req, true)
	if err != nil {
		return nil, err
	}
	b, viaChat, err := a.open(ctx, req, body, true)
	if err != nil {
		return nil, err
	}
	if viaChat {
		return upstream.NewEventStream(b, a.fallback.chat.Translator()), nil
	}
	return upstream.NewEventStream(b, newTranslator(functionNames(req))), nil
}

// request is the upstream call of an encoded body.
func (a *Adapter) request(body []byte, stream bool) upstream.Request {
	h := a.header.Clone()
	h.Set("Accept", "application/json")
	if stream {
		h.Set("Accept", "text/event-stream")
	}
	return upstream.Request{Path: a.path, Key: upstream.BearerKey, Header: h, Body: body, ParseError: parseError}
}

// CountPrompt cannot count: a Responses API has no count endpoint, and
// how it renders a prompt for the tokenizer is not published.
func (a *Adapter) CountPrompt(context.Context, *chat.Request) (int, error) {
	return 0, upstream.ErrNoCount
}

// CountText counts no text (see CountPrompt); Beaver estimates it.
func (a *Adapter) CountText(string, string) (int, bool) { return 0, false }
