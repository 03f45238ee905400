package worker

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Metrics counts workflow and activity outcomes into Prometheus (beaver_
// prefix), through a worker interceptor: no tally, no extra modules.
type Metrics struct {
	interceptor.WorkerInterceptorBase
	activities *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	workflows  *prometheus.CounterVec
}

// NewMetrics registers the collectors on reg (nil = not exported). Calling
// it twice with the same registry reuses the collectors.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		activities: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "beaver_temporal_activity_executions_total",
			Help: "Temporal activity attempts by activity type and outcome (ok, error)."}, []string{"activity", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "beaver_temporal_activity_duration_seconds",
			Help: "Temporal activity attempt duration by activity type.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)},
			[]string{"activity"}),
		workflows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "beaver_temporal_workflow_completions_total",
			Help: "Temporal workflow runs finished by workflow type and outcome (ok, error, continued_as_new, canceled)."},
			[]string{"workflow", "outcome"}),
	}
	if reg != nil {
		m.activities = register(reg, m.activities)
		m.duration = register(reg, m.duration)
		m.workflows = register(reg, m.workflows)
	}
	return m
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// InterceptActivity implements interceptor.WorkerInterceptor.
func (m *Metrics) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &activityMetrics{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, m: m}
}

// InterceptWorkflow implements interceptor.WorkerInterceptor.
func (m *Metrics) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &workflowMetrics{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, m: m}
}

type activityMetrics struct {
	interceptor.ActivityInboundInterceptorBase
	m *Metrics
}

func (a *activityMetrics) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	name := activity.GetInfo(ctx).ActivityType.Name
	start := time.Now()
	res, err := a.Next.ExecuteActivity(ctx, in)
	a.m.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	a.m.activities.WithLabelValues(name, outcome).Inc()
	return res, err
}

type workflowMetrics struct {
	interceptor.WorkflowInboundInterceptorBase
	m *Metrics
}

func (w *workflowMetrics) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	res, err := w.Next.ExecuteWorkflow(ctx, in)
	if !workflow.IsReplaying(ctx) { // count each run once, not on every replay
		w.m.workflows.WithLabelValues(workflow.GetInfo(ctx).WorkflowType.Name, workflowOutcome(err)).Inc()
	}
	return res, err
}

func workflowOutcome(err error) string {
	var can *workflow.ContinueAsNewError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &can):
		return "continued_as_new"
	case temporal.IsCanceledError(err):
		return "canceled"
	}
	return "error"
}
