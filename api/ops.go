package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/opsstats"
	"github.com/beaver-gateway/beaver/internal/providers/sse"
	"github.com/beaver-gateway/beaver/workflows"
)

// The live operations view: GET /admin/stats?range=1h|24h|7d|30d answers
// one snapshot, GET /admin/stats/stream sends one at once and then every
// BEAVER_OPS_STREAM_INTERVAL. Traffic, latency and money come from the
// ops_stats aggregates (opsstats), top accounts from daily_usage, circuit
// breakers and key cooldowns from this process's providers, failing
// workflows from Temporal's visibility store: never from the usage log.

// topAccounts and recentFailures bound the view's lists.
const (
	topAccounts    = 10
	recentFailures = 20
)

// failedWorkflowLister is what the Workflows implementation offers when it
// can list failures (workflows.Starter).
type failedWorkflowLister interface {
	FailedWorkflows(ctx context.Context, since time.Time, limit int) (workflows.FailedWorkflows, error)
}

// workflowsView is the failing workflows part of the view: available is
// false (with why) when Temporal is not configured or does not answer.
type workflowsView struct {
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
	workflows.FailedWorkflows
}

type endpointStateView struct {
	Index               int     `json:"index"`
	Key                 string  `json:"key"`
	State               string  `json:"state"`
	ConsecutiveFailures int     `json:"consecutive_failures"`
	FailureRate         float64 `json:"failure_rate"`
	OpenUntil           *string `json:"open_until"`
	CooldownUntil       *string `json:"cooldown_until"`
	CooldownReason      string  `json:"cooldown_reason,omitempty"`
	Reason              string  `json:"reason,omitempty"`
}

type breakerView struct {
	Provider  string              `json:"provider"`
	State     string              `json:"state"`
	Retries   int64               `json:"retries"`
	Endpoints []endpointStateView `json:"endpoints"`
}

type topAccountsView struct {
	// Granularity is "day": the sums are daily_usage's, from the UTC day
	// the range starts in.
	Granularity string             `json:"granularity"`
	FromDay     string             `json:"from_day"`
	Accounts    []opsstats.Account `json:"accounts"`
}

type statsView struct {
	*opsstats.Report
	Breakers    []breakerView   `json:"breakers"`
	Workflows   workflowsView   `json:"workflows"`
	TopAccounts topAccountsView `json:"top_accounts"`
}

// statsRange is the request's range (default 1h); another value is 400.
func statsRange(c *gin.Context) (opsstats.Range, error) {
	name := c.DefaultQuery("range", "1h")
	rg, ok := opsstats.Ranges[name]
	if !ok {
		return rg, apierr.Invalid("range must be one of 1h, 24h, 7d, 30d").WithParam("range")
	}
	return rg, nil
}

