package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"
)

const (
	defaultPrefix  = "beaver:rl"
	defaultTimeout = 100 * time.Millisecond
	defaultBackoff = 2 * time.Second
	warnEvery      = time.Minute
)

// Result is the outcome of one Allow or Peek. Limit == 0 means no limit is in
// force: callers then leave the X-RateLimit-* headers out.
type Result struct {
	Limit     int64
	Remaining int64
	// Reset is when the current window ends, rounded up to a whole second
	// (X-RateLimit-Reset is Reset.Unix()).
	Reset time.Time
	// ResetIn is how long until the window reopens: whole seconds, rounded
	// up, at least 1s and never more than the period (rounded up to a whole
	// second). The stores report the window's end in whole seconds only, so
	// it may be up to a second late, never early.
	ResetIn time.Duration
	Allowed bool
	// RetryAfter is ResetIn when !Allowed (Retry-After), else 0.
	RetryAfter time.Duration
}

// Options configures New. Only RedisURL changes behaviour in production; the
// rest have working zero values.
type Options struct {
	RedisURL   string                // "" = in-memory only; "redis://host:port/db"
	Logger     *slog.Logger          // nil = slog.Default()
	Registerer prometheus.Registerer // may be nil; metrics use the "beaver_" prefix
	Prefix     string                // redis key prefix, default "beaver:rl"

	// Timeout bounds each Redis I/O step (dial, write, read) unless the URL
	// sets its own; a whole call gets three of them. Default 100ms: a slow
	// limiter would slow every request, a per-instance one only loosens limits.
	Timeout time.Duration
	// Backoff is how long Redis is skipped after a failure before one call
	// probes it again. Default 2s.
	Backoff time.Duration
}

// Limiter counts hits per key with ulule/limiter. It is safe for concurrent
// use; build one per process and share it.
type Limiter struct {
	log     *slog.Logger
	metrics *metrics

	primary  limiter.Store // Redis (created lazily) or, without Redis, memory
	fallback limiter.Store // memory; nil without Redis
	client   *redis.Client // nil without Redis

	callTimeout time.Duration
	backoff     time.Duration

	// One *limiter.Limiter per distinct (limit, period) over the shared
	// stores. Bounded by the number of distinct configured limits.
	rates sync.Map // rate -> *rateLimiters

	mu       sync.Mutex  // serialises degraded transitions with the gauge
	degraded atomic.Bool // read lock-free on every call
	retryAt  atomic.Int64
	lastWarn atomic.Int64
	warned   atomic.Bool // a warning was logged for the current outage
	closed   atomic.Bool
}

type rate struct {
	limit  int64
	period time.Duration
}

type rateLimiters struct {
	primary, fallback *limiter.Limiter
}

// New builds a Limiter. A malformed RedisURL is an error; an unreachable Redis
// is not: the Limiter starts degraded and switches to Redis once it answers.
func New(opts Options) (*Limiter, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Prefix == "" {
		opts.Prefix = defaultPrefix
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.Backoff <= 0 {
		opts.Backoff = defaultBackoff
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	storeOpts := limiter.StoreOptions{
		Prefix:          opts.Prefix,
		CleanUpInterval: limiter.DefaultCleanUpInterval,
	}
	l := &Limiter{
		log:         opts.Logger,
		metrics:     m,
		callTimeout: 3 * opts.Timeout,
		backoff:     opts.Backoff,
	}
	if opts.RedisURL == "" {
		l.primary = memory.NewStoreWithOptions(storeOpts)
		return l, nil
	}
	ro, err := redisOptions(opts.RedisURL, opts.Timeout)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: bad redis URL: %w", err)
	}
	l.client = redis.NewClient(ro)
	rs := &lazyRedisStore{client: l.client, opts: storeOpts}
	l.primary = rs
	l.fallback = memory.NewStoreWithOptions(storeOpts)
	if err := rs.init(); err != nil {
		l.markFailed(err)
	}
	return l, nil
}

// Allow counts one hit on key and reports whether it is within limit hits per
// period. limit <= 0 means unlimited: nothing is counted and the result is
// Result{Allowed: true}. A period under 1ms is treated the same way, since it
// cannot limit anything (and Redis would keep such a counter forever).
//
// The counter is keyed by key and period, not by limit, so a limit changed
// mid-window applies to the hits already counted, and Peek sees the same
// count whatever limit it is given.
func (l *Limiter) Allow(ctx context.Context, key string, limit int64, period time.Duration) Result {
	return l.do(ctx, key, limit, period, false)
}

// Peek reports the state of key without counting a hit (for displays such as
// requests_this_minute = Limit - Remaining). Allowed says whether the next
// Allow would pass.
func (l *Limiter) Peek(ctx context.Context, key string, limit int64, period time.Duration) Result {
	return l.do(ctx, key, limit, period, true)
}

// Degraded reports whether calls are currently served from the per-instance
// memory store because Redis failed. Always false without Redis.
func (l *Limiter) Degraded() bool { return l.degraded.Load() }

// Close releases the Redis client. Later calls are served from memory. The
// memory store's cleanup goroutine belongs to ulule/limiter and stops when the
// store is garbage collected (it has no Close).
func (l *Limiter) Close() error {
	if !l.closed.CompareAndSwap(false, true) || l.client == nil {
		return nil
	}
	return l.client.Close()
}

func (l *Limiter) do(ctx context.Context, key string, limit int64, period time.Duration, peek bool) Result {
	period = period.Truncate(time.Millisecond) // Redis TTLs are in ms
	if limit <= 0 || period <= 0 {
		return Result{Allowed: true}
	}
	rl := l.limitersFor(limit, period)
	key = key + "|" + period.String()

	if l.fallback == nil {
		c, err := call(ctx, rl.primary, key, peek)
		if err != nil {
			// The memory store does not fail; if it ever did, let the request through.
			return Result{Allowed: true}
		}
		return toResult(c, peek, period, time.Now())
	}

	if l.tryRedis(time.Now()) {
		// Every request counts whatever becomes of it, so a caller that has
		// gone away must not cancel the count (nor look like a Redis failure).
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.callTimeout)
		c, err := call(cctx, rl.primary, key, peek)
		cancel()
		if err == nil {
			l.markHealthy()
			return toResult(c, peek, period, time.Now())
		}
		l.markFailed(err)
	}
	if !l.closed.Load() {
		l.metrics.fallback.Inc()
	}
	c, err := call(ctx, rl.fallback, key, peek)
	if err != nil {
		return Result{Allowed: true}
	}
	return toResult(c, peek, period, time.Now())
}

