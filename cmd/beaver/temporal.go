package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/api"
	"github.com/beaver-gateway/beaver/internal/app"
	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/internal/temporalx"
	"github.com/beaver-gateway/beaver/worker"
	"github.com/beaver-gateway/beaver/workflows"
)

// temporalUI is what `beaver dev` prints for the Temporal UI; startTemporal
// sets it.
var temporalUI = "(Temporal is disabled)"

func temporalUIURL() string { return temporalUI }

// startTemporal connects the API to Temporal. For `beaver dev` it also
// starts a local dev server when none is configured or running, and runs the
// worker in this process. Temporal being unavailable is never fatal: the API
// serves, and what needs a workflow answers 503 (Workflows.Available() is
// false, so auth handlers take their direct path). The returned cleanup
// stops, in order, the worker, the client and the dev server.
func startTemporal(ctx context.Context, a *app.App, deps *api.Deps, dev bool) (func(), error) {
	cfg, log := a.Config, a.Log
	var stops []func()
	cleanup := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	opts := temporalx.WorkflowsOptions{Auth: a.Auth, DB: a.DB, TaskQueue: worker.TaskQueue(cfg), Log: log,
		Registerer: a.Registry}

	if !dev {
		// `beaver api`: keep dialing in the background; serve at once.
		conn := temporalx.NewConn(cfg, log)
		cctx, cancel := context.WithCancel(context.Background())
		go conn.Run(cctx)
		stops = append(stops, func() { cancel(); conn.Close() })
		select {
		case <-conn.Ready():
		case <-time.After(temporalx.DialTimeout + time.Second):
			log.Warn("Temporal is not reachable yet; serving without it (workflow features answer 503 until it is)",
				"address", cfg.TemporalAddress)
		}
		useTemporal(a, deps, conn, opts)
		return cleanup, nil
	}

	disabled := func(why string, err error) (func(), error) {
		temporalUI = "(disabled: " + why + ")"
		log.Warn("Temporal is disabled: "+why+". The API serves without it; disabled until then: the schedules "+
			"(daily repricing, monthly usage reset, lease sweep), admin repricing (503) and low-balance alerts; "+
			"email verification and password reset use their direct path.", "err", err)
		return cleanup, nil
	}
	srv, err := temporalx.StartDevServer(ctx, cfg, log)
	switch {
	case errors.Is(err, temporalx.ErrNoCLI):
		return disabled("the temporal CLI is not installed; run `make temporal-cli`", err)
	case err != nil:
		return disabled("the Temporal dev server did not start", err)
	case srv != nil:
		stops = append(stops, srv.Stop)
		temporalUI = temporalx.DevUIURL
	case cfg.TemporalAddrSet:
		temporalUI = "(the UI of the Temporal server at " + cfg.TemporalAddress + ")"
	default:
		temporalUI = temporalx.DevUIURL // a dev server someone else started
	}
	dctx, cancelDial := context.WithTimeout(ctx, 30*time.Second)
	c, err := temporalx.DialRetry(dctx, cfg, log)
	cancelDial()
	if err != nil {
		return disabled("Temporal at "+cfg.TemporalAddress+" does not answer", err)
	}
	stops = append(stops, c.Close)

	wctx, stopWorker := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := worker.Run(wctx, c, cfg, workerDeps(a))
		if err != nil {
			log.Error("in-process Temporal worker stopped", "err", err)
		}
	}()
	stops = append(stops, func() { stopWorker(); <-done })

	conn := temporalx.ConnFor(c, log)
	hctx, stopHealth := context.WithCancel(context.Background())
	go conn.Run(hctx)
	stops = append(stops, stopHealth)
	useTemporal(a, deps, conn, opts)
	return cleanup, nil
}

// useTemporal points the API's workflow features and the billing events at
// a Temporal connection (which may be down; callers then get 503 at once).
func useTemporal(a *app.App, deps *api.Deps, conn *temporalx.Conn, opts temporalx.WorkflowsOptions) {
	opts.Conn = conn
	wf := temporalx.NewWorkflows(opts)
	queue := worker.TaskQueue(a.Config)
	bs := connBilling{conn: conn, queue: queue}
	deps.Workflows = wf
	deps.TopUps = connTopUps{conn: conn, queue: queue}
	deps.Refunds = bs
	wireBalanceEvents(a, wf, bs)
}

