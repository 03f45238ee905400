// Package opsstats keeps the operations aggregates behind the live
// operations view (GET /admin/stats): per minute, hour and UTC day, per
// provider and model, the requests that ended, their errors by class,
// latency (added by Beaver and the upstream's, with histograms) and money
// (charged and provider cost). The gateway tells a Recorder of each request
// once it is settled; the Recorder sums in memory (a map lookup under a
// read lock and a few atomic adds on the request path) and adds its sums to
// the ops_stats table every few seconds (Run, Flush) with additive upserts,
// so any number of API processes write the same rows and nothing is written
// per request. The views read those rows (Read, Report), never the usage
// log.
package opsstats

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beaver-gateway/beaver/internal/db"
)

// Outcome is how a request ended, for the error counts.
type Outcome int

const (
	// OK: an answer (or an embedding, an image) was delivered.
	OK Outcome = iota
	// UpstreamError: the provider failed (5xx, 429, timeouts, connection
	// failures, an open circuit) or the stream broke midway.
	UpstreamError
	// ClientError: the upstream refused the request itself (another 4xx,
	// a request its format cannot express).
	ClientError
	// Cancelled: the client left; neither side's error.
	Cancelled
)

// Observation is one settled request.
type Observation struct {
	Provider, Model string
	Outcome         Outcome
	// Added is the latency Beaver added (admission, routing, the charge);
	// Upstream is the time the provider took to answer (to open a
	// stream).
	Added, Upstream    time.Duration
	ChargedMicros      int64
	ProviderCostMicros int64
}

// cell is what one process summed for one (minute, provider, model) since
// its last flush; written with atomic adds only.
type cell struct {
	requests, upstreamErrors, clientErrors, cancelled atomic.Int64
	addedUS, upstreamUS                               atomic.Int64
	charged, cost                                     atomic.Int64
	added, upstream                                   [Buckets]atomic.Int64
}

type cellKey struct {
	minute          int64 // Unix minutes
	provider, model string
}

// Options tune a Recorder.
type Options struct {
	// Now is the clock (tests); nil = time.Now.
	Now func() time.Time
	Log *slog.Logger
	// MinuteRetention is how long minute rows are kept (0 = 48h).
	MinuteRetention time.Duration
}

// Recorder sums observations in memory and flushes them to ops_stats.
type Recorder struct {
	db  *db.DB
	now func() time.Time
	log *slog.Logger
	// keep: minute rows older than this are pruned at most hourly.
	keep      time.Duration
	lastPrune time.Time

	mu    sync.RWMutex // cells is swapped under mu; cells' counters are atomic
	cells map[cellKey]*cell

	flushMu sync.Mutex // one flush at a time
}

// New returns a Recorder writing to d.
func New(d *db.DB, o Options) *Recorder {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.MinuteRetention <= 0 {
		o.MinuteRetention = 48 * time.Hour
	}
	return &Recorder{db: d, now: o.Now, log: o.Log, keep: o.MinuteRetention, cells: map[cellKey]*cell{}}
}

// Now is the Recorder's clock.
func (r *Recorder) Now() time.Time { return r.now() }

// Observe records one settled request, at the Recorder's clock. It is
// safe for concurrent use and cheap: a map lookup under a read lock and a
// few atomic adds (a write lock only for the first request of a minute,
// provider and model).
func (r *Recorder) Observe(o Observation) {
	if r == nil {
		return
	}
	k := cellKey{minute: r.now().Unix() / 60, provider: o.Provider, model: o.Model}
	for {
		r.mu.RLock()
		if c := r.cells[k]; c != nil {
			// Under the read lock: a flush (write lock) sees every add to
			// the map it takes.
			c.add(o)
			r.mu.RUnlock()
			return
		}
		r.mu.RUnlock()
		r.mu.Lock()
		if r.cells[k] == nil {
			r.cells[k] = &cell{}
		}
		r.mu.Unlock()
	}
}

func (c *cell) add(o Observation) {
	c.requests.Add(1)
	switch o.Outcome {
	case UpstreamError:
		c.upstreamErrors.Add(1)
	case ClientError:
		c.clientErrors.Add(1)
	case Cancelled:
		c.cancelled.Add(1)
	}
	c.addedUS.Add(o.Added.Microseconds())
	c.upstreamUS.Add(o.Upstream.Microseconds())
	c.added[BucketOf(o.Added)].Add(1)
	c.upstream[BucketOf(o.Upstream)].Add(1)
	if o.ChargedMicros != 0 {
		c.charged.Add(o.ChargedMicros)
	}
	if o.ProviderCostMicros != 0 {
		c.cost.Add(o.ProviderCostMicros)
	}
}

// Run flushes every interval until ctx ends, then once more.
func (r *Recorder) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := r.Flush(fctx); err != nil {
				r.log.Error("flush operations stats", "err", err)
			}
			cancel()
			return
		case <-t.C:
			if err := r.Flush(ctx); err != nil {
				r.log.Warn("flush operations stats; kept for the next flush", "err", err)
			}
		}
	}
}

// Flush adds what was observed since the last flush to ops_stats (minute,
// hour and day rows) in one transaction. On failure the sums are kept for
// the next flush: nothing is lost, nothing is added twice.
func (r *Recorder) Flush(ctx context.Context) error {
	if r == nil {
		return nil
	}
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.mu.Lock()
	var taken map[cellKey]*cell
	if len(r.cells) > 0 { // decided under the lock: the map is swapped or left alone
		taken, r.cells = r.cells, map[cellKey]*cell{}
	}
	r.mu.Unlock()
	now := r.now()
	if taken != nil {
		rows := rowsOf(taken)
		if err := upsert(ctx, r.db, rows); err != nil {
			r.putBack(taken)
			return err
		}
	}
	if now.Sub(r.lastPrune) >= time.Hour {
		if err := prune(ctx, r.db, now.Add(-r.keep)); err != nil {
			return err
		}
		r.lastPrune = now
	}
	return nil
}

// putBack adds cells that could not be written to the current ones.
func (r *Recorder) putBack(taken map[cellKey]*cell) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, old := range taken {
		c := r.cells[k]
		if c == nil {
			r.cells[k] = old
			continue
		}
		c.requests.Add(old.requests.Load())
		c.upstreamErrors.Add(old.upstreamErrors.Load())
		c.clientErrors.Add(old.clientErrors.Load())
		c.cancelled.Add(old.cancelled.Load())
		c.addedUS.Add(old.addedUS.Load())
		c.upstreamUS.Add(old.upstreamUS.Load())
		c.charged.Add(old.charged.Load())
		c.cost.Add(old.cost.Load())
		for i := range Buckets {
			c.added[i].Add(old.added[i].Load())
			c.upstream[i].Add(old.upstream[i].Load())
		}
	}
}
