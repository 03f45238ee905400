package worker_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/internal/fakes/otlp"
	fakesentry "github.com/beaver-gateway/beaver/internal/fakes/sentry"
	"github.com/beaver-gateway/beaver/internal/telemetry"
	"github.com/beaver-gateway/beaver/worker"
	"github.com/beaver-gateway/beaver/workflows"
)

// With traces on, Temporal's tracing interceptor (the one given to the
// client, and so to its workers) yields a span for the workflow run and
// for each activity it schedules, exported to the collector.
func TestWorkflowRunsAreTraced(t *testing.T) {
	col := otlp.New()
	srv := httptest.NewServer(col)
	t.Cleanup(srv.Close)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	tel, err := telemetry.New(context.Background(), telemetry.Options{Traces: true})
	if err != nil {
		t.Fatal(err)
	}
	ti, err := tel.TemporalInterceptor()
	if err != nil || ti == nil {
		t.Fatalf("interceptor %v, %v", ti, err)
	}

	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(sdkworker.Options{DeadlockDetectionTimeout: time.Minute, Interceptors: []interceptor.WorkerInterceptor{ti}})
	env.RegisterWorkflow(workflows.RepricingWorkflow)
	var a *activities.Activities
	env.RegisterActivity(a)
	env.OnActivity(a.Reprice, mock.Anything, mock.Anything).Return(activities.RepriceResult{Version: 7}, nil).Once()
	env.ExecuteWorkflow(workflows.RepricingWorkflow, workflows.RepricingInput{Reason: "test"})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("workflow: completed=%v err=%v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	env.AssertExpectations(t)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	spans := map[string]otlp.Span{}
	for _, sp := range col.Spans() {
		spans[sp.Name] = sp
	}
	run, ok := spans["RunWorkflow:RepricingWorkflow"]
	if !ok {
		t.Fatalf("no workflow span; got %v", spans)
	}
	if run.Resource["service.name"] != "beaver" {
		t.Fatalf("resource %v", run.Resource)
	}
	act, ok := spans["StartActivity:Reprice"]
	if !ok || act.TraceID != run.TraceID || act.ParentID != run.SpanID {
		t.Fatalf("activity span %+v under workflow span %+v", act, run)
	}
}

// An activity failure is sent to Sentry only when Temporal will not retry
// it: a non-retryable error here; the last attempt of its retry policy in
// TestFinalAttempt (the test environment does not tell an activity its
// policy, as the server does), so Flaky's retryable failures are not sent.
func TestActivityFailuresThatEndAreReported(t *testing.T) {
	ingest := fakesentry.New()
	srv := httptest.NewServer(ingest)
	t.Cleanup(srv.Close)
	tel, err := telemetry.New(context.Background(), telemetry.Options{SentryDSN: fakesentry.DSN(srv.URL)})
	if err != nil {
		t.Fatal(err)
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(sdkworker.Options{DeadlockDetectionTimeout: time.Minute, Interceptors: []interceptor.WorkerInterceptor{&worker.ErrorReports{Hub: tel.Hub()}}})
	flaky, fatal := 0, 0
	env.RegisterActivityWithOptions(func(context.Context) error {
		flaky++
		return errors.New("flaky attempt " + strconv.Itoa(flaky))
	}, activity.RegisterOptions{Name: "Flaky"})
	env.RegisterActivityWithOptions(func(context.Context) error {
		fatal++
		return temporal.NewNonRetryableApplicationError("card declined", "Declined", nil)
	}, activity.RegisterOptions{Name: "Fatal"})
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute,
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Millisecond, MaximumAttempts: 2}})
		_ = workflow.ExecuteActivity(ctx, "Flaky").Get(ctx, nil)
		_ = workflow.ExecuteActivity(ctx, "Fatal").Get(ctx, nil)
		return nil
	}, workflow.RegisterOptions{Name: "ErrorsWorkflow"})
	env.ExecuteWorkflow("ErrorsWorkflow")
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("workflow: completed=%v err=%v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	if flaky != 2 || fatal != 1 {
		t.Fatalf("attempts: flaky %d, fatal %d", flaky, fatal)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range ingest.WaitEvents(ctx, 1) {
		tags, _ := e["tags"].(map[string]any)
		exc, _ := e["exception"].([]any)
		value := ""
		if len(exc) > 0 {
			value, _ = exc[len(exc)-1].(map[string]any)["value"].(string)
		}
		if tags["workflow"] != "ErrorsWorkflow" {
			t.Fatalf("tags %v", tags)
		}
		got[tags["activity"].(string)+"#"+tags["attempt"].(string)] = value
	}
	if len(got) != 1 || !strings.Contains(got["Fatal#1"], "card declined") {
		t.Fatalf("events: %v", got)
	}
}
