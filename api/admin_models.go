package api

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/audit"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/money"
)

// The catalog at run time: an admin lists, adds, changes and retires
// models (/admin/models). The rules live in internal/catalog; these
// handlers bind, call it, start the price computation a change needs and
// render the admin view.

// adminModelView is M plus what only admins see: the base prices, the
// retirement and the aliases.
func adminModelView(e *catalog.Entry) gin.H {
	v := modelView(e)
	b := e.Base
	v["base"] = pricesView(b.Rates(), b.Long, b.Hours)
	v["retired_at"] = tsOrNull(e.RetiredAt)
	v["replacement"] = nil
	if e.Replacement != "" {
		v["replacement"] = e.Replacement
	}
	aliases := e.Aliases
	if aliases == nil {
		aliases = []string{}
	}
	v["aliases"] = aliases
	return v
}

// adminListModels serves GET /admin/models, inactive and retired models
// included.
func (s *Server) adminListModels(c *gin.Context) {
	list := s.Catalog.List(true)
	data := make([]gin.H, 0, len(list))
	for _, e := range list {
		data = append(data, adminModelView(e))
	}
	c.JSON(http.StatusOK, gin.H{"data": data})
}

// modelRequest is the body of POST /admin/models and PATCH
// /admin/models/{provider}/{model}: the fields of a catalog entry. provider
// and id are POST's only (the id, made of them, never changes); POST needs
// provider, provider_model and the input and output prices. Prices
// are decimal USD. The cached-input, reasoning and cache-write prices take
// null too: the model then has none of its own and follows its input
// price (reasoning: its output price; a one-hour cache write: its
// cache-write price). The further dimensions are in the catalog's own
// format (integer micro-USD); each replaces what the model had, null
// removes it. aliases replaces the model's list; replacement takes a model
// id or null.
type modelRequest struct {
	Provider                  *string                           `json:"provider"`
	ID                        *string                           `json:"id"`
	InputPerMillionUSD        *money.USD                        `json:"input_per_million_usd"`
	OutputPerMillionUSD       *money.USD                        `json:"output_per_million_usd"`
	RequestFeeUSD             *money.USD                        `json:"request_fee_usd"`
	CachedInputPerMillionUSD  auth.Patch[money.USD]             `json:"cached_input_per_million_usd"`
	ReasoningPerMillionUSD    auth.Patch[money.USD]             `json:"reasoning_per_million_usd"`
	CacheWritePerMillionUSD   auth.Patch[money.USD]             `json:"cache_write_per_million_usd"`
	CacheWrite1hPerMillionUSD auth.Patch[money.USD]             `json:"cache_write_1h_per_million_usd"`
	ToolFeesMicros            auth.Patch[map[string]int64]      `json:"tool_fees_micros"`
	LongContext               auth.Patch[catalog.Tiers]         `json:"long_context"`
	TimeOfDay                 auth.Patch[[]catalog.ExtraWindow] `json:"time_of_day"`
	Active                    *bool                             `json:"active"`
	Name                      *string                           `json:"name"`
	ProviderModel             *string                           `json:"provider_model"`
	ContextLength             *int64                            `json:"context_length"`
	MaxOutputTokens           *int64                            `json:"max_output_tokens"`
	Capabilities              *[]string                         `json:"capabilities"`
	Aliases                   *[]string                         `json:"aliases"`
	Replacement               auth.Patch[string]                `json:"replacement"`
}

// retireModelRequest is DELETE /admin/models/{provider}/{model}'s optional
// body; ?replacement= says the same.
type retireModelRequest struct {
	Replacement string `json:"replacement"`
}

// update is the request as the catalog's change, each price checked.
func (in modelRequest) update() (catalog.BaseUpdate, error) {
	u := catalog.BaseUpdate{Active: in.Active, Name: in.Name, ProviderModel: in.ProviderModel,
		ContextLength: in.ContextLength, MaxOutputTokens: in.MaxOutputTokens, Capabilities: in.Capabilities,
		Aliases: in.Aliases, Replacement: patched(in.Replacement)}
	for _, f := range []struct {
		v   *money.USD
		dst **int64
		n   string
	}{{in.InputPerMillionUSD, &u.Input, "input_per_million_usd"}, {in.OutputPerMillionUSD, &u.Output, "output_per_million_usd"},
		{in.RequestFeeUSD, &u.Fee, "request_fee_usd"}} {
		if f.v != nil {
			if *f.v < 0 {
				return u, apierr.Invalid("%s must not be negative", f.n).WithParam(f.n)
			}
			m := f.v.Micros()
			*f.dst = &m
		}
	}
	for _, o := range []struct {
		p   auth.Patch[money.USD]
		dst **catalog.Override
		n   string
	}{{in.CachedInputPerMillionUSD, &u.CachedInput, "cached_input_per_million_usd"},
		{in.ReasoningPerMillionUSD, &u.Reasoning, "reasoning_per_million_usd"},
		{in.CacheWritePerMillionUSD, &u.CacheWrite, "cache_write_per_million_usd"},
		{in.CacheWrite1hPerMillionUSD, &u.CacheWrite1h, "cache_write_1h_per_million_usd"}} {
		var err error
		if *o.dst, err = override(o.p, o.n); err != nil {
			return u, err
		}
	}
	u.Tools, u.LongContext, u.TimeOfDay = patched(in.ToolFeesMicros), patched(in.LongContext), patched(in.TimeOfDay)
	return u, nil
}