// wireBalanceEvents sends charges that cross an account's low-balance
// threshold to its alert workflow, and credits (top-ups) too, so that a
// waiting alert ends as soon as the balance has recovered.
func wireBalanceEvents(a *app.App, wf *temporalx.Workflows, bs connBilling) {
	a.SetLowBalanceHook(wf.OnLowBalance)
	a.SetChargeHook(newRechargeTrigger(a.DB, bs).onCharge)
	a.Ledger.OnBalanceChange = func(accountID string, balance int64) {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var threshold int64
			if err := a.DB.WithContext(ctx).Table("accounts").Select("low_balance_threshold_micros").
				Where("id = ?", accountID).Scan(&threshold).Error; err != nil || balance < threshold {
				return
			}
			if err := wf.SignalLowBalance(ctx, accountID, balance, threshold); err != nil {
				a.Log.Debug("low-balance recovery signal not sent", "account", accountID, "err", err)
			}
		}()
	}
}

// workerDeps are the worker's activities' dependencies.
func workerDeps(a *app.App) worker.Deps {
	return worker.Deps{DB: a.DB, Catalog: a.Catalog, Auth: a.Auth, Mailer: a.Mailer, Log: a.Log, Registerer: a.Registry,
		Activities: []any{&activities.PaymentActivities{DB: a.DB, Ledger: a.Ledger, Payments: a.Payments, Mailer: a.Mailer,
			PublicURL: a.Config.PublicURL, Log: a.Log}}}
}

// connTopUps starts top-up settlements through a connection that may be
// down: then it fails at once and the webhook answers 503 (Stripe retries).
type connTopUps struct {
	conn  *temporalx.Conn
	queue string
}

func (t connTopUps) StartTopUpSettlement(ctx context.Context, in workflows.TopUpSettlementInput) error {
	if !t.conn.Available() {
		return errors.New("temporal is unavailable")
	}
	return workflows.TopUpStarter{Client: t.conn.Client(), TaskQueue: t.queue}.StartTopUpSettlement(ctx, in)
}

// runWorker is `beaver worker`: the worker only, until ctx ends. It waits
// for Temporal as long as it takes. BEAVER_WORKER_ADDR (e.g. :9090) serves
// /metrics and /health.
func runWorker(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	if addr := cfg.WorkerAddr; addr != "" {
		stop, err := serveWorkerMetrics(a, addr)
		if err != nil {
			return err
		}
		defer stop()
	}
	c, err := temporalx.DialRetry(ctx, cfg, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before Temporal came up
		}
		return err
	}
	defer c.Close()
	return worker.Run(ctx, c, cfg, workerDeps(a))
}

func serveWorkerMetrics(a *app.App, addr string) (func(), error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("worker metrics: listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	a.Log.Info("worker metrics listening", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() { _ = srv.Close() }, nil
}

// connBilling starts refunds and auto-recharges through a connection that
// may be down: then a refund fails at once (the API answers 503) and an
// auto-recharge is skipped (the next low-balance crossing tries again).
type connBilling struct {
	conn  *temporalx.Conn
	queue string
}

func (b connBilling) starter() (workflows.BillingStarter, error) {
	if !b.conn.Available() {
		return workflows.BillingStarter{}, errors.New("temporal is unavailable")
	}
	return workflows.BillingStarter{Client: b.conn.Client(), TaskQueue: b.queue}, nil
}

func (b connBilling) StartRefund(ctx context.Context, key string, in workflows.RefundInput) (string, error) {
	s, err := b.starter()
	if err != nil {
		return "", err
	}
	return s.StartRefund(ctx, key, in)
}

func (b connBilling) StartAutoRecharge(ctx context.Context, accountID string) error {
	s, err := b.starter()
	if err != nil {
		return err
	}
	return s.StartAutoRecharge(ctx, accountID)
}
