package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/beaver-gateway/beaver/activities"
)

// batchActs is the typed nil pointer through which BatchWorkflow names its activities.
var batchActs *activities.BatchActivities

// BatchWorkflowID names the run of batch id (the contract's batch:<id>).
func BatchWorkflowID(batchID string) string { return "batch:" + batchID }

// BatchPageSize is how many lines one RunBatchPage activity runs.
const BatchPageSize = 100

// The workflow continues as new past batchHistoryLimit events, or after
// batchPagesPerRun pages (about 6 events each), whichever comes first.
const (
	batchHistoryLimit = 2000
	batchPagesPerRun  = 200
)

// BatchInput names the batch; Next is where a continued run resumes
// (0: a new batch, which is started first).
type BatchInput struct {
	BatchID string
	Next    int64
	Started bool
	// Native: the batch runs at its provider's batch API, polled every
	// PollEvery (a continued run goes on polling).
	Native    bool
	PollEvery time.Duration
}

// BatchResult is the batch's final status.
type BatchResult struct{ Status string }

// BatchWorkflow runs a batch of POST /v1/batches: validating → in_progress,
// then its lines in pages of BatchPageSize by index (the lines live in
// batch_lines, never in the history), each charged exactly once (package
// batches), until none is left, the batch is cancelling (running lines
// finish, no new one starts) or its 24h window is over; then finalizing
// (the output and error files) → completed, cancelled or expired. The
// history is kept short by continuing as new past batchHistoryLimit events.
func BatchWorkflow(ctx workflow.Context, in BatchInput) (BatchResult, error) {
	dbCtx := withActivity(ctx, 10*time.Minute, 0, 0)
	if !in.Started {
		var st activities.StartBatchResult
		if err := workflow.ExecuteActivity(dbCtx, batchActs.StartBatch, activities.StartBatchInput{BatchID: in.BatchID}).
			Get(ctx, &st); err != nil {
			return BatchResult{}, err
		}
		in.Started, in.Native, in.PollEvery = true, st.Native, st.PollEvery
	}
	if in.Native {
		return nativeBatch(ctx, dbCtx, in)
	}
	p := *retrying
	pageCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Hour,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy:         &p,
	})
	for pages := 1; ; pages++ {
		var page activities.RunBatchPageResult
		if err := workflow.ExecuteActivity(pageCtx, batchActs.RunBatchPage, activities.RunBatchPageInput{
			BatchID: in.BatchID, From: in.Next, Count: BatchPageSize}).Get(ctx, &page); err != nil {
			return BatchResult{}, err
		}
		in.Next = page.Next
		if page.Done || page.Stopped {
			break
		}
		if pages >= batchPagesPerRun || workflow.GetInfo(ctx).GetCurrentHistoryLength() > batchHistoryLimit {
			return BatchResult{}, workflow.NewContinueAsNewError(ctx, BatchWorkflow, in)
		}
	}
	var fin activities.FinalizeBatchResult
	if err := workflow.ExecuteActivity(dbCtx, batchActs.FinalizeBatch, activities.FinalizeBatchInput{BatchID: in.BatchID}).
		Get(ctx, &fin); err != nil {
		return BatchResult{}, err
	}
	return BatchResult{Status: fin.Status}, nil
}

// nativeBatch polls a batch sent to its provider's batch API (package
// batches, native.go) until it is over, every in.PollEvery (continuing as
// new when the history grows), then charges its lines once each and
// releases its hold (SettleNativeBatch), and finalizes it.
func nativeBatch(ctx, dbCtx workflow.Context, in BatchInput) (BatchResult, error) {
	for {
		var poll activities.PollNativeBatchResult
		if err := workflow.ExecuteActivity(dbCtx, batchActs.PollNativeBatch, activities.NativeBatchInput{BatchID: in.BatchID}).
			Get(ctx, &poll); err != nil {
			return BatchResult{}, err
		}
		if poll.Done {
			break
		}
		if workflow.GetInfo(ctx).GetCurrentHistoryLength() > batchHistoryLimit {
			return BatchResult{}, workflow.NewContinueAsNewError(ctx, BatchWorkflow, in)
		}
		if err := workflow.Sleep(ctx, max(in.PollEvery, time.Second)); err != nil {
			return BatchResult{}, err
		}
	}
	if err := workflow.ExecuteActivity(dbCtx, batchActs.SettleNativeBatch, activities.NativeBatchInput{BatchID: in.BatchID}).
		Get(ctx, nil); err != nil {
		return BatchResult{}, err
	}
	var fin activities.FinalizeBatchResult
	if err := workflow.ExecuteActivity(dbCtx, batchActs.FinalizeBatch, activities.FinalizeBatchInput{BatchID: in.BatchID}).
		Get(ctx, &fin); err != nil {
		return BatchResult{}, err
	}
	return BatchResult{Status: fin.Status}, nil
}
