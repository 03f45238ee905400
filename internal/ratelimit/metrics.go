package ratelimit

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	fallback prometheus.Counter
	degraded prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		fallback: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "beaver_ratelimit_store_fallback_total",
			Help: "Rate limit calls served from the per-instance memory store because Redis failed or was being skipped after a failure.",
		}),
		degraded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "beaver_ratelimit_degraded",
			Help: "1 while rate limits are enforced per instance from memory because Redis is unavailable, else 0.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.fallback, err = register(reg, m.fallback); err != nil {
		return nil, err
	}
	if m.degraded, err = register(reg, m.degraded); err != nil {
		return nil, err
	}
	return m, nil
}

// register reuses an identical collector already registered (a second Limiter
// in the same process, or a test) instead of failing.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing, nil
		}
	}
	return c, err
}
