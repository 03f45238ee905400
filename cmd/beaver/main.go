// Command beaver is the Beaver gateway: `beaver dev` (everything on one
// machine), `beaver api`, `beaver worker`, `beaver migrate up|down|status`.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/beaver-gateway/beaver/api"
	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/retention"
	"github.com/beaver-gateway/beaver/internal/verify"
)

const usage = `usage: beaver <command>

  dev              migrations, API, Temporal worker and a local Temporal dev server
  api              the HTTP API only
  worker           the Temporal worker only
  migrate up       apply pending migrations
  migrate down     roll back every migration (or: migrate down VERSION)
  migrate status   list migrations
  catalog import FILE [--dry-run]
                   apply a catalog file (Beaver's format or LiteLLM's
                   model_prices_and_context_window.json) as one price version
  catalog export   print the catalog in Beaver's format
  verify           check that balances are their ledger sums, the daily
                   usage sums their usage logs' sums and the audit log's
                   hash chains unbroken; exits 1 if not
  audit verify     check the audit log's hash chains; exits 1 when one is broken
  backup [DIR]     write a consistent copy of the database, while it runs, into
                   DIR (default BEAVER_BACKUP_DIR); prints the file; keeps the
                   newest BEAVER_BACKUP_KEEP there
  restore FILE     restore a backup into the empty database of
                   BEAVER_DATABASE_URL, then migrate it up and verify it

Configuration comes from the environment; see README.md.`

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := run(os.Args[1:], log); err != nil {
		if errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, usage)
			os.Exit(2)
		}
		log.Error("beaver stopped", "err", err)
		os.Exit(1)
	}
}

func run(args []string, log *slog.Logger) error {
	if len(args) == 0 {
		return errUsage
	}
	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "migrate":
		return migrate(ctx, cfg, args[1:])
	case "api":
		return serve(ctx, cfg, log, false)
	case "dev":
		return serve(ctx, cfg, log, true)
	case "worker":
		return runWorker(ctx, cfg, log)
	case "catalog":
		return catalogCommand(ctx, cfg, log, args[1:])
	case "audit":
		return auditCommand(ctx, cfg, os.Stdout, args[1:])
	case "verify":
		return verifyCommand(ctx, cfg)
	case "backup":
		return backupCommand(ctx, cfg, log, args[1:], os.Stdout)
	case "restore":
		return restoreCommand(ctx, cfg, args[1:], os.Stdout)
	case "help", "-h", "--help":
		fmt.Println(usage)
		return nil
	}
	return errUsage
}

func migrate(ctx context.Context, cfg *config.Config, args []string) error {
	if len(args) == 0 {
		return errUsage
	}
	d, err := db.Open(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer d.Close()
	switch args[0] {
	case "up":
		if err := d.MigrateUp(ctx); err != nil {
			return err
		}
		return d.MigrateStatus(ctx, os.Stdout)
	case "down":
		var v int64
		if len(args) > 1 {
			if _, err := fmt.Sscan(args[1], &v); err != nil {
				return errUsage
			}
		}
		if err := d.MigrateDown(ctx, v); err != nil {
			return err
		}
		return d.MigrateStatus(ctx, os.Stdout)
	case "status":
		return d.MigrateStatus(ctx, os.Stdout)
	}
	return errUsage
}

// verifyCommand runs every check of package verify, printing each result.
func verifyCommand(ctx context.Context, cfg *config.Config) error {
	d, err := db.Open(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer d.Close()
	// With usage-log retention on, whole days before its cutoff may be
	// gone: the daily sums are checked from the cutoff (they are kept
	// forever; the log that proves them is not).
	var o verify.Options
	if cfg.UsageLogRetentionDays > 0 {
		o.UsageSince = retention.Cutoff(time.Now(), cfg.UsageLogRetentionDays)
	}
	return verify.Run(ctx, d, o, verify.Checks, os.Stdout)
}

// serve runs the API (and, for dev, the Temporal pieces) until ctx ends.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, dev bool) error {
	p, err := wire(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer p.close()
	cleanup, err := startTemporal(ctx, p, dev)
	if err != nil {
		return err
	}
	defer cleanup()
	deps := p.apiDeps()
	deps.Web = webHandler()
	apiServer := api.New(deps)
	defer func() {
		// After the HTTP server, before p.close closes the billing engine:
		// requests whose client left are still being billed.
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		apiServer.Close(cctx)
	}()
	srv := api.NewHTTPServer(cfg, apiServer.Handler())
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	ln = apiServer.Listen(ln) // detached streams give their connections back through it
	url := "http://" + ln.Addr().String()
	log.Info("beaver API listening", "url", url, "database", p.db.Dialect, "instance", p.billing.InstanceID())
	if dev {
		fmt.Printf("\n  Beaver is running.\n    API:          %s\n    Temporal UI:  %s\n    Admin login:  %s\n",
			url, temporalUIURL(), cfg.AdminEmail)
		if p.adminPassword != "" {
			fmt.Printf("    Password:     %s   (generated now; shown once, set BEAVER_ADMIN_PASSWORD to choose it)\n", p.adminPassword)
		} else if !p.adminCreated {
			fmt.Printf("    Password:     (unchanged: the admin already existed)\n")
		}
		fmt.Println()
	} else if p.adminPassword != "" {
		log.Warn("bootstrap admin created with a generated password", "email", cfg.AdminEmail, "password", p.adminPassword)
	}
	startPprof(log)
	// Start-up (migrations, the catalog, the bootstrap admin's argon2 hash)
	// leaves tens of MB of garbage that an idle process would otherwise keep
	// until the runtime's two-minute GC.
	debug.FreeOSMemory()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
