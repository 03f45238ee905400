// Package temporalx connects Beaver processes to Temporal: dialing with
// short timeouts (so `beaver api` starts when Temporal is down), a
// connection that keeps trying in the background and knows whether
// Temporal answers (Conn), and the local dev server that `beaver dev` runs
// as a child process. It knows no workflow: workflows.Starter starts them
// through a Conn.
package temporalx

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"

	"github.com/beaver-gateway/beaver/internal/config"
)

// DialTimeout bounds one connection attempt.
const DialTimeout = 3 * time.Second

// ClientOptions are the client options for cfg. The SDK logs through log,
// warnings and errors only (its info lines are noise in Beaver's output).
func ClientOptions(cfg *config.Config, log *slog.Logger) client.Options {
	if log == nil {
		log = slog.Default()
	}
	return client.Options{
		HostPort:  cfg.TemporalAddress,
		Namespace: cfg.TemporalNamespace,
		Logger:    sdklog.NewStructuredLogger(slog.New(minLevel{h: log.Handler(), min: slog.LevelWarn}).With("component", "temporal-sdk")),
	}
}

// Dial connects once, giving up after DialTimeout; the client has
// interceptors (which apply to its workers too).
func Dial(ctx context.Context, cfg *config.Config, log *slog.Logger, interceptors ...interceptor.ClientInterceptor) (client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	o := ClientOptions(cfg, log)
	o.Interceptors = interceptors
	c, err := client.DialContext(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("temporal at %s (namespace %s): %w", cfg.TemporalAddress, cfg.TemporalNamespace, err)
	}
	return c, nil
}

// DialRetry dials until it connects or ctx ends, backing off from 1s to
// 30s, and logs the first failure and then every few attempts.
func DialRetry(ctx context.Context, cfg *config.Config, log *slog.Logger, interceptors ...interceptor.ClientInterceptor) (client.Client, error) {
	wait := time.Second
	for attempt := 1; ; attempt++ {
		c, err := Dial(ctx, cfg, log, interceptors...)
		if err == nil {
			if attempt > 1 {
				log.Info("connected to Temporal", "address", cfg.TemporalAddress, "attempts", attempt)
			}
			return c, nil
		}
		if attempt == 1 || attempt%10 == 0 {
			log.Warn("Temporal not reachable yet; retrying", "address", cfg.TemporalAddress, "attempt", attempt, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 30*time.Second)
	}
}

// minLevel drops records below min.
type minLevel struct {
	h   slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}
func (m minLevel) Handle(ctx context.Context, r slog.Record) error { return m.h.Handle(ctx, r) }
func (m minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{h: m.h.WithAttrs(a), min: m.min}
}
func (m minLevel) WithGroup(g string) slog.Handler { return minLevel{h: m.h.WithGroup(g), min: m.min} }