// newModel is the request as the catalog's new model; known says which
// providers a model may name.
func (in modelRequest) newModel(known func(string) bool) (catalog.NewModel, error) {
	switch {
	case in.Provider == nil || *in.Provider == "":
		return catalog.NewModel{}, apierr.Invalid("provider is required").WithParam("provider")
	case !known(*in.Provider):
		return catalog.NewModel{}, apierr.Invalid("provider %q is not a known provider", *in.Provider).WithParam("provider")
	case in.ProviderModel == nil:
		return catalog.NewModel{}, apierr.Invalid("provider_model is required").WithParam("provider_model")
	case in.InputPerMillionUSD == nil:
		return catalog.NewModel{}, apierr.Invalid("input_per_million_usd is required").WithParam("input_per_million_usd")
	case in.OutputPerMillionUSD == nil:
		return catalog.NewModel{}, apierr.Invalid("output_per_million_usd is required").WithParam("output_per_million_usd")
	}
	u, err := in.update()
	m := catalog.NewModel{Provider: *in.Provider, BaseUpdate: u}
	if in.ID != nil {
		m.ID = *in.ID
	}
	return m, err
}

// change is the request as the catalog's change of an existing model.
func (in modelRequest) change() (catalog.BaseUpdate, error) {
	for _, f := range []struct {
		name string
		v    *string
	}{{"provider", in.Provider}, {"id", in.ID}} {
		if f.v != nil {
			return catalog.BaseUpdate{}, apierr.Invalid("%s cannot be changed: it is part of the model's id", f.name).WithParam(f.name)
		}
	}
	return in.update()
}

// override is a PATCH of a cached-input, reasoning or cache-write price as
// the catalog takes it: nil when absent, no Micros when null.
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

// patched is a PATCH of a field that takes null as the catalog takes it:
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

// modelID is the model a /admin/models/{provider}/{model} path names.
func modelID(c *gin.Context) string {
	return c.Param("provider") + "/" + strings.Trim(c.Param("model"), "/")
}

// adminCreateModel serves POST /admin/models: a new model on a known
// provider, priced in a new price version → 201 with the admin view.
func (s *Server) adminCreateModel(c *gin.Context) {
	var in modelRequest
	if err := bindJSON(c, &in, true); err != nil {
		s.fail(c, err)
		return
	}
	m, err := in.newModel(s.KnownProvider)
	if err != nil {
		s.fail(c, err)
		return
	}
	id, err := s.Catalog.Add(c.Request.Context(), m)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.recordModel(c, audit.ActionModelCreated, id, nil)
	if err := s.reprice(c, "model "+id+" added"); err != nil {
		s.fail(c, err)
		return
	}
	e, _ := s.Catalog.Get(id)
	c.JSON(http.StatusCreated, adminModelView(e))
}

// adminUpdateModel serves PATCH /admin/models/{provider}/{model}: any field
// of the entry. A change of prices, activity or capabilities starts a new
// price computation so that it takes effect; every change reaches every
// replica through the bus.
func (s *Server) adminUpdateModel(c *gin.Context) {
	id := modelID(c)
	old, ok := s.Catalog.Get(id)
	if !ok {
		s.fail(c, apierr.NotFound("model %q not found", id))
		return
	}
	before := modelFields(old)
	var in modelRequest
	if err := bindJSON(c, &in, true); err != nil {
		s.fail(c, err)
		return
	}
	u, err := in.change()
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.Catalog.UpdateBase(c.Request.Context(), id, u); err != nil {
		s.fail(c, err)
		return
	}
	s.recordModel(c, audit.ActionModelUpdated, id, before)
	if u.Reprices() {
		if err := s.reprice(c, "model "+id+" changed"); err != nil {
			s.fail(c, err)
			return
		}
	}
	e, _ := s.Catalog.Get(id)
	c.JSON(http.StatusOK, adminModelView(e))
}

// adminRetireModel serves DELETE /admin/models/{provider}/{model} → 204:
// the model is retired (see catalog.Retire), with the replacement from
// ?replacement= or the body's {replacement} when one is given.
func (s *Server) adminRetireModel(c *gin.Context) {
	id := modelID(c)
	replacement := c.Query("replacement")
	if hasBody(c.Request) {
		var in retireModelRequest
		if err := bindJSON(c, &in, true); err != nil {
			s.fail(c, err)
			return
		}
		if replacement != "" && in.Replacement != "" && in.Replacement != replacement {
			s.fail(c, apierr.Invalid("the query and the body name different replacements").WithParam("replacement"))
			return
		}
		if in.Replacement != "" {
			replacement = in.Replacement
		}
	}
	var before map[string]any
	if e, ok := s.Catalog.Get(id); ok {
		before = modelFields(e)
	}
	wasActive, err := s.Catalog.Retire(c.Request.Context(), id, replacement)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.recordModel(c, audit.ActionModelRetired, id, before)
	if wasActive { // the active models' percentiles changed
		if err := s.reprice(c, "model "+id+" retired"); err != nil {
			s.fail(c, err)
			return
		}
	}
	c.Status(http.StatusNoContent)
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

// reprice starts the price computation an admin's change needs: the
// repricing workflow, or without Temporal the computation itself, so that
// a change never waits for the next daily run.
func (s *Server) reprice(c *gin.Context, reason string) error {
	if _, err := s.recalculate(c, reason); err == nil {
		return nil
	}
	_, err := s.Catalog.Recalculate(c.Request.Context(), reason)
	return err
}

// recalculate starts the repricing workflow.
func (s *Server) recalculate(c *gin.Context, reason string) (string, error) {
	return s.Workflows.StartRepricing(c.Request.Context(), reason)
}
