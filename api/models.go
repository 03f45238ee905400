package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/messages"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/internal/responses"
	"github.com/beaver-gateway/beaver/internal/retention"
	"github.com/beaver-gateway/beaver/models"
)

// modelView is M in the contract; prices are the marked-up ones charged.
func modelView(e *catalog.Entry) gin.H {
	caps := e.Capabilities
	if caps == nil {
		caps = []string{}
	}
	p := e.Price
	pricing := pricesView(p.Rates(), p.Long, p.Hours)
	pricing["category"], pricing["markup_permille"], pricing["price_version"] = p.Category, p.MarkupPermille, e.Version
	if p.Images != nil {
		pricing["images"] = imagesView(p.Images)
	}
	return gin.H{
		"id": e.ID, "object": "model", "created": e.Created.Unix(), "owned_by": e.Provider, "provider": e.Provider,
		"name": e.Name, "context_length": e.ContextLength, "max_output_tokens": e.MaxOutputTokens,
		"capabilities": caps, "active": e.Active, "pricing": pricing,
	}
}

// pricesView shows every priced dimension with its _micros and _usd twins:
// per 1M tokens, per request, per call of each tool; and the long-context
// tiers and time-of-day windows, each a complete set of prices.
func pricesView(r pricing.Rates, long []pricing.Tier, hours []pricing.Window) gin.H {
	v := ratesView(r)
	tiers := make([]gin.H, 0, len(long))
	for _, l := range long {
		t := ratesView(l.Rates)
		t["above_prompt_tokens"] = l.Above
		tiers = append(tiers, t)
	}
	switch len(tiers) { // as the catalog writes them: one tier an object, several an array
	case 0:
	case 1:
		v["long_context"] = tiers[0]
	default:
		v["long_context"] = tiers
	}
	if len(hours) > 0 {
		windows := make([]gin.H, 0, len(hours))
		for _, w := range hours {
			h := ratesView(w.Rates)
			h["days"], h["from"], h["to"] = catalog.WindowOf(w)
			windows = append(windows, h)
		}
		v["time_of_day"] = windows
	}
	return v
}

func ratesView(r pricing.Rates) gin.H {
	v := gin.H{}
	for _, d := range []struct {
		name string
		m    int64
	}{{"input_per_million", r.Input}, {"output_per_million", r.Output}, {"cached_input_per_million", r.CachedInput},
		{"cache_write_per_million", r.CacheWrite}, {"cache_write_1h_per_million", r.CacheWrite1h},
		{"reasoning_per_million", r.Reasoning}, {"request_fee", r.Fee}} {
		v[d.name+"_micros"], v[d.name+"_usd"] = d.m, money.USD(d.m)
	}
	for tool, fee := range r.Tools {
		v[tool+"_per_call_micros"], v[tool+"_per_call_usd"] = fee, money.USD(fee)
	}
	// Audio tokens, for the models that price them apart from text
	// (realtime models).
	if r.AudioInput != r.Input || r.CachedAudioInput != r.CachedInput || r.AudioOutput != r.Output {
		for _, d := range []struct {
			name string
			m    int64
		}{{"audio_input_per_million", r.AudioInput}, {"cached_audio_input_per_million", r.CachedAudioInput},
			{"audio_output_per_million", r.AudioOutput}} {
			v[d.name+"_micros"], v[d.name+"_usd"] = d.m, money.USD(d.m)
		}
	}
	return v
}

// listModels serves GET /v1/models: active models, no credentials needed;
// with credentials, the account's private (fine-tuned) models too.
func (s *Server) listModels(c *gin.Context) {
	list := s.Catalog.ListFor(s.optionalAccount(c))
	data := make([]gin.H, 0, len(list))
	for _, e := range list {
		data = append(data, modelView(e))
	}
	c.JSON(http.StatusOK, gin.H{"object": "list", "data": data})
}

// getModel serves GET /v1/models/{id}: one entry of GET /v1/models, no
// credentials needed. The id is resolved as the chat paths resolve theirs:
// the prefixed id with a raw slash ("/v1/models/openai/gpt-4o-mini") or %2F
// (gin unescapes the catch-all), or a bare name when exactly one active model
// has it; the answer's id is always the prefixed one. Unknown, inactive and
// not yet priced models answer 404 model_not_found.
func (s *Server) getModel(c *gin.Context) {
	id := strings.Trim(c.Param("path"), "/")
	if id == "" {
		s.listModels(c) // "/v1/models/": gin used to redirect it to the list
		return
	}
	e, err := s.Catalog.ResolveFor(id, s.optionalAccount(c))
	if err != nil {
		if strings.HasSuffix(id, "/chat") {
			// GET on the chat path: not a model id, the route is POST-only.
			c.Header("Allow", http.MethodPost)
			methodNotAllowed(c)
			return
		}
		if ae, ok := apierr.As(err); ok {
			err = ae.With("param", "model")
		}
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, modelView(e))
}