// call runs one store operation; a panic inside the library or the Redis
// client becomes an error so that it takes the fallback path instead of the
// request.
func call(ctx context.Context, lim *limiter.Limiter, key string, peek bool) (c limiter.Context, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("ratelimit: store panicked: %v", p)
		}
	}()
	if peek {
		return lim.Peek(ctx, key)
	}
	return lim.Get(ctx, key)
}

func (l *Limiter) limitersFor(limit int64, period time.Duration) *rateLimiters {
	k := rate{limit, period}
	if v, ok := l.rates.Load(k); ok {
		return v.(*rateLimiters)
	}
	r := limiter.Rate{Limit: limit, Period: period}
	rl := &rateLimiters{primary: limiter.New(l.primary, r)}
	if l.fallback != nil {
		rl.fallback = limiter.New(l.fallback, r)
	}
	v, _ := l.rates.LoadOrStore(k, rl)
	return v.(*rateLimiters)
}

func toResult(c limiter.Context, peek bool, period time.Duration, now time.Time) Result {
	// ulule truncates the window end to Unix seconds: the real end lies in
	// [c.Reset, c.Reset+1). Round up so Reset and ResetIn never point
	// before it.
	reset := time.Unix(c.Reset+1, 0)
	allowed := !c.Reached
	if peek {
		allowed = c.Remaining > 0
	}
	r := Result{Limit: c.Limit, Remaining: c.Remaining, Reset: reset, Allowed: allowed,
		ResetIn: resetIn(reset, period, now)}
	if !allowed {
		r.RetryAfter = r.ResetIn
	}
	return r
}

// resetIn is the whole seconds from now until the window that ends before
// reset reopens. The window opened at or before now, so it ends within one
// period of now: rounding reset up to a whole second can overshoot by up to
// a second (a minute window opened at 12:00:00.3 says reset 12:01:01, 61s
// away at 12:00:00.3), and the period caps that.
func resetIn(reset time.Time, period time.Duration, now time.Time) time.Duration {
	d := min(reset.Sub(now), period)
	return max((d+time.Second-1)/time.Second*time.Second, time.Second)
}

// tryRedis says whether this call should go to Redis. While degraded, only one
// call per backoff period probes it (the one that moves retryAt); the others
// stay on memory so an outage costs one timeout per period, not one per call.
func (l *Limiter) tryRedis(now time.Time) bool {
	if l.closed.Load() {
		return false
	}
	if !l.degraded.Load() {
		return true
	}
	at := l.retryAt.Load()
	if now.UnixNano() < at {
		return false
	}
	return l.retryAt.CompareAndSwap(at, now.Add(l.backoff).UnixNano())
}

func (l *Limiter) markFailed(err error) {
	now := time.Now()
	l.retryAt.Store(now.Add(l.backoff).UnixNano())
	l.setDegraded(true)
	last := l.lastWarn.Load()
	if now.UnixNano()-last >= int64(warnEvery) && l.lastWarn.CompareAndSwap(last, now.UnixNano()) {
		l.warned.Store(true)
		l.log.Warn("ratelimit: redis unavailable, enforcing limits per instance from memory",
			"err", err.Error(), "retry_every", l.backoff) // Error(): pkg/errors would print a stack trace
	}
}

func (l *Limiter) markHealthy() {
	if !l.degraded.Load() || !l.setDegraded(false) {
		return
	}
	if l.warned.Swap(false) {
		l.log.Info("ratelimit: redis reachable again, limits shared across instances")
	}
}

// setDegraded flips the state and the gauge together; it reports whether the
// state changed.
func (l *Limiter) setDegraded(v bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.degraded.Load() == v {
		return false
	}
	l.degraded.Store(v)
	if v {
		l.metrics.degraded.Set(1)
	} else {
		l.metrics.degraded.Set(0)
	}
	return true
}
