package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// alwaysFails is a workflow that fails at once (no retries).
func alwaysFails(workflow.Context) error { return errors.New("boom") }

// The operations view's failing workflows come from the dev server's
// visibility store: one execution failed, one timed out (no worker polls
// its queue), one completed; only the first two are counted and listed.
func TestFailedWorkflowsFromVisibility(t *testing.T) {
	e := startE2E(t)
	ctx := context.Background()
	since := time.Now().Add(-time.Minute)
	const queue = "ops-view-test"
	w := sdkworker.New(e.c, queue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(alwaysFails, workflow.RegisterOptions{Name: "AlwaysFails"})
	w.RegisterWorkflowWithOptions(func(workflow.Context) error { return nil }, workflow.RegisterOptions{Name: "Succeeds"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for id, wf := range map[string]string{"ops-fails": "AlwaysFails", "ops-ok": "Succeeds"} {
		run, err := e.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, wf)
		if err != nil {
			t.Fatal(err)
		}
		_ = run.Get(ctx, nil) // waits for it to close
	}
	run, err := e.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "ops-times-out", TaskQueue: queue + "-nobody",
		WorkflowExecutionTimeout: time.Second}, "Nobody")
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err == nil {
		t.Fatal("the workflow nobody runs did not time out")
	}
	// Visibility is eventually consistent: ask until both closings are
	// listed (bounded).
	deadline := time.Now().Add(30 * time.Second)
	for {
		f, err := e.wf.FailedWorkflows(ctx, since, 10)
		if err != nil {
			t.Fatal(err)
		}
		if f.Failed == 1 && f.TimedOut == 1 && len(f.Recent) == 2 {
			ids := map[string]string{}
			for _, r := range f.Recent {
				ids[r.WorkflowID] = r.Status + " " + r.Type
				if r.ClosedAt.Before(since) {
					t.Errorf("%s closed at %v", r.WorkflowID, r.ClosedAt)
				}
			}
			if ids["ops-fails"] != "failed AlwaysFails" || ids["ops-times-out"] != "timed_out Nobody" {
				t.Fatalf("listed %v", ids)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("visibility shows %+v", f)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if f, err := e.wf.FailedWorkflows(ctx, time.Now().Add(time.Minute), 10); err != nil || f.Failed+f.TimedOut != 0 {
		t.Fatalf("since a later time: %+v, %v", f, err)
	}
}
