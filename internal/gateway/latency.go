package gateway

import (
	"sort"
	"sync"
	"time"
)

// LatencyWindow is how many recent requests per provider Latency keeps.
const LatencyWindow = 1024

// Latency keeps the last requests' latencies per provider (GET
// /status/latency).
type Latency struct {
	mu   sync.Mutex
	data map[string]*ring
}

type ring struct {
	vals   [LatencyWindow]time.Duration
	n      int
	next   int
	total  int64
	errors int64
}

// ProviderLatency is one provider's recent latency.
type ProviderLatency struct {
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	Samples  int   `json:"samples"`
	P50MS    int64 `json:"p50_ms"`
	P95MS    int64 `json:"p95_ms"`
	P99MS    int64 `json:"p99_ms"`
}

// NewLatency returns an empty tracker.
func NewLatency() *Latency { return &Latency{data: map[string]*ring{}} }

// Observe records one request to provider.
func (t *Latency) Observe(provider string, d time.Duration, failed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.data[provider]
	if !ok {
		r = &ring{}
		t.data[provider] = r
	}
	r.vals[r.next] = d
	r.next = (r.next + 1) % LatencyWindow
	if r.n < LatencyWindow {
		r.n++
	}
	r.total++
	if failed {
		r.errors++
	}
}

// Snapshot returns nearest-rank percentiles per provider.
func (t *Latency) Snapshot() map[string]ProviderLatency {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]ProviderLatency, len(t.data))
	for name, r := range t.data {
		vals := make([]time.Duration, r.n)
		copy(vals, r.vals[:r.n])
		sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
		pct := func(k int) int64 {
			if len(vals) == 0 {
				return 0
			}
			idx := max((k*len(vals)+99)/100-1, 0)
			return vals[idx].Milliseconds()
		}
		out[name] = ProviderLatency{Requests: r.total, Errors: r.errors, Samples: r.n, P50MS: pct(50), P95MS: pct(95), P99MS: pct(99)}
	}
	return out
}
