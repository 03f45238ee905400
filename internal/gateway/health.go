package gateway

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/beaver-gateway/beaver/internal/providers"
)

// Health reports each configured provider's endpoints (base URLs and keys,
// keys by fingerprint only) with their circuit breakers and cooldowns,
// sorted by provider (GET /status/providers).
func (g *Gateway) Health() []providers.Health {
	names := g.providers.Names()
	out := make([]providers.Health, 0, len(names))
	for _, name := range names {
		p, ok := g.providers.Get(name)
		if !ok {
			continue // removed since Names
		}
		if h, ok := providers.HealthOf(p); ok {
			h.Provider = name
			out = append(out, h)
		}
	}
	return out
}

// Fallbacks returns the configured fallback chains.
func (g *Gateway) Fallbacks() map[string][]string { return g.opts.Fallbacks }

// routeMetrics are the gateway's routing counters.
type routeMetrics struct {
	fallbacks *prometheus.CounterVec
}

func newRouteMetrics(g *Gateway, reg prometheus.Registerer) routeMetrics {
	m := routeMetrics{fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "beaver_gateway_fallbacks_total",
		Help: "Requests passed on to the next model of their fallback chain, by the model that failed."}, []string{"model"})}
	if reg != nil {
		reg.MustRegister(m.fallbacks, healthCollector{g: g})
	}
	return m
}

// healthCollector exports the providers' health at scrape time.
type healthCollector struct{ g *Gateway }

var (
	descBreaker = prometheus.NewDesc("beaver_upstream_breaker_state",
		"Circuit breaker of each provider endpoint (base URL and key, by fingerprint): 0 closed, 1 half-open, 2 open.",
		[]string{"provider", "endpoint", "key"}, nil)
	descFailures = prometheus.NewDesc("beaver_upstream_consecutive_failures",
		"Consecutive failures of each provider endpoint.", []string{"provider", "endpoint", "key"}, nil)
	descCooling = prometheus.NewDesc("beaver_upstream_key_cooldown",
		"1 while a provider endpoint's key cools down after a 429 or 401/403.", []string{"provider", "endpoint", "key"}, nil)
	descRetries = prometheus.NewDesc("beaver_upstream_retries_total",
		"Upstream attempts that were retries, by provider.", []string{"provider"}, nil)
)

func (healthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descBreaker
	ch <- descFailures
	ch <- descCooling
	ch <- descRetries
}

func (c healthCollector) Collect(ch chan<- prometheus.Metric) {
	for _, h := range c.g.Health() {
		ch <- prometheus.MustNewConstMetric(descRetries, prometheus.CounterValue, float64(h.Retries), h.Provider)
		for _, e := range h.Endpoints {
			labels := []string{h.Provider, strconv.Itoa(e.Index), e.Key}
			state := 0.0
			switch e.State {
			case providers.StateHalfOpen:
				state = 1
			case providers.StateOpen:
				state = 2
			}
			cooling := 0.0
			if !e.CooldownUntil.IsZero() {
				cooling = 1
			}
			ch <- prometheus.MustNewConstMetric(descBreaker, prometheus.GaugeValue, state, labels...)
			ch <- prometheus.MustNewConstMetric(descFailures, prometheus.GaugeValue, float64(e.ConsecutiveFailures), labels...)
			ch <- prometheus.MustNewConstMetric(descCooling, prometheus.GaugeValue, cooling, labels...)
		}
	}
}