func (s *Server) adminStats(c *gin.Context) {
	rg, err := statsRange(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	v, err := s.stats(c.Request.Context(), rg)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

// stats is one snapshot of the view over rg. This process's sums are
// flushed first, so its own traffic shows at once (other processes' within
// their flush interval).
func (s *Server) stats(ctx context.Context, rg opsstats.Range) (*statsView, error) {
	if err := s.Ops.Flush(ctx); err != nil {
		s.log.Warn("flush operations stats before reading", "err", err)
	}
	rep, err := opsstats.Build(ctx, s.DB, rg, s.Ops.Now())
	if err != nil {
		return nil, err
	}
	v := &statsView{Report: rep, Breakers: s.breakers(), Workflows: s.failingWorkflows(ctx, rep.From)}
	fromDay := opsstats.Truncate(opsstats.Day, rep.From)
	accts, err := opsstats.TopAccounts(ctx, s.DB, fromDay, topAccounts)
	if err != nil {
		return nil, err
	}
	v.TopAccounts = topAccountsView{Granularity: "day", FromDay: fromDay.Format(time.DateOnly), Accounts: accts}
	return v, nil
}

// breakers is each provider's circuit breakers and key cooldowns, live
// from this process (each API process keeps its own).
func (s *Server) breakers() []breakerView {
	at := func(t time.Time) *string {
		if t.IsZero() {
			return nil
		}
		v := ts(t)
		return &v
	}
	health := s.gateway.Health()
	out := make([]breakerView, 0, len(health))
	for _, h := range health {
		b := breakerView{Provider: h.Provider, State: h.State, Retries: h.Retries, Endpoints: make([]endpointStateView, len(h.Endpoints))}
		for i, e := range h.Endpoints {
			b.Endpoints[i] = endpointStateView{Index: e.Index, Key: e.Key, State: e.State, ConsecutiveFailures: e.ConsecutiveFailures,
				FailureRate: e.FailureRate, OpenUntil: at(e.OpenUntil), CooldownUntil: at(e.CooldownUntil),
				CooldownReason: e.CooldownReason, Reason: e.Reason}
		}
		out = append(out, b)
	}
	return out
}

// failingWorkflows counts and lists the workflows that failed or timed out
// since since; Temporal not configured or not answering is reported, not
// an error.
func (s *Server) failingWorkflows(ctx context.Context, since time.Time) workflowsView {
	l, ok := s.Workflows.(failedWorkflowLister)
	if !ok {
		return workflowsView{Reason: "Temporal is not configured", FailedWorkflows: workflows.FailedWorkflows{Recent: []workflows.FailedWorkflow{}}}
	}
	if !s.Workflows.Available() {
		return workflowsView{Reason: "Temporal is not reachable", FailedWorkflows: workflows.FailedWorkflows{Recent: []workflows.FailedWorkflow{}}}
	}
	f, err := l.FailedWorkflows(ctx, since, recentFailures)
	if err != nil {
		s.log.Warn("list failed workflows", "err", err)
		return workflowsView{Reason: "Temporal did not answer: " + err.Error(), FailedWorkflows: workflows.FailedWorkflows{Recent: []workflows.FailedWorkflow{}}}
	}
	if f.Recent == nil {
		f.Recent = []workflows.FailedWorkflow{}
	}
	return workflowsView{Available: true, FailedWorkflows: f}
}

// heartbeatEvery is how often a stream whose snapshot did not change sends
// a comment instead, so that proxies keep it open.
const heartbeatEvery = 15 * time.Second

// adminStatsStream sends the view as server-sent events: event "stats"
// with the snapshot at once, then on every tick a new one when it changed
// (else, at most every heartbeatEvery, a ": keep-alive" comment). A
// process serves BEAVER_OPS_MAX_STREAMS at once (else 429); a stream ends
// when its client goes, and after the access token's lifetime (the
// dashboard reconnects with a fresh token, so a revoked session stops
// seeing it).
func (s *Server) adminStatsStream(c *gin.Context) {
	rg, err := statsRange(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	select {
	case s.opsStreams <- struct{}{}:
		defer func() { <-s.opsStreams }()
	default:
		s.fail(c, apierr.RateLimited(5*time.Second, "too many operations streams are open on this server; try again shortly"))
		return
	}
	ctx := c.Request.Context()
	if ttl := s.cfg.AccessTokenTTL; ttl > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ttl)
		defer cancel()
	}
	every := s.cfg.OpsStreamInterval
	if every <= 0 {
		every = 5 * time.Second
	}
	ticks, stop := s.opsTicks(every)
	defer stop()

	w := c.Writer
	sse.SetHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	w.Flush()
	out := sse.NewWriter(w)
	var last []byte
	quiet := time.Duration(0)
	send := func() bool {
		v, err := s.stats(ctx, rg)
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			s.log.Warn("operations stream snapshot", "err", err)
			return out.Comment("snapshot failed; retrying") == nil
		}
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		if bytes.Equal(b, last) {
			quiet += every
			if quiet < heartbeatEvery {
				return true
			}
			quiet = 0
			return out.Comment("keep-alive") == nil
		}
		last, quiet = b, 0
		return out.Event("stats", b) == nil
	}
	if !send() {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			if !send() {
				return
			}
		}
	}
}

func (s *Server) opsTicks(every time.Duration) (<-chan time.Time, func()) {
	if s.OpsTicks != nil {
		return s.OpsTicks(every)
	}
	t := time.NewTicker(every)
	return t.C, t.Stop
}
