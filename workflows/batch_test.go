package workflows_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/workflows"
)

var bacts *activities.BatchActivities

func newBatchEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := testenv.WorkflowEnv(&s)
	env.RegisterWorkflow(workflows.BatchWorkflow)
	env.RegisterActivity(&activities.BatchActivities{})
	t.Cleanup(func() { env.AssertExpectations(t) })
	return env
}

// BatchWorkflow starts the batch, runs its lines page by page from where
// the last page ended (never holding the lines themselves), then
// finalizes it.
func TestBatchWorkflowRunsPagesThenFinalizes(t *testing.T) {
	env := newBatchEnv(t)
	env.OnActivity(bacts.StartBatch, mock.Anything, activities.StartBatchInput{BatchID: "batch_1"}).
		Return(activities.StartBatchResult{Status: "in_progress"}, nil).Once()
	var froms []int64
	env.OnActivity(bacts.RunBatchPage, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RunBatchPageInput) (activities.RunBatchPageResult, error) {
			froms = append(froms, in.From)
			next := in.From + int64(in.Count)
			return activities.RunBatchPageResult{Next: next, Done: next >= 250}, nil
		}).Times(3)
	env.OnActivity(bacts.FinalizeBatch, mock.Anything, activities.FinalizeBatchInput{BatchID: "batch_1"}).
		Return(activities.FinalizeBatchResult{Status: "completed"}, nil).Once()
	env.ExecuteWorkflow(workflows.BatchWorkflow, workflows.BatchInput{BatchID: "batch_1"})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("completed %v, err %v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	var res workflows.BatchResult
	if err := env.GetWorkflowResult(&res); err != nil || res.Status != "completed" {
		t.Fatalf("result %+v %v", res, err)
	}
	if len(froms) != 3 || froms[0] != 0 || froms[1] != workflows.BatchPageSize || froms[2] != 2*workflows.BatchPageSize {
		t.Fatalf("pages from %v", froms)
	}
}

// A cancelled (or expired) batch stops at the page that saw it and is
// finalized at once.
func TestBatchWorkflowStopsWhenCancelled(t *testing.T) {
	env := newBatchEnv(t)
	env.OnActivity(bacts.StartBatch, mock.Anything, mock.Anything).Return(activities.StartBatchResult{Status: "in_progress"}, nil).Once()
	env.OnActivity(bacts.RunBatchPage, mock.Anything, mock.Anything).
		Return(activities.RunBatchPageResult{Next: 40, Stopped: true}, nil).Once()
	env.OnActivity(bacts.FinalizeBatch, mock.Anything, mock.Anything).Return(activities.FinalizeBatchResult{Status: "cancelled"}, nil).Once()
	env.ExecuteWorkflow(workflows.BatchWorkflow, workflows.BatchInput{BatchID: "batch_2"})
	var res workflows.BatchResult
	if err := env.GetWorkflowResult(&res); err != nil || res.Status != "cancelled" {
		t.Fatalf("result %+v %v", res, err)
	}
}

// A long batch continues as new with where it got to, without starting
// the batch again.
func TestBatchWorkflowContinuesAsNew(t *testing.T) {
	env := newBatchEnv(t)
	env.OnActivity(bacts.StartBatch, mock.Anything, mock.Anything).Return(activities.StartBatchResult{Status: "in_progress"}, nil).Once()
	env.OnActivity(bacts.RunBatchPage, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RunBatchPageInput) (activities.RunBatchPageResult, error) {
			return activities.RunBatchPageResult{Next: in.From + int64(in.Count)}, nil
		})
	env.ExecuteWorkflow(workflows.BatchWorkflow, workflows.BatchInput{BatchID: "batch_3"})
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("err %v, want continue-as-new", err)
	}
	var next workflows.BatchInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if next.BatchID != "batch_3" || !next.Started || next.Next <= 0 || next.Next%workflows.BatchPageSize != 0 {
		t.Fatalf("continued with %+v", next)
	}
}

// A native batch (sent to its provider's batch API by StartBatch) is
// polled with a timer until it is over, then settled once and finalized;
// no page of lines is run by Beaver.
func TestBatchWorkflowNativePollsThenSettles(t *testing.T) {
	env := newBatchEnv(t)
	env.OnActivity(bacts.StartBatch, mock.Anything, activities.StartBatchInput{BatchID: "batch_n"}).
		Return(activities.StartBatchResult{Status: "in_progress", Native: true, PollEvery: time.Minute}, nil).Once()
	polls := 0
	env.OnActivity(bacts.PollNativeBatch, mock.Anything, activities.NativeBatchInput{BatchID: "batch_n"}).Return(
		func(context.Context, activities.NativeBatchInput) (activities.PollNativeBatchResult, error) {
			polls++
			return activities.PollNativeBatchResult{Done: polls == 3}, nil
		}).Times(3)
	env.OnActivity(bacts.SettleNativeBatch, mock.Anything, activities.NativeBatchInput{BatchID: "batch_n"}).Return(nil).Once()
	env.OnActivity(bacts.FinalizeBatch, mock.Anything, activities.FinalizeBatchInput{BatchID: "batch_n"}).
		Return(activities.FinalizeBatchResult{Status: "completed"}, nil).Once()
	env.ExecuteWorkflow(workflows.BatchWorkflow, workflows.BatchInput{BatchID: "batch_n"})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("completed %v, err %v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	var res workflows.BatchResult
	if err := env.GetWorkflowResult(&res); err != nil || res.Status != "completed" || polls != 3 {
		t.Fatalf("result %+v %v, polls %d", res, err, polls)
	}
}
