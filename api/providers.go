package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/audit"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/registry"
)

// Providers as data (/admin/providers): the six built-ins, configured from
// the environment, and the providers an admin adds at run time. Keys and
// header values are write-only: no answer, log line or error carries them
// (a view says has_key and the header names only).

// providerView is the contract's P. created_at (and updated_at) are null
// for a built-in, which comes from the environment, not a stored row.
func providerView(in registry.Info) gin.H {
	var created, updated any // null
	if in.CreatedAt != nil {
		created = ts(*in.CreatedAt)
	}
	if in.UpdatedAt != nil {
		updated = ts(*in.UpdatedAt)
	}
	return gin.H{"id": in.ID, "format": in.Format, "base_urls": in.BaseURLs, "weights": in.Weights,
		"builtin": in.Builtin, "has_key": in.HasKey, "headers": in.Headers, "usage_semantics": in.Usage,
		"created_at": created, "updated_at": updated}
}

// providerRegistry is the registry, or a 503 when this process has none.
func (s *Server) providerRegistry(c *gin.Context) *registry.Registry {
	if s.ProviderRegistry == nil {
		s.fail(c, apierr.Unavailable("provider administration is not available on this process"))
	}
	return s.ProviderRegistry
}

func (s *Server) adminListProviders(c *gin.Context) {
	reg := s.providerRegistry(c)
	if reg == nil {
		return
	}
	list := reg.List()
	data := make([]gin.H, 0, len(list))
	for _, in := range list {
		data = append(data, providerView(in))
	}
	c.JSON(http.StatusOK, gin.H{"data": data})
}

func (s *Server) adminGetProvider(c *gin.Context) {
	reg := s.providerRegistry(c)
	if reg == nil {
		return
	}
	in, err := reg.Info(c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, providerView(in))
}

// createProviderRequest is POST /admin/providers. base_url is the
// one-endpoint spelling of base_urls.
type createProviderRequest struct {
	ID             string            `json:"id"`
	Format         string            `json:"format"`
	BaseURLs       []string          `json:"base_urls"`
	BaseURL        string            `json:"base_url"`
	APIKey         string            `json:"api_key"`
	APIKeyEnv      string            `json:"api_key_env"`
	Headers        map[string]string `json:"headers"`
	UsageSemantics *registry.Usage   `json:"usage_semantics"`
	Weights        []int             `json:"weights"`
}

func (s *Server) adminCreateProvider(c *gin.Context) {
	reg := s.providerRegistry(c)
	if reg == nil {
		return
	}
	var req createProviderRequest
	if err := bindJSON(c, &req, true); err != nil {
		s.fail(c, err)
		return
	}
	bases, err := baseURLs(req.BaseURLs, req.BaseURL)
	if err != nil {
		s.fail(c, err)
		return
	}
	spec := registry.Spec{ID: req.ID, Format: req.Format, BaseURL: bases, APIKey: req.APIKey, APIKeyEnv: req.APIKeyEnv,
		Headers: req.Headers, Weights: req.Weights}
	if req.UsageSemantics != nil {
		spec.Usage = *req.UsageSemantics
	}
	in, err := reg.Create(c.Request.Context(), spec)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.recordAdmin(c, audit.Entry{Subject: audit.Subject(audit.KindProvider, in.ID), Action: audit.ActionProviderCreated,
		Changes: audit.Diff(nil, providerFields(in))})
	s.log.Info("admin added provider", "request_id", requestID(c), "admin_id", principal(c).Account.ID,
		"provider", in.ID, "format", in.Format, "endpoints", len(in.BaseURLs), "has_key", in.HasKey, "headers", in.Headers)
	c.JSON(http.StatusCreated, providerView(in))
}

// baseURLs takes base_urls or base_url, not both.
func baseURLs(list []string, one string) ([]string, error) {
	switch {
	case one != "" && len(list) > 0:
		return nil, apierr.Invalid("give base_urls or base_url, not both").WithParam("base_url")
	case one != "":
		return []string{one}, nil
	}
	return list, nil
}

