package worker_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/internal/fakes/otlp"
	"github.com/beaver-gateway/beaver/internal/telemetry"
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
	env.SetWorkerOptions(sdkworker.Options{Interceptors: []interceptor.WorkerInterceptor{ti}})
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
