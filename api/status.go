package api

import (
	"context"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
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
	c.JSON(http.StatusOK, gin.H{"providers": s.latency.snapshot(), "window": latencyWindow})
}

const latencyWindow = 1024

// latencyTracker keeps the last requests' latencies per provider.
type latencyTracker struct {
	mu   sync.Mutex
	data map[string]*ring
}

type ring struct {
	vals   [latencyWindow]time.Duration
	n      int
	next   int
	total  int64
	errors int64
}

func newLatencyTracker() *latencyTracker { return &latencyTracker{data: map[string]*ring{}} }

func (t *latencyTracker) observe(provider string, d time.Duration, failed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.data[provider]
	if !ok {
		r = &ring{}
		t.data[provider] = r
	}
	r.vals[r.next] = d
	r.next = (r.next + 1) % latencyWindow
	if r.n < latencyWindow {
		r.n++
	}
	r.total++
	if failed {
		r.errors++
	}
}

func (t *latencyTracker) snapshot() map[string]gin.H {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]gin.H{}
	for name, r := range t.data {
		vals := make([]time.Duration, r.n)
		copy(vals, r.vals[:r.n])
		sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
		pct := func(k int) int64 {
			if len(vals) == 0 {
				return 0
			}
			idx := (k*len(vals)+99)/100 - 1
			if idx < 0 {
				idx = 0
			}
			return vals[idx].Milliseconds()
		}
		out[name] = gin.H{"requests": r.total, "errors": r.errors, "samples": r.n,
			"p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99)}
	}
	return out
}