// generation serves GET /v1/generation?id=: the caller's own requests only.
// A /v1/messages id (msg_<id>) names generation chatcmpl-<id>, and so does
// a /v1/responses id (resp_<id>).
func (s *Server) generation(c *gin.Context) {
	id := c.Query("id")
	if id == "" {
		s.fail(c, apierr.Invalid("id is required"))
		return
	}
	var g models.UsageLog
	err := s.DB.WithContext(c.Request.Context()).Where("id = ? AND account_id = ?", responses.GenerationID(messages.GenerationID(id)), principal(c).Account.ID).
		Take(&g).Error
	if err != nil {
		s.fail(c, s.generationNotFound(id))
		return
	}
	c.JSON(http.StatusOK, gin.H{"data": gin.H{
		"id": g.ID, "model": g.Model, "provider": g.Provider, "prompt_tokens": g.PromptTokens,
		"completion_tokens": g.CompletionTokens, "cached_tokens": g.CachedTokens, "reasoning_tokens": g.ReasoningTokens,
		"provider_cost_micros": g.ProviderCostMicros, "markup_micros": g.MarkupMicros, "charged_micros": g.ChargedMicros,
		"charged_usd": money.USD(g.ChargedMicros), "uncollected_micros": g.UncollectedMicros,
		"balance_after_micros": g.BalanceAfterMicros, "streamed": g.Streamed, "cancelled": g.Cancelled,
		"usage_estimated": g.UsageEstimated, "error": g.Error, "latency_ms": g.LatencyMS, "price_version": g.PriceVersion,
		"cache_write_tokens": g.CacheWriteTokens, "cache_write_1h_tokens": g.CacheWrite1hTokens,
		"cost_details": costDetails(g.CostDetails), "created_at": ts(g.CreatedAt),
	}})
}

// generationNotFound is the 404 for a generation id with no usage log: one
// the retention deleted (its id carries a creation time before the
// retention's cutoff) says so and where its charge still is.
func (s *Server) generationNotFound(id string) *apierr.Error {
	if days := s.cfg.UsageLogRetentionDays; days > 0 {
		if at, ok := ids.Time(id); ok && at.Before(retention.Cutoff(time.Now(), days)) {
			return apierr.NotFound("generation %q is older than the usage-log retention (%d days) and its details were "+
				"deleted; its charge stays in GET /account/transactions", id, days)
		}
	}
	return apierr.NotFound("no generation %q for this account", id)
}

// costDetails is a usage log's stored breakdown (pricing.Details), or null
// for requests charged nothing or settled before breakdowns were kept.
func costDetails(stored *string) any {
	if stored == nil {
		return nil
	}
	return json.RawMessage(*stored)
}

// imagesView shows an image model's prices: image tokens per 1M, and per
// image by size and quality ("" = any), with their _usd twins.
func imagesView(x *pricing.Images) gin.H {
	per := make([]gin.H, 0, len(x.PerImage))
	for _, p := range x.PerImage {
		per = append(per, gin.H{"size": p.Size, "quality": p.Quality, "micros": p.Micros, "usd": money.USD(p.Micros)})
	}
	tokens := make([]gin.H, 0, len(x.Tokens))
	for _, t := range x.Tokens {
		tokens = append(tokens, gin.H{"size": t.Size, "quality": t.Quality, "tokens": t.Tokens})
	}
	return gin.H{"input_per_million_micros": x.Input, "input_per_million_usd": money.USD(x.Input),
		"output_per_million_micros": x.Output, "output_per_million_usd": money.USD(x.Output),
		"per_image": per, "max_output_tokens_per_image": tokens, "max_input_tokens_per_image": x.InputTokens}
}

// optionalAccount is the account of the request's bearer credentials on a
// public route ("" when there are none, or they are not valid: the route
// answers as to anyone).
func (s *Server) optionalAccount(c *gin.Context) string {
	token, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		return ""
	}
	p, err := s.authenticateToken(c.Request.Context(), strings.TrimSpace(token))
	if err != nil {
		return ""
	}
	return p.Account.ID
}
