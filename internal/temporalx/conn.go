package temporalx

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"

	"github.com/beaver-gateway/beaver/internal/config"
)

// HealthEvery is how often a Conn asks Temporal whether it is up.
const HealthEvery = 5 * time.Second

// Conn is a Temporal client that may not be connected yet. Run dials in the
// background until Temporal answers, then keeps checking its health, so
// Available tells callers at once whether a call can work (the API answers
// 503 right away instead of waiting for gRPC timeouts).
type Conn struct {
	// Interceptors are given to the client it dials (and so to the
	// workers built on it): the tracing interceptor when traces are on.
	// Set before Run.
	Interceptors []interceptor.ClientInterceptor

	cfg *config.Config
	log *slog.Logger

	mu     sync.Mutex
	client client.Client
	up     atomic.Bool
	ready  chan struct{}
	once   sync.Once
}

// NewConn returns an unconnected Conn; call Run.
func NewConn(cfg *config.Config, log *slog.Logger) *Conn {
	if log == nil {
		log = slog.Default()
	}
	return &Conn{cfg: cfg, log: log, ready: make(chan struct{})}
}

// ConnFor wraps a client that is already connected.
func ConnFor(c client.Client, log *slog.Logger) *Conn {
	k := NewConn(nil, log)
	k.setClient(c)
	return k
}

func (k *Conn) setClient(c client.Client) {
	k.mu.Lock()
	k.client = c
	k.mu.Unlock()
	k.setUp(true)
	k.once.Do(func() { close(k.ready) })
}

func (k *Conn) setUp(up bool) {
	if k.up.Swap(up) != up {
		if up {
			k.log.Info("Temporal is available")
		} else {
			k.log.Warn("Temporal is unavailable: workflow features answer 503 until it is back")
		}
	}
}

// Client returns the client, nil before the first successful dial.
func (k *Conn) Client() client.Client {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.client
}

// Available reports whether Temporal answered the last health check.
func (k *Conn) Available() bool { return k.Client() != nil && k.up.Load() }

// Ready is closed once the first connection succeeded.
func (k *Conn) Ready() <-chan struct{} { return k.ready }

// MarkDown records that a call found Temporal unreachable; the next
// successful health check marks it up again.
func (k *Conn) MarkDown() {
	if k.Client() != nil {
		k.setUp(false)
	}
}

// Run connects (unless already connected) and then checks health every
// HealthEvery, until ctx ends. Run it in its own goroutine.
func (k *Conn) Run(ctx context.Context) {
	if k.Client() == nil {
		c, err := DialRetry(ctx, k.cfg, k.log, k.Interceptors...)
		if err != nil {
			return // ctx ended
		}
		k.setClient(c)
	}
	t := time.NewTicker(HealthEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		k.setUp(k.healthy(ctx))
	}
}

func (k *Conn) healthy(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := k.Client().CheckHealth(ctx, &client.CheckHealthRequest{})
	return err == nil
}

// Close closes the client, if any.
func (k *Conn) Close() {
	if c := k.Client(); c != nil {
		c.Close()
	}
}
