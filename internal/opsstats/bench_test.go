package opsstats_test

import (
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/opsstats"
)

// BenchmarkObserve is the request path's cost: parallel observations of a
// few models (no flush).
func BenchmarkObserve(b *testing.B) {
	r := opsstats.New(nil, opsstats.Options{})
	models := []string{"openai/gpt-4o-mini", "openai/gpt-4o", "anthropic/claude-3-5-haiku-20241022"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r.Observe(opsstats.Observation{Provider: "openai", Model: models[i%len(models)], Added: 300 * time.Microsecond,
				Upstream: 80 * time.Millisecond, ChargedMicros: 120, ProviderCostMicros: 100})
			i++
		}
	})
}
