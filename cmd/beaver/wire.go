package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.temporal.io/sdk/interceptor"

	"github.com/beaver-gateway/beaver/api"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/batches"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/files"
	"github.com/beaver-gateway/beaver/internal/finetune"
	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/invoices"
	"github.com/beaver-gateway/beaver/internal/mail"
	"github.com/beaver-gateway/beaver/internal/opsstats"
	"github.com/beaver-gateway/beaver/internal/payments"
	"github.com/beaver-gateway/beaver/internal/payments/stripe"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/internal/ratelimit"
	"github.com/beaver-gateway/beaver/internal/registry"
	"github.com/beaver-gateway/beaver/internal/signing"
	"github.com/beaver-gateway/beaver/internal/telemetry"
	"github.com/beaver-gateway/beaver/internal/temporalx"
	"github.com/beaver-gateway/beaver/worker"
	"github.com/beaver-gateway/beaver/workflows"
)

// The API's interface for Temporal is satisfied by the one starter.
var _ api.Workflows = (*workflows.Starter)(nil)

// errUsage reports a bad command line.
var errUsage = errors.New("usage")

// process is a wired Beaver process: every subcommand that opens the
// database builds it with wire, the one place that knows how the pieces fit.
type process struct {
	cfg       *config.Config
	log       *slog.Logger
	db        *db.DB
	bus       bus.Bus
	auth      *auth.Service
	catalog   *catalog.Catalog
	ledger    *billing.Ledger
	billing   *billing.Engine
	limiter   *ratelimit.Limiter
	replays   signing.Replays    // request signatures seen, shared by replicas
	providers *registry.Registry // built-ins from the environment, operator providers from the database
	mailer    mail.Sender
	payments  *payments.Service
	invoices  *invoices.Service
	finetune  *finetune.Service
	// gateway runs inference for the API and for the worker's durable jobs
	// (batches, background responses).
	gateway *gateway.Gateway
	// ops sums settled requests for the operations view and flushes them
	// every BEAVER_OPS_FLUSH_INTERVAL until stopOps (which waits for the
	// last flush).
	ops     *opsstats.Recorder
	stopOps func()
	// files and batches serve /v1/files and /v1/batches; the worker runs
	// the batches' lines through gateway.
	files    *files.Service
	batches  *batches.Service
	registry *prometheus.Registry
	// temporal is the connection to Temporal, not dialed yet (the caller
	// runs it); workflows starts everything through it, answering 503
	// while it is down.
	temporal  *temporalx.Conn
	workflows *workflows.Starter

	// adminCreated and adminPassword report the bootstrap admin (the
	// password only when it was generated).
	adminCreated  bool
	adminPassword string

	// telemetry is error tracking and traces (off unless configured);
	// close flushes it last.
	telemetry *telemetry.Telemetry

	cancel   context.CancelFunc
	stopAuth func() // leaves the replicas that revocations wait for
}

