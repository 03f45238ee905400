package ratelimit

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/ulule/limiter/v3"
	redisstore "github.com/ulule/limiter/v3/drivers/store/redis"
)

// redisOptions parses url and makes the client fail fast. Timeouts the URL sets
// itself (dial_timeout=..., read_timeout=...) are kept.
func redisOptions(url string, timeout time.Duration) (*redis.Options, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = timeout
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = timeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = timeout
	}
	if o.PoolTimeout == 0 {
		o.PoolTimeout = timeout
	}
	// go-redis retries commands 3 times and dials 5 times by default, which
	// would multiply the timeout; the memory fallback is our retry.
	if o.MaxRetries == 0 {
		o.MaxRetries = -1
	}
	if o.DialerRetries == 0 {
		o.DialerRetries = 1
	}
	o.ContextTimeoutEnabled = true
	// Cluster maintenance notifications are of no use to a counter and cost
	// an extra command (and an error on older servers) per connection.
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return o, nil
}

// lazyRedisStore wraps ulule's Redis store, whose constructor loads its Lua
// scripts and so fails while Redis is down. Building it on first success
// lets New succeed with Redis unreachable. Once built, the store reloads its
// scripts by itself after a Redis restart (NOSCRIPT).
type lazyRedisStore struct {
	client *redis.Client
	opts   limiter.StoreOptions

	mu    sync.Mutex
	store atomic.Pointer[limiter.Store]
}

func (s *lazyRedisStore) init() error {
	_, err := s.get()
	return err
}

func (s *lazyRedisStore) get() (limiter.Store, error) {
	if st := s.store.Load(); st != nil {
		return *st, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.store.Load(); st != nil {
		return *st, nil
	}
	st, err := redisstore.NewStoreWithOptions(s.client, s.opts)
	if err != nil {
		return nil, err
	}
	s.store.Store(&st)
	return st, nil
}

func (s *lazyRedisStore) Get(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	st, err := s.get()
	if err != nil {
		return limiter.Context{}, err
	}
	return st.Get(ctx, key, rate)
}

func (s *lazyRedisStore) Peek(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	st, err := s.get()
	if err != nil {
		return limiter.Context{}, err
	}
	return st.Peek(ctx, key, rate)
}

func (s *lazyRedisStore) Reset(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	st, err := s.get()
	if err != nil {
		return limiter.Context{}, err
	}
	return st.Reset(ctx, key, rate)
}

func (s *lazyRedisStore) Increment(ctx context.Context, key string, count int64, rate limiter.Rate) (limiter.Context, error) {
	st, err := s.get()
	if err != nil {
		return limiter.Context{}, err
	}
	return st.Increment(ctx, key, count, rate)
}
