package api

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/messages"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/internal/responses"
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
	return gin.H{
		"id": e.ID, "object": "model", "created": e.Created.Unix(), "owned_by": e.Provider, "provider": e.Provider,
		"name": e.Name, "context_length": e.ContextLength, "max_output_tokens": e.MaxOutputTokens,
		"capabilities": caps, "active": e.Active, "pricing": pricing,
	}
}

// pricesView shows every priced dimension with its _micros and _usd twins:
// per 1M tokens, per request, per call of each tool; and the long-context
// tier and time-of-day windows, each a complete set of prices.
func pricesView(r pricing.Rates, long *pricing.Tier, hours []pricing.Window) gin.H {
	v := ratesView(r)
	if long != nil {
		t := ratesView(long.Rates)
		t["above_prompt_tokens"] = long.Above
		v["long_context"] = t
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
	return v
}

// listModels serves GET /v1/models: active models, no credentials needed.
func (s *Server) listModels(c *gin.Context) {
	list := s.Catalog.List(false)
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
	e, err := s.Catalog.Resolve(id)
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

func adminModelView(e *catalog.Entry) gin.H {
	v := modelView(e)
	b := e.Base
	v["base"] = pricesView(b.Rates(), b.Long, b.Hours)
	return v
}

// adminListModels serves GET /admin/models, inactive models included.
func (s *Server) adminListModels(c *gin.Context) {
	list := s.Catalog.List(true)
	data := make([]gin.H, 0, len(list))
	for _, e := range list {
		data = append(data, adminModelView(e))
	}
	c.JSON(http.StatusOK, gin.H{"data": data})
}

// updateModelRequest is PATCH /admin/models/{provider}/{model}. The
// cached-input and reasoning prices take null too: the model then has none
// of its own and follows its input (output) price.
type updateModelRequest struct {
	InputPerMillionUSD       *money.USD            `json:"input_per_million_usd"`
	OutputPerMillionUSD      *money.USD            `json:"output_per_million_usd"`
	RequestFeeUSD            *money.USD            `json:"request_fee_usd"`
	CachedInputPerMillionUSD auth.Patch[money.USD] `json:"cached_input_per_million_usd"`
	ReasoningPerMillionUSD   auth.Patch[money.USD] `json:"reasoning_per_million_usd"`
	// Cache-write prices take null too: the model then writes its cache at
	// its input price (for an hour: at its cache-write price).
	CacheWritePerMillionUSD   auth.Patch[money.USD] `json:"cache_write_per_million_usd"`
	CacheWrite1hPerMillionUSD auth.Patch[money.USD] `json:"cache_write_1h_per_million_usd"`
	// The further dimensions in the catalog's own format (integer
	// micro-USD); each replaces what the model had, null removes it.
	ToolFeesMicros auth.Patch[map[string]int64]      `json:"tool_fees_micros"`
	LongContext    auth.Patch[catalog.ExtraTier]     `json:"long_context"`
	TimeOfDay      auth.Patch[[]catalog.ExtraWindow] `json:"time_of_day"`
	Active         *bool                             `json:"active"`
}

// override is a PATCH of a cached-input or reasoning price as the catalog
// takes it: nil when absent, no Micros when null.
func override(p auth.Patch[money.USD], name string) (*catalog.Override, error) {
	switch {
	case !p.Set:
		return nil, nil
	case p.Null:
		return &catalog.Override{}, nil
	case p.Value < 0:
		return nil, apierr.Invalid("%s must not be negative", name).WithParam(name)
	}
	m := p.Value.Micros()
	return &catalog.Override{Micros: &m}, nil
}

// patched is a PATCH of a further price dimension as the catalog takes it:
// nil when absent, a nil value when null.
func patched[T any](p auth.Patch[T]) **T {
	if !p.Set {
		return nil
	}
	var v *T
	if !p.Null {
		v = &p.Value
	}
	return &v
}

// adminUpdateModel changes base prices or status; a new price computation
// starts so the change takes effect.
func (s *Server) adminUpdateModel(c *gin.Context) {
	id := c.Param("provider") + "/" + strings.Trim(c.Param("model"), "/")
	if _, ok := s.Catalog.Get(id); !ok {
		s.fail(c, apierr.NotFound("model %q not found", id))
		return
	}
	var in updateModelRequest
	if err := bindJSON(c, &in, true); err != nil {
		s.fail(c, err)
		return
	}
	u := catalog.BaseUpdate{Active: in.Active}
	for _, f := range []struct {
		v   *money.USD
		dst **int64
		n   string
	}{{in.InputPerMillionUSD, &u.Input, "input_per_million_usd"}, {in.OutputPerMillionUSD, &u.Output, "output_per_million_usd"},
		{in.RequestFeeUSD, &u.Fee, "request_fee_usd"}} {
		if f.v != nil {
			if *f.v < 0 {
				s.fail(c, apierr.Invalid("%s must not be negative", f.n))
				return
			}
			m := f.v.Micros()
			*f.dst = &m
		}
	}
	var err error
	if u.CachedInput, err = override(in.CachedInputPerMillionUSD, "cached_input_per_million_usd"); err != nil {
		s.fail(c, err)
		return
	}
	if u.Reasoning, err = override(in.ReasoningPerMillionUSD, "reasoning_per_million_usd"); err != nil {
		s.fail(c, err)
		return
	}
	if u.CacheWrite, err = override(in.CacheWritePerMillionUSD, "cache_write_per_million_usd"); err != nil {
		s.fail(c, err)
		return
	}
	if u.CacheWrite1h, err = override(in.CacheWrite1hPerMillionUSD, "cache_write_1h_per_million_usd"); err != nil {
		s.fail(c, err)
		return
	}
	u.Tools, u.LongContext, u.TimeOfDay = patched(in.ToolFeesMicros), patched(in.LongContext), patched(in.TimeOfDay)
	if err := s.Catalog.UpdateBase(c.Request.Context(), id, u); err != nil {
		s.fail(c, err)
		return
	}
	if u.Prices() || u.Active != nil {
		reason := "model " + id + " changed"
		if _, err := s.recalculate(c, reason); err != nil {
			// Without Temporal the API computes the new version itself, so
			// an admin's change never waits for the next daily run.
			if _, err := s.Catalog.Recalculate(c.Request.Context(), reason); err != nil {
				s.fail(c, err)
				return
			}
		}
	}
	e, _ := s.Catalog.Get(id)
	c.JSON(http.StatusOK, adminModelView(e))
}

// adminRecalculate serves POST /admin/pricing/recalculate.
func (s *Server) adminRecalculate(c *gin.Context) {
	id, err := s.recalculate(c, "admin request")
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"workflow_id": id})
}

// recalculate starts the repricing workflow.
func (s *Server) recalculate(c *gin.Context, reason string) (string, error) {
	return s.Workflows.StartRepricing(c.Request.Context(), reason)
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
		s.fail(c, apierr.NotFound("no generation %q for this account", id))
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

// costDetails is a usage log's stored breakdown (pricing.Details), or null
// for requests charged nothing or settled before breakdowns were kept.
func costDetails(stored *string) any {
	if stored == nil {
		return nil
	}
	return json.RawMessage(*stored)
}
