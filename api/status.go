package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/internal/providers"
)

// health is cheap liveness: no dependency is touched.
func (s *Server) health(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }

// uptime reports process uptime and whether the database answers.
func (s *Server) uptime(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	dbStatus := "ok"
	if err := s.DB.SQL().PingContext(ctx); err != nil {
		dbStatus = "unavailable"
	}
	up := time.Since(s.started)
	c.JSON(http.StatusOK, gin.H{"status": "ok", "started_at": ts(s.started),
		"uptime_seconds": int64(up.Seconds()), "database": dbStatus, "price_version": s.Catalog.Version()})
}

// latencyStatus reports per-provider latency over the recent requests.
func (s *Server) latencyStatus(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"providers": s.gateway.Latency().Snapshot(), "window": gateway.LatencyWindow})
}

// providersStatus reports each provider's routing health: its breakers'
// policy and per endpoint (base URL and key; the key only by its
// fingerprint) the circuit breaker state with its window (failure rate,
// attempts, distinct failing accounts, latest failures) and, when open,
// why and since when; consecutive failures and key cooldown; and the
// configured fallback chains.
func (s *Server) providersStatus(c *gin.Context) {
	type failureView struct {
		Kind   string `json:"kind"`
		Status int    `json:"status,omitempty"`
		At     string `json:"at"`
	}
	type endpointView struct {
		providers.EndpointHealth
		OpenedAt      *string       `json:"opened_at"`
		OpenUntil     *string       `json:"open_until"`
		CooldownUntil *string       `json:"cooldown_until"`
		LastFailures  []failureView `json:"last_failures"`
	}
	type providerView struct {
		State     string                  `json:"state"`
		Retries   int64                   `json:"retries"`
		Breaker   providers.BreakerPolicy `json:"breaker"`
		Endpoints []endpointView          `json:"endpoints"`
	}
	at := func(t time.Time) *string {
		if t.IsZero() {
			return nil
		}
		v := ts(t)
		return &v
	}
	out := map[string]providerView{}
	for _, h := range s.gateway.Health() {
		v := providerView{State: h.State, Retries: h.Retries, Breaker: h.Breaker, Endpoints: make([]endpointView, len(h.Endpoints))}
		for i, e := range h.Endpoints {
			fs := make([]failureView, len(e.LastFailures))
			for j, f := range e.LastFailures {
				fs[j] = failureView{Kind: f.Kind, Status: f.Status, At: ts(f.At)}
			}
			v.Endpoints[i] = endpointView{EndpointHealth: e, OpenedAt: at(e.OpenedAt), OpenUntil: at(e.OpenUntil),
				CooldownUntil: at(e.CooldownUntil), LastFailures: fs}
		}
		out[h.Provider] = v
	}
	fallbacks := s.gateway.Fallbacks()
	if fallbacks == nil {
		fallbacks = map[string][]string{}
	}
	c.JSON(http.StatusOK, gin.H{"providers": out, "fallbacks": fallbacks})
}
