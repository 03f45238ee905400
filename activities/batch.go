package activities

import (
	"context"
	"time"

	"github.com/beaver-gateway/beaver/internal/batches"
)

// BatchActivities run the batches of POST /v1/batches (BatchWorkflow):
// each calls one step of package batches. Registered only where the
// worker has a gateway (worker.Deps.Gateway). Registered by method name:
// renaming a method renames an activity type in histories.
type BatchActivities struct {
	Batches *batches.Service
}

// StartBatchInput names the batch.
type StartBatchInput struct{ BatchID string }

// StartBatchResult is the batch's status and deadline once started.
type StartBatchResult struct {
	Status    string
	ExpiresAt time.Time
	// Native: the batch was sent to its provider's batch API
	// (BEAVER_BATCH_NATIVE); the workflow polls it every PollEvery.
	Native    bool
	PollEvery time.Duration
}

// StartBatch moves a validating batch to in_progress and, when it can go
// native, holds it and sends it to its provider (idempotent).
func (a *BatchActivities) StartBatch(ctx context.Context, in StartBatchInput) (StartBatchResult, error) {
	st, err := a.Batches.Start(ctx, in.BatchID)
	if err != nil {
		return StartBatchResult{}, err
	}
	res := StartBatchResult{Status: st.Status, ExpiresAt: st.ExpiresAt}
	if st.Status == batches.StatusInProgress {
		if res.Native, err = a.Batches.SubmitNative(ctx, in.BatchID); err != nil {
			return StartBatchResult{}, err
		}
		res.PollEvery = a.Batches.NativePoll
		if res.PollEvery <= 0 {
			res.PollEvery = time.Minute
		}
	}
	return res, nil
}

// NativeBatchInput names the batch.
type NativeBatchInput struct{ BatchID string }

// PollNativeBatchResult says whether the provider's batch is over.
type PollNativeBatchResult struct{ Done bool }

// PollNativeBatch looks at a native batch at its provider (cancelling it
// there when the batch is cancelling or past its window).
func (a *BatchActivities) PollNativeBatch(ctx context.Context, in NativeBatchInput) (PollNativeBatchResult, error) {
	done, err := a.Batches.PollNative(ctx, in.BatchID)
	return PollNativeBatchResult{Done: done}, err
}

// SettleNativeBatch charges each line of a finished native batch once and
// releases the rest of its hold (idempotent).
func (a *BatchActivities) SettleNativeBatch(ctx context.Context, in NativeBatchInput) error {
	return a.Batches.SettleNative(ctx, in.BatchID)
}

// RunBatchPageInput is a page of lines: Count lines from index From.
type RunBatchPageInput struct {
	BatchID string
	From    int64
	Count   int
}

// RunBatchPageResult is where the next page starts, and whether the batch
// has no more lines to run (Done) or may start none (Stopped: cancelling or
// past its window).
type RunBatchPageResult struct {
	Next    int64
	Done    bool
	Stopped bool
}

// RunBatchPage runs a page of a batch's lines, each exactly once (a retry
// skips finished lines and charges interrupted ones once). It heartbeats
// while lines run.
func (a *BatchActivities) RunBatchPage(ctx context.Context, in RunBatchPageInput) (RunBatchPageResult, error) {
	defer heartbeat(ctx, 5*time.Second)()
	p, err := a.Batches.RunPage(ctx, in.BatchID, in.From, in.Count, nil)
	return RunBatchPageResult{Next: p.Next, Done: p.Done, Stopped: p.Stopped}, err
}

// FinalizeBatchInput names the batch.
type FinalizeBatchInput struct{ BatchID string }

// FinalizeBatchResult is the batch's final status.
type FinalizeBatchResult struct{ Status string }

// FinalizeBatch writes the output and error files and ends the batch.
func (a *BatchActivities) FinalizeBatch(ctx context.Context, in FinalizeBatchInput) (FinalizeBatchResult, error) {
	f, err := a.Batches.Finalize(ctx, in.BatchID)
	return FinalizeBatchResult{Status: f.Status}, err
}
