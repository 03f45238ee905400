package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/gateway"
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
