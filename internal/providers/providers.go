// Package providers is the one small interface in front of the upstream LLM
// providers. Each wire format has its own adapter package (openai,
// openairesp, anthropic, gemini); OpenAI, DeepSeek and xAI are
// configurations of the openai (Chat Completions) adapter, Perplexity's
// Agent API of the openairesp (Responses) adapter. The shared HTTP
// machinery lives in package upstream, whose Error, Stream and Config are
// re-exported here.
package providers

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/providers/anthropic"
	"github.com/beaver-gateway/beaver/internal/providers/gemini"
	"github.com/beaver-gateway/beaver/internal/providers/openai"
	"github.com/beaver-gateway/beaver/internal/providers/openairesp"
	"github.com/beaver-gateway/beaver/internal/providers/upstream"
	"github.com/beaver-gateway/beaver/internal/tokens"
)

// Provider is one upstream provider. Errors are *Error, or *chat.InvalidError
// when the request cannot be expressed in the provider's format (for example
// a malformed image data URL).
type Provider interface {
	// Complete sends a non-streaming request. req.Model is the provider's own
	// model name (e.g. "gpt-4o-mini", "claude-3-5-haiku-20241022",
	// "gemini-1.5-flash"), not the prefixed id.
	Complete(ctx context.Context, req *chat.Request) (*chat.Response, error)
	// Stream starts a streaming request; it returns only after the upstream
	// answered with a 2xx and its headers, so errors before any output are
	// plain errors. Cancelling ctx aborts the upstream HTTP request at once.
	Stream(ctx context.Context, req *chat.Request) (Stream, error)
}

// Counter is a Provider that counts tokens as its upstream bills them,
// without generating anything: Beaver's count of what a request cost when
// the upstream never said (a stream cut before its usage, a client that
// left before the answer).
type Counter interface {
	// CountPrompt returns req's prompt tokens (req.Model is the provider's
	// model name): with the model's public tokenizer (Config.Tokenizers),
	// or through the provider's count endpoint (Anthropic's
	// /v1/messages/count_tokens, Gemini's countTokens). ErrNoCount when the
	// model has neither; other errors are *Error.
	CountPrompt(ctx context.Context, req *chat.Request) (int, error)
	// CountText returns the tokens of completion text in the model's public
	// tokenizer; false when it has none.
	CountText(model, text string) (int, bool)
}

// ErrNoCount is CountPrompt's error for a model whose tokens Beaver cannot
// count: no public tokenizer, no count endpoint.
var ErrNoCount = upstream.ErrNoCount

// Stream is a streamed completion.
//
// Recv returns io.EOF at the normal end; any other error is a mid-stream
// failure (*Error). Each chunk is returned as soon as its upstream event
// arrives. Usage, when the upstream reports it, comes once, on a chunk of its
// own with no choices after the finish-reason chunk, whatever the format
// (OpenAI's include_usage chunk; Anthropic's message_start input plus
// message_delta output; Gemini's last usageMetadata).
//
// Usage is the usage the upstream has reported so far (nil if none): after a
// normal end it is the final usage; after a cut or an error it holds
// whatever counts arrived before (e.g. Anthropic's message_start input
// tokens, Gemini's promptTokenCount), with CompletionTokens as last
// reported. OpenAI reports usage only at the end, so its cut streams have
// none. Each call returns a new value; call it from the goroutine that calls
// Recv.
//
// Close releases the upstream connection and aborts the request if it has
// not ended; call it in every case.
type Stream = upstream.Stream

// Error is a failed upstream call; see upstream.Error for its fields and
// HTTP for how it maps to Beaver's answer.
type Error = upstream.Error

// Config describes one provider; see upstream.Config.
type Config = upstream.Config

// Endpoint is one base URL and key of a provider; see upstream.Endpoint.
type Endpoint = upstream.Endpoint

// Health is a provider's endpoints with their circuit breakers and key
// cooldowns; see upstream.Health.
type Health = upstream.Health

// EndpointHealth is one endpoint's state; see upstream.EndpointHealth.
type EndpointHealth = upstream.EndpointHealth

// BreakerPolicy is when a provider's breakers open; see upstream.BreakerPolicy.
type BreakerPolicy = upstream.BreakerPolicy

// Circuit breaker states; see upstream.
const (
	StateClosed   = upstream.StateClosed
	StateHalfOpen = upstream.StateHalfOpen
	StateOpen     = upstream.StateOpen
)

// Route is one logical request across calls (a fallback chain): one retry
// budget, and a report of each attempt; see upstream.Route.
type Route = upstream.Route

// Attempt is one try of a call; see upstream.Attempt.
type Attempt = upstream.Attempt

// KeyFingerprint is how a key is shown; see upstream.KeyFingerprint.
func KeyFingerprint(key string) string { return upstream.KeyFingerprint(key) }

// Outcome is an error's attempt outcome in a word, as Attempt.Outcome.
func Outcome(e *Error) string { return upstream.OutcomeOf(0, e) }

// WithRoute returns ctx carrying r for the calls made with it.
func WithRoute(ctx context.Context, r *Route) context.Context { return upstream.WithRoute(ctx, r) }

// HealthOf reports a provider's health; false for a Provider that is not
// one of the adapters (test doubles).
func HealthOf(p Provider) (Health, bool) {
	c, ok := p.(interface{ Client() *upstream.Client })
	if !ok {
		return Health{}, false
	}
	return c.Client().Health(), true
}

