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

	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/internal/temporalx"
	"github.com/beaver-gateway/beaver/worker"
)

// temporalUI is what `beaver dev` prints for the Temporal UI; startTemporal
// sets it.
var temporalUI = "(Temporal is disabled)"

func temporalUIURL() string { return temporalUI }

// startTemporal connects the process to Temporal (p.temporal, through which
// the API and the billing events start workflows). For `beaver dev` it also
// starts a local dev server when none is configured or running, and runs
// the worker in this process. Temporal being unavailable is never fatal:
// the API serves, and what needs a workflow answers 503 (the starter's
// Available() is false, so auth handlers take their direct path). The
// returned cleanup stops, in order, the worker, the connection and the dev
// server.
func startTemporal(ctx context.Context, p *process, dev bool) (func(), error) {
	cfg, log := p.cfg, p.log
	var stops []func()
	cleanup := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	// runConn dials (and then health-checks) in the background; the
	// returned func stops it and closes the client.
	runConn := func() func() {
		cctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); p.temporal.Run(cctx) }()
		stop := func() { cancel(); <-done; p.temporal.Close() }
		stops = append(stops, stop)
		return stop
	}

	if !dev {
		// `beaver api`: keep dialing in the background; serve at once.
		runConn()
		select {
		case <-p.temporal.Ready():
		case <-time.After(temporalx.DialTimeout + time.Second):
			log.Warn("Temporal is not reachable yet; serving without it (workflow features answer 503 until it is)",
				"address", cfg.TemporalAddress)
		}
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
	stopConn := runConn()
	select {
	case <-p.temporal.Ready():
	case <-time.After(30 * time.Second):
		stopConn()
		stops = stops[:len(stops)-1]
		return disabled("Temporal at "+cfg.TemporalAddress+" does not answer", errors.New("no answer within 30s"))
	case <-ctx.Done():
		stopConn()
		stops = stops[:len(stops)-1]
		return disabled("Temporal at "+cfg.TemporalAddress+" does not answer", ctx.Err())
	}

	wctx, stopWorker := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := worker.Run(wctx, p.temporal.Client(), cfg, p.workerDeps()); err != nil {
			log.Error("in-process Temporal worker stopped", "err", err)
		}
	}()
	stops = append(stops, func() { stopWorker(); <-done })
	return cleanup, nil
}

// runWorker is `beaver worker`: the worker only, until ctx ends. It waits
// for Temporal as long as it takes. BEAVER_WORKER_ADDR (e.g. :9090) serves
// /metrics and /health.
func runWorker(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	p, err := wire(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer p.close()
	if addr := cfg.WorkerAddr; addr != "" {
		stop, err := serveWorkerMetrics(p, addr)
		if err != nil {
			return err
		}
		defer stop()
	}
	// One connection: the worker polls through it, and the billing events of
	// this process (credits posted by activities) start and signal through it.
	cctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { defer close(runDone); p.temporal.Run(cctx) }()
	defer func() { cancel(); <-runDone; p.temporal.Close() }()
	select {
	case <-p.temporal.Ready():
	case <-ctx.Done():
		return nil // stopped before Temporal came up
	}
	return worker.Run(ctx, p.temporal.Client(), cfg, p.workerDeps())
}

func serveWorkerMetrics(p *process, addr string) (func(), error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(p.registry, promhttp.HandlerOpts{}))
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
	p.log.Info("worker metrics listening", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() { _ = srv.Close() }, nil
}
