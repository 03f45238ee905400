// Package worker runs Beaver's Temporal worker: it registers every workflow
// and activity (Register, which tests call too), keeps the schedules in
// place (EnsureSchedules) and polls the task queue until its context ends.
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/getsentry/sentry-go"
	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/batches"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/files"
	"github.com/beaver-gateway/beaver/internal/finetune"
	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/internal/mail"
	"github.com/beaver-gateway/beaver/internal/payments"
	"github.com/beaver-gateway/beaver/workflows"
)

// RegisterWorkflows registers every workflow under its contract name (the
// function name). The replayer uses it alone.
func RegisterWorkflows(r sdkworker.WorkflowRegistry) {
	r.RegisterWorkflow(workflows.RepricingWorkflow)
	r.RegisterWorkflow(workflows.MonthlyUsageResetWorkflow)
	r.RegisterWorkflow(workflows.LeaseSweepWorkflow)
	r.RegisterWorkflow(workflows.UsageLogRetentionWorkflow)
	r.RegisterWorkflow(workflows.LowBalanceAlertWorkflow)
	r.RegisterWorkflow(workflows.EmailVerificationWorkflow)
	r.RegisterWorkflow(workflows.PasswordResetWorkflow)
	r.RegisterWorkflow(workflows.TopUpSettlementWorkflow)
	r.RegisterWorkflow(workflows.RefundWorkflow)
	r.RegisterWorkflow(workflows.AutoRechargeWorkflow)
	r.RegisterWorkflow(workflows.ModelDiscoveryWorkflow)
	r.RegisterWorkflow(workflows.UsageReportsWorkflow)
	r.RegisterWorkflow(workflows.UsageReportWorkflow)
	r.RegisterWorkflow(workflows.FineTuningJobWorkflow)
	r.RegisterWorkflow(workflows.BackgroundResponseWorkflow)
	r.RegisterWorkflow(workflows.BatchWorkflow)
	r.RegisterWorkflow(workflows.BackupWorkflow)
}

// Register registers every workflow, and every exported method of each
// activity struct in acts (*activities.Activities,
// *activities.PaymentActivities) as an activity named after the method:
// the method names are the activity types in histories.
func Register(r sdkworker.Registry, acts ...any) {
	RegisterWorkflows(r)
	for _, a := range acts {
		r.RegisterActivity(a)
	}
}

// Deps is what the activities need.
type Deps struct {
	DB      *db.DB
	Catalog *catalog.Catalog
	Auth    *auth.Service
	Mailer  mail.Sender
	// Providers is the provider registry model discovery lists; nil = the
	// discovery finds no providers.
	Providers  activities.ModelLister
	Log        *slog.Logger
	Registerer prometheus.Registerer // workflow/activity metrics; nil = none
	// Payments are the rules of the money workflows (top-up settlement,
	// refund, auto-recharge); nil leaves their activities unregistered.
	Payments *payments.Service
	// Gateway runs the inference of durable jobs (batches, background
	// responses); nil leaves their activities unregistered.
	Gateway *gateway.Gateway
	// FineTune is fine-tuning's rules (FineTuningJobWorkflow's activities);
	// nil leaves them unregistered.
	FineTune *finetune.Service
	// Batches runs the lines of batches (with Gateway); nil leaves the
	// batch activities unregistered.
	Batches *batches.Service
	// Files are swept of expired files by LeaseSweepWorkflow; nil = not
	// swept.
	Files *files.Service
	// SkipSchedules leaves the schedules alone (tests that create their own).
	SkipSchedules bool
	// Sentry gets the failures of activities that will not be retried
	// (ErrorReports); nil = none.
	Sentry *sentry.Hub
}

// TaskQueue is cfg's task queue, or the contract's.
func TaskQueue(cfg *config.Config) string {
	if cfg != nil && cfg.TaskQueue != "" {
		return cfg.TaskQueue
	}
	return workflows.TaskQueue
}

// New builds a worker with everything registered; the caller starts it.
func New(c client.Client, cfg *config.Config, deps Deps) sdkworker.Worker {
	return newWorker(c, cfg, deps, nil)
}

func newWorker(c client.Client, cfg *config.Config, deps Deps, onFatal func(error)) sdkworker.Worker {
	interceptors := []interceptor.WorkerInterceptor{NewMetrics(deps.Registerer)}
	if deps.Sentry != nil {
		interceptors = append(interceptors, &ErrorReports{Hub: deps.Sentry})
	}
	w := sdkworker.New(c, TaskQueue(cfg), sdkworker.Options{
		Interceptors:      interceptors,
		WorkerStopTimeout: 10 * time.Second,
		OnFatalError:      onFatal,
	})
	acts := []any{&activities.Activities{DB: deps.DB, Catalog: deps.Catalog, Auth: deps.Auth,
		Mailer: deps.Mailer, Providers: deps.Providers, PublicURL: cfg.PublicURL, Log: deps.Log, Files: deps.Files,
		UsageLogRetentionDays: cfg.UsageLogRetentionDays}}
	if deps.Payments != nil {
		acts = append(acts, &activities.PaymentActivities{Payments: deps.Payments})
	}
	if deps.FineTune != nil {
		acts = append(acts, &activities.FineTuningActivities{FineTune: deps.FineTune})
	}
	if deps.Gateway != nil {
		acts = append(acts, &activities.BackgroundResponseActivities{DB: deps.DB, Gateway: deps.Gateway, Log: deps.Log})
	}
	if deps.Gateway != nil && deps.Batches != nil {
		acts = append(acts, &activities.BatchActivities{Batches: deps.Batches})
	}
	if deps.DB != nil {
		acts = append(acts, &activities.BackupActivities{DB: deps.DB, DatabaseURL: cfg.DatabaseURL, Dir: cfg.BackupDir,
			Keep: cfg.BackupKeep, Log: deps.Log})
	}
	Register(w, acts...)
	return w
}

// Run makes sure the schedules exist, then runs the worker until ctx ends
// (or the worker fails).
func Run(ctx context.Context, c client.Client, cfg *config.Config, deps Deps) error {
	log := deps.Log
	if log == nil {
		log = slog.Default()
	}
	if !deps.SkipSchedules {
		if err := EnsureSchedules(ctx, c, TaskQueue(cfg), log); err != nil {
			return err
		}
		if err := EnsureBackupSchedule(ctx, c, TaskQueue(cfg), deps.DB != nil && deps.DB.Dialect == db.SQLite, log); err != nil {
			return err
		}
	}
	fatal := make(chan error, 1)
	w := newWorker(c, cfg, deps, func(err error) {
		select {
		case fatal <- err:
		default:
		}
	})
	if err := w.Start(); err != nil {
		return fmt.Errorf("temporal worker: %w", err)
	}
	log.Info("temporal worker polling", "task_queue", TaskQueue(cfg), "namespace", cfg.TemporalNamespace)
	select {
	case <-ctx.Done():
	case err := <-fatal:
		w.Stop()
		return fmt.Errorf("temporal worker: %w", err)
	}
	w.Stop()
	log.Info("temporal worker stopped")
	return nil
}
