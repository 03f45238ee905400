package api

import (
	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/audit"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/registry"
)

// recordAdmin records an admin's catalog or provider change after it
// committed (these change no money, and the catalog and registry commit in
// their own transactions). A failure is logged: the change stands.
func (s *Server) recordAdmin(c *gin.Context, e audit.Entry) {
	if err := audit.RecordNow(c.Request.Context(), s.DB.DB, e); err != nil {
		s.log.Error("audit entry not recorded", "request_id", requestID(c), "action", e.Action, "subject", e.Subject, "err", err)
	}
}

// modelFields is what the audit log shows of a catalog model.
func modelFields(e *catalog.Entry) map[string]any {
	return map[string]any{"provider": e.Provider, "provider_model": e.ProviderModel, "name": e.Name,
		"context_length": e.ContextLength, "max_output_tokens": e.MaxOutputTokens, "capabilities": e.Capabilities,
		"active": e.Active, "base_input_micros": e.Base.Input, "base_output_micros": e.Base.Output, "base_fee_micros": e.Base.Fee,
		"base_cached_input_micros": e.Base.CachedInput, "base_reasoning_micros": e.Base.Reasoning,
		"retired": e.RetiredAt != nil, "replacement": e.Replacement, "aliases": e.Aliases}
}

// recordModel records action on model id, with what changed since before
// (nil: created).
func (s *Server) recordModel(c *gin.Context, action, id string, before map[string]any) {
	after := map[string]any{}
	if e, ok := s.Catalog.Get(id); ok {
		after = modelFields(e)
	}
	s.recordAdmin(c, audit.Entry{Subject: audit.Subject(audit.KindModel, id), Action: action, Changes: audit.Diff(before, after)})
}

// providerFields is what the audit log shows of a provider: whether it has
// a key and its headers' names, never their values.
func providerFields(in registry.Info) map[string]any {
	return map[string]any{"format": in.Format, "base_urls": in.BaseURLs, "weights": in.Weights, "api_key_set": in.HasKey,
		"header_names": in.Headers, "usage_semantics": in.Usage}
}
