// Package app wires Beaver's dependencies from a Config: the one place that
// knows how the pieces fit, used by every subcommand and by end-to-end tests.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/beaver-gateway/beaver/api"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/mail"
	"github.com/beaver-gateway/beaver/internal/payments"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/internal/ratelimit"
)

// App is a wired Beaver process.
type App struct {
	Config    *config.Config
	Log       *slog.Logger
	DB        *db.DB
	Bus       bus.Bus
	Auth      *auth.Service
	Catalog   *catalog.Catalog
	Ledger    *billing.Ledger
	Billing   *billing.Engine
	Limiter   *ratelimit.Limiter
	Providers map[string]providers.Provider
	Mailer    mail.Sender
	Payments  *payments.Client // nil = card top-ups disabled
	Registry  *prometheus.Registry

	lowBalance atomic.Pointer[func(accountID string, balance, threshold int64)]
	charged    atomic.Pointer[func(accountID string, before, after int64)]

	// AdminCreated and AdminPassword report the bootstrap admin (the
	// password only when it was generated).
	AdminCreated  bool
	AdminPassword string

	cancel context.CancelFunc
}

// LoadSecret returns BEAVER_SECRET, or the secret kept in the data dir,
// creating it on first start.
func LoadSecret(cfg *config.Config) (string, error) {
	if cfg.Secret != "" {
		return cfg.Secret, nil
	}
	path := filepath.Join(cfg.DataDir, "secret")
	if b, err := os.ReadFile(path); err == nil {
		if s := strings.TrimSpace(string(b)); len(s) >= 32 {
			return s, nil
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return "", fmt.Errorf("create data dir: %w", err)
	}
	s := fmt.Sprintf("%x", ids.Random(32))
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return s, nil
}

// Open opens the database, migrates it, seeds the catalog and prices,
// ensures the bootstrap admin, and builds every service.
func Open(ctx context.Context, cfg *config.Config, log *slog.Logger) (*App, error) {
	secret, err := LoadSecret(cfg)
	if err != nil {
		return nil, err
	}
	d, err := db.Open(cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	a := &App{Config: cfg, Log: log, DB: d, Registry: prometheus.NewRegistry()}
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := d.MigrateUp(ctx); err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	// The bus must reach other processes on either database: `beaver worker`
	// revokes sessions (password reset) that the API has cached.
	if a.Bus, err = bus.New(bg, d, cfg.DatabaseURL, log); err != nil {
		return nil, fmt.Errorf("invalidation bus: %w", err)
	}
	a.Catalog = catalog.New(d, a.Bus, log)
	if err := a.Catalog.Seed(ctx); err != nil {
		return nil, err
	}
	if err := a.Catalog.EnsurePrices(ctx); err != nil {
		return nil, err
	}
	if err := a.Catalog.Reload(ctx); err != nil {
		return nil, err
	}
	go a.Catalog.Watch(bg, 15_000_000_000)
	a.Auth = auth.NewService(d, auth.Hasher{MemoryKiB: cfg.ArgonMemoryKiB, Time: cfg.ArgonTime, Threads: cfg.ArgonThreads},
		auth.NewKeyed(secret), a.Bus, cfg.AccessTokenTTL, cfg.RefreshTokenTTL)
	a.AdminCreated, a.AdminPassword, err = auth.EnsureAdmin(ctx, a.Auth, cfg.AdminEmail, cfg.AdminPassword)
	if err != nil {
		return nil, fmt.Errorf("bootstrap admin: %w", err)
	}
	a.Ledger = &billing.Ledger{DB: d}
	a.Billing = billing.NewEngine(d, log, billing.EngineOptions{InstanceID: cfg.InstanceID, Registerer: a.Registry,
		OnLowBalance: func(id string, balance, threshold int64) {
			if f := a.lowBalance.Load(); f != nil {
				(*f)(id, balance, threshold)
			}
		},
		OnCharged: func(id string, before, after int64) {
			if f := a.charged.Load(); f != nil {
				(*f)(id, before, after)
			}
		}})
	a.Bus.Subscribe(a.Billing.Invalidate)
	a.Limiter, err = ratelimit.New(ratelimit.Options{RedisURL: cfg.RedisURL, Logger: log, Registerer: a.Registry})
	if err != nil {
		return nil, fmt.Errorf("rate limiter: %w", err)
	}
	a.Providers, err = buildProviders(cfg)
	if err != nil {
		return nil, err
	}
	if a.Mailer, err = mail.New(cfg, log); err != nil {
		return nil, fmt.Errorf("mailer: %w", err)
	}
	a.Payments, err = payments.New(payments.Config{SecretKey: cfg.StripeSecretKey, WebhookSecret: cfg.StripeWebhookSecret,
		APIBase: cfg.StripeAPIBase, SuccessURL: cfg.PublicURL + "/billing?checkout=success&session_id={CHECKOUT_SESSION_ID}",
		CancelURL: cfg.PublicURL + "/billing?checkout=cancel"})
	if errors.Is(err, payments.ErrDisabled) {
		a.Payments, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stripe: %w", err)
	}
	ok = true
	return a, nil
}

func buildProviders(cfg *config.Config) (map[string]providers.Provider, error) {
	out := map[string]providers.Provider{}
	for name, pc := range providers.DefaultConfigs() {
		c, ok := cfg.Providers[name]
		if !ok {
			continue
		}
		pc.BaseURL, pc.APIKey = c.BaseURL, c.APIKey
		pc.ConnectTimeout = cfg.UpstreamConnectTimeout
		pc.FirstByteTimeout = cfg.UpstreamFirstByteTimeout
		pc.IdleTimeout = cfg.UpstreamIdleTimeout
		p, err := providers.New(pc)
		if err != nil {
			return nil, err
		}
		out[name] = p
	}
	return out, nil
}

// APIDeps returns the API's dependencies.
func (a *App) APIDeps() api.Deps {
	return api.Deps{Config: a.Config, DB: a.DB, Auth: a.Auth, Ledger: a.Ledger, Billing: a.Billing, Catalog: a.Catalog,
		Providers: a.Providers, Limiter: a.Limiter, Mailer: a.Mailer, Log: a.Log, Registry: a.Registry, Payments: a.Payments}
}

// SetLowBalanceHook routes the billing engine's "a charge took this account
// below its threshold" events (Temporal's low-balance alert workflow).
func (a *App) SetLowBalanceHook(f func(accountID string, balance, threshold int64)) {
	a.lowBalance.Store(&f)
}

// SetChargeHook receives every committed balance decrease (auto-recharge).
func (a *App) SetChargeHook(f func(accountID string, before, after int64)) {
	a.charged.Store(&f)
}

// Close stops background work: queued charges are committed and unused
// leases returned first.
func (a *App) Close() {
	if a.Billing != nil {
		a.Billing.Close()
	}
	if a.cancel != nil {
		a.cancel()
	}
	if a.Limiter != nil {
		_ = a.Limiter.Close()
	}
	if a.DB != nil {
		_ = a.DB.Close()
	}
}

// ErrUsage reports a bad command line.
var ErrUsage = errors.New("usage")