// Set is the providers a gateway may call, looked up by name on every
// request: a fixed map (Static), or the registry of built-in and
// operator-added providers that changes at run time.
type Set interface {
	// Get returns the provider named name; false when there is none.
	Get(name string) (Provider, bool)
	// Names lists every provider's name, sorted.
	Names() []string
}

// Static is a Set that never changes (tests, tools).
type Static map[string]Provider

// Get returns the provider named name.
func (s Static) Get(name string) (Provider, bool) {
	p, ok := s[name]
	return p, ok
}

// Names lists the providers' names, sorted.
func (s Static) Names() []string { return slices.Sorted(maps.Keys(s)) }

// Wire formats.
const (
	FormatOpenAI    = "openai"           // Chat Completions
	FormatResponses = "openai-responses" // OpenAI's Responses API (Perplexity's Agent API)
	FormatAnthropic = "anthropic"
	FormatGemini    = "gemini"
)

// New returns the adapter for cfg.Format, with its own tuned HTTP transport.
func New(cfg Config) (Provider, error) {
	var (
		p   Provider
		err error
	)
	switch cfg.Format {
	case FormatOpenAI:
		p, err = openai.New(cfg)
	case FormatResponses:
		p, err = openairesp.New(cfg)
	case FormatAnthropic:
		p, err = anthropic.New(cfg)
	case FormatGemini:
		p, err = gemini.New(cfg)
	default:
		return nil, fmt.Errorf("provider %q: unknown format %q (want openai, openai-responses, anthropic or gemini)", cfg.Name, cfg.Format)
	}
	if err != nil {
		return nil, fmt.Errorf("provider %q: %w", cfg.Name, err)
	}
	return p, nil
}

// UseFormat returns cfg speaking format instead of its own ("" keeps it):
// PERPLEXITY_API_FORMAT=openai puts Perplexity back on its legacy Chat
// Completions API, at {base}/chat/completions.
func UseFormat(cfg Config, format string) Config {
	if format != "" && format != cfg.Format {
		cfg.Format, cfg.ResponsesPath = format, ""
	}
	return cfg
}

// OpenAITokenizers are the encodings of OpenAI's chat models: o200k_base
// from gpt-4o on (gpt-4.1, gpt-4.5, gpt-5, the o-series), cl100k_base
// before (gpt-4, gpt-4-turbo, gpt-3.5-turbo).
var OpenAITokenizers = map[string]string{
	"gpt-4o": tokens.O200kBase, "chatgpt-4o": tokens.O200kBase, "gpt-4.1": tokens.O200kBase,
	"gpt-4.5": tokens.O200kBase, "gpt-5": tokens.O200kBase,
	"o1": tokens.O200kBase, "o3": tokens.O200kBase, "o4": tokens.O200kBase,
	"gpt-4": tokens.Cl100kBase, "gpt-3.5": tokens.Cl100kBase,
}

// PerplexityResponsesPath is where Perplexity's Agent API answers under its
// base URL (an alias of /v1/agent, for OpenAI's SDKs).
const PerplexityResponsesPath = "/v1/responses"

// DefaultConfigs returns the six providers with the contract's default base
// URLs, formats and timeouts, keyed by provider name. API keys are left for
// the caller to fill from the environment.
func DefaultConfigs() map[string]Config {
	mk := func(name, format, baseURL string) Config {
		return Config{
			Name: name, Format: format, BaseURL: baseURL,
			ConnectTimeout:   upstream.DefaultConnectTimeout,
			FirstByteTimeout: upstream.DefaultFirstByteTimeout,
			IdleTimeout:      upstream.DefaultIdleTimeout,
			MaxRetries:       upstream.DefaultMaxRetries,
			RetryBudget:      upstream.DefaultRetryBudget,
			BreakerFailures:  upstream.DefaultBreakerFailures,
			BreakerCooldown:  upstream.DefaultBreakerCooldown,
			KeyCooldown:      upstream.DefaultKeyCooldown,
		}
	}
	xai := mk("xai", FormatOpenAI, "https://api.x.ai/v1")
	xai.Usage.ReasoningOutsideCompletion = true
	openai := mk("openai", FormatOpenAI, "https://api.openai.com/v1")
	openai.Tokenizers = OpenAITokenizers
	deepseek := mk("deepseek", FormatOpenAI, "https://api.deepseek.com")
	deepseek.SendReasoningBack = true
	// Perplexity's Agent API; its Chat Completions (Sonar) API ended on
	// 2026-09-27. An operator whose Perplexity-compatible server has only
	// the older API sets the format back to FormatOpenAI
	// (PERPLEXITY_API_FORMAT=openai); an endpoint that answers the
	// Responses path with 404 is switched to it by itself (openairesp).
	perplexity := mk("perplexity", FormatResponses, "https://api.perplexity.ai")
	perplexity.ResponsesPath = PerplexityResponsesPath
	return map[string]Config{
		"openai":     openai,
		"deepseek":   deepseek,
		"perplexity": perplexity,
		"xai":        xai,
		"anthropic":  mk("anthropic", FormatAnthropic, "https://api.anthropic.com"),
		"google":     mk("google", FormatGemini, "https://generativelanguage.googleapis.com"),
	}
}