// wire opens the database, migrates it, seeds the catalog and prices,
// ensures the bootstrap admin, and builds every service.
func wire(ctx context.Context, cfg *config.Config, log *slog.Logger) (*process, error) {
	secret, err := loadSecret(cfg)
	if err != nil {
		return nil, err
	}
	d, err := db.Open(cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	p := &process{cfg: cfg, log: log, db: d, registry: prometheus.NewRegistry()}
	ok := false
	defer func() {
		if !ok {
			p.close()
		}
	}()
	p.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if p.telemetry, err = telemetry.New(ctx, telemetry.FromConfig(cfg)); err != nil {
		return nil, err
	}
	if p.telemetry.Tracing() || p.telemetry.Hub() != nil {
		log.Info("telemetry", "sentry", p.telemetry.Hub() != nil, "traces", p.telemetry.Tracing(), "otlp_protocol", cfg.TracesProtocol)
	}
	if err := d.MigrateUp(ctx); err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	// The bus must reach other processes on either database: `beaver worker`
	// revokes sessions (password reset) that the API has cached.
	if p.bus, err = bus.New(bg, d, cfg.DatabaseListenURL, log); err != nil {
		return nil, fmt.Errorf("invalidation bus: %w", err)
	}
	p.catalog = catalog.New(d, p.bus, log)
	if err := p.catalog.Seed(ctx); err != nil {
		return nil, err
	}
	if err := p.catalog.EnsurePrices(ctx); err != nil {
		return nil, err
	}
	if err := p.catalog.Reload(ctx); err != nil {
		return nil, err
	}
	go p.catalog.Watch(bg, 15_000_000_000)
	p.auth = auth.NewService(d, auth.Hasher{MemoryKiB: cfg.ArgonMemoryKiB, Time: cfg.ArgonTime, Threads: cfg.ArgonThreads},
		auth.NewKeyed(secret), p.bus, cfg.AccessTokenTTL, cfg.RefreshTokenTTL)
	p.auth.Log = log
	// Every process joins, the worker too: a change waits until each one
	// that may serve from its caches has applied it.
	if p.stopAuth, err = p.auth.Start(ctx); err != nil {
		return nil, err
	}
	p.adminCreated, p.adminPassword, err = auth.EnsureAdmin(ctx, p.auth, cfg.AdminEmail, cfg.AdminPassword)
	if err != nil {
		return nil, fmt.Errorf("bootstrap admin: %w", err)
	}

	p.temporal = temporalx.NewConn(cfg, log)
	if ti, err := p.telemetry.TemporalInterceptor(); err != nil {
		return nil, fmt.Errorf("temporal tracing: %w", err)
	} else if ti != nil {
		p.temporal.Interceptors = []interceptor.ClientInterceptor{ti}
	}
	p.workflows = workflows.NewStarter(workflows.StarterOptions{Conn: p.temporal, Auth: p.auth,
		TaskQueue: worker.TaskQueue(cfg), Log: log, Registerer: p.registry,
		FineTuningPollEvery: cfg.FineTuningPollInterval})
	events := balanceEvents{workflows: p.workflows, recharge: payments.NewRechargeTrigger(d), log: log}
	p.invoices = invoices.New(d, invoices.IssuerFromConfig(cfg))
	p.ledger = &billing.Ledger{DB: d, Events: events, Documents: p.invoices}
	p.billing = billing.NewEngine(d, log, billing.EngineOptions{InstanceID: cfg.InstanceID, Registerer: p.registry,
		Events: events, AsyncCommit: !cfg.PGSynchronousCommit, GatherWait: gatherWait(cfg.CommitGather)})
	// Through auth, not the bus: leases and quotas must be stale before a
	// key's or account's change is acknowledged.
	p.auth.OnChange(p.billing.Invalidate)

	p.limiter, err = ratelimit.New(ratelimit.Options{RedisURL: cfg.RedisURL, Logger: log, Registerer: p.registry})
	if err != nil {
		return nil, fmt.Errorf("rate limiter: %w", err)
	}
	if p.replays, err = signing.NewReplays(p.db.DB, cfg.RedisURL); err != nil {
		return nil, err
	}
	p.providers, err = registry.New(ctx, registry.Options{DB: d, Bus: p.bus, Keyed: auth.NewKeyed(secret),
		Builtins: registry.BuiltinConfigs(cfg, log), Template: registry.Tune(providers.Config{}, cfg, log), Log: log})
	if err != nil {
		return nil, fmt.Errorf("providers: %w", err)
	}
	p.ops = opsstats.New(d, opsstats.Options{Log: log})
	opsCtx, opsCancel := context.WithCancel(context.Background())
	opsDone := make(chan struct{})
	go func() { defer close(opsDone); p.ops.Run(opsCtx, cfg.OpsFlushInterval) }()
	p.stopOps = func() { opsCancel(); <-opsDone }
	p.gateway = gateway.New(gateway.Deps{Billing: p.billing, Catalog: p.catalog, Providers: p.providers, Limiter: p.limiter,
		Log: log, Registerer: p.registry, Tracer: p.telemetry.Tracer(gateway.TracerName), Ops: p.ops},
		gateway.Options{RequireVerifiedEmail: cfg.RequireVerifiedEmail, Fallbacks: cfg.Fallbacks,
			AbandonTimeout: cfg.UpstreamFirstByteTimeout})
	p.files = &files.Service{DB: d, Store: files.NewStore(d, cfg.FilesDir), MaxBytes: cfg.FilesMaxBytes,
		OutputRetention: time.Duration(cfg.FilesRetentionDays) * 24 * time.Hour}
	p.batches = &batches.Service{DB: d, Files: p.files, Gateway: p.gateway, Log: log,
		Concurrency: cfg.BatchConcurrency, AccountConcurrency: cfg.BatchAccountConcurrency,
		Native: cfg.BatchNative, NativeEndpoints: p.providers, NativePoll: cfg.BatchNativePoll}
	if p.mailer, err = mail.New(cfg, log); err != nil {
		return nil, fmt.Errorf("mailer: %w", err)
	}
	sc, err := stripe.New(stripe.Config{SecretKey: cfg.StripeSecretKey, WebhookSecret: cfg.StripeWebhookSecret,
		APIBase: cfg.StripeAPIBase, SuccessURL: cfg.PublicURL + "/billing?checkout=success&session_id={CHECKOUT_SESSION_ID}",
		CancelURL: cfg.PublicURL + "/billing?checkout=cancel"})
	if errors.Is(err, stripe.ErrDisabled) {
		sc, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stripe: %w", err)
	}
	p.payments = payments.New(payments.Deps{DB: d, Ledger: p.ledger, Stripe: sc, Mailer: p.mailer,
		PublicURL: cfg.PublicURL, AdminEmail: cfg.AdminEmail, Log: log, Invoices: p.invoices})
	p.finetune = finetune.New(finetune.Options{DB: d, Catalog: p.catalog, Endpoints: p.providers, Workflows: p.workflows, Log: log})
	ok = true
	return p, nil
}

// loadSecret returns BEAVER_SECRET, or the secret kept in the data dir,
// creating it on first start.
func loadSecret(cfg *config.Config) (string, error) {
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

// apiDeps are the API's dependencies.
func (p *process) apiDeps() api.Deps {
	return api.Deps{Config: p.cfg, DB: p.db, Auth: p.auth, Ledger: p.ledger, Billing: p.billing, Catalog: p.catalog,
		ProviderRegistry: p.providers, KnownProvider: p.providers.Known, Gateway: p.gateway, Limiter: p.limiter, Mailer: p.mailer, Log: p.log, Registry: p.registry,
		Payments: p.payments, Workflows: p.workflows, FineTuning: p.finetune, Files: p.files, Batches: p.batches,
		Replays: p.replays, Telemetry: p.telemetry, Invoices: p.invoices, Ops: p.ops}
}

// workerDeps are the worker's activities' dependencies.
func (p *process) workerDeps() worker.Deps {
	return worker.Deps{DB: p.db, Catalog: p.catalog, Auth: p.auth, Mailer: p.mailer, Log: p.log, Registerer: p.registry,
		Payments: p.payments, Providers: p.providers, Gateway: p.gateway, FineTune: p.finetune, Batches: p.batches, Files: p.files,
		Sentry: p.telemetry.Hub()}
}

// close stops background work: queued charges are committed and unused
// leases returned first. (Whoever runs the Temporal connection closes it.)
func (p *process) close() {
	if p.gateway != nil { // the requests of durable jobs whose caller left are billed first
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		p.gateway.Close(ctx)
		cancel()
	}
	if p.billing != nil {
		p.billing.Close()
	}
	if p.stopOps != nil { // after the last charges: their requests are in the last flush
		p.stopOps()
	}
	if p.stopAuth != nil {
		p.stopAuth()
	}
	if p.cancel != nil {
		p.cancel()
	}
	if p.limiter != nil {
		_ = p.limiter.Close()
	}
	if p.db != nil {
		_ = p.db.Close()
	}
	if p.telemetry != nil { // last: the spans and events of everything above are sent
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := p.telemetry.Shutdown(ctx); err != nil {
			p.log.Warn("telemetry shutdown", "err", err)
		}
		cancel()
	}
}

// gatherWait maps BEAVER_COMMIT_GATHER (0 = never) to the engine's option
// (0 = its default, negative = never).
func gatherWait(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