// updateProviderRequest is PATCH /admin/providers/{id}: absent fields stay;
// api_key or api_key_env null (or "") removes the key; headers and
// usage_semantics replace the whole object.
type updateProviderRequest struct {
	Format         auth.Patch[string]            `json:"format"`
	BaseURLs       auth.Patch[[]string]          `json:"base_urls"`
	BaseURL        auth.Patch[string]            `json:"base_url"`
	APIKey         auth.Patch[string]            `json:"api_key"`
	APIKeyEnv      auth.Patch[string]            `json:"api_key_env"`
	Headers        auth.Patch[map[string]string] `json:"headers"`
	UsageSemantics auth.Patch[registry.Usage]    `json:"usage_semantics"`
	Weights        auth.Patch[[]int]             `json:"weights"`
}

func (s *Server) adminUpdateProvider(c *gin.Context) {
	reg := s.providerRegistry(c)
	if reg == nil {
		return
	}
	var req updateProviderRequest
	if err := bindJSON(c, &req, true); err != nil {
		s.fail(c, err)
		return
	}
	var ch registry.Change
	for name, p := range map[string]bool{"format": req.Format.Null, "base_urls": req.BaseURLs.Null, "base_url": req.BaseURL.Null} {
		if p {
			s.fail(c, apierr.Invalid("%s cannot be null", name).WithParam(name))
			return
		}
	}
	if req.Format.Set {
		ch.Format = &req.Format.Value
	}
	if req.BaseURLs.Set || req.BaseURL.Set {
		bases, err := baseURLs(req.BaseURLs.Value, req.BaseURL.Value)
		if err != nil {
			s.fail(c, err)
			return
		}
		ch.BaseURL = &bases
	}
	if req.APIKey.Set {
		ch.APIKey = &req.APIKey.Value // null: ""
	}
	if req.APIKeyEnv.Set {
		ch.APIKeyEnv = &req.APIKeyEnv.Value
	}
	if req.Headers.Set {
		h := req.Headers.Value // null: none
		ch.Headers = &h
	}
	if req.UsageSemantics.Set {
		ch.Usage = &req.UsageSemantics.Value
	}
	if req.Weights.Set {
		w := req.Weights.Value // null: all 1
		ch.Weights = &w
	}
	var before map[string]any
	if old, err := reg.Info(c.Param("id")); err == nil {
		before = providerFields(old)
	}
	in, err := reg.Update(c.Request.Context(), c.Param("id"), ch)
	if err != nil {
		s.fail(c, err)
		return
	}
	changes := audit.Diff(before, providerFields(in))
	if req.APIKey.Set || req.APIKeyEnv.Set {
		changes = changes.Set("api_key_set", before["api_key_set"], in.HasKey) // a new key shows as a change, its value never
	}
	s.recordAdmin(c, audit.Entry{Subject: audit.Subject(audit.KindProvider, in.ID), Action: audit.ActionProviderUpdated, Changes: changes})
	s.log.Info("admin changed provider", "request_id", requestID(c), "admin_id", principal(c).Account.ID,
		"provider", in.ID, "format", in.Format, "endpoints", len(in.BaseURLs), "has_key", in.HasKey,
		"key_changed", req.APIKey.Set || req.APIKeyEnv.Set, "headers", in.Headers)
	c.JSON(http.StatusOK, providerView(in))
}

// adminDeleteProvider removes an operator provider: 400 for a built-in,
// 409 while active models use it.
func (s *Server) adminDeleteProvider(c *gin.Context) {
	reg := s.providerRegistry(c)
	if reg == nil {
		return
	}
	id := c.Param("id")
	if err := reg.Delete(c.Request.Context(), id); err != nil {
		s.fail(c, err)
		return
	}
	s.recordAdmin(c, audit.Entry{Subject: audit.Subject(audit.KindProvider, id), Action: audit.ActionProviderDeleted,
		Changes: audit.Changes{}.Set("deleted", false, true)})
	s.log.Info("admin deleted provider", "request_id", requestID(c), "admin_id", principal(c).Account.ID, "provider", id)
	c.Status(http.StatusNoContent)
}

// adminTestProvider lists the provider's models with its key:
// {ok, latency_ms, models_listed, models, error}.
func (s *Server) adminTestProvider(c *gin.Context) {
	reg := s.providerRegistry(c)
	if reg == nil {
		return
	}
	res, err := reg.Test(c.Request.Context(), c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}
