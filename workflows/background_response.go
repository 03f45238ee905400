package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/beaver-gateway/beaver/activities"
)

// BackgroundResponseWorkflowID names the run of background response
// respID (POST /v1/responses with background true): one per response.
func BackgroundResponseWorkflowID(respID string) string { return "response:" + respID }

// BackgroundResponseInput names the stored response to run.
type BackgroundResponseInput struct {
	ResponseID string
}

// ba is the typed nil pointer through which workflows name the background
// response activities.
var ba *activities.BackgroundResponseActivities

// Bounds of a background run: one attempt may take as long as the longest
// answer (the gateway's own upstream timeouts end it sooner); a worker that
// dies is noticed by its missing heartbeats, and the run retried (and
// charged once: see RunBackgroundResponse) for a day at most.
const (
	backgroundAttemptTimeout   = 30 * time.Minute
	backgroundHeartbeatTimeout = 30 * time.Second
	backgroundRetryFor         = 24 * time.Hour
)

// BackgroundResponseWorkflow runs a background response: one activity does
// the inference through the worker's gateway and stores the outcome in the
// response's row, charging it exactly once across retries. Cancelling the
// workflow (POST /v1/responses/{id}/cancel) cancels the activity; the
// activity also stops when it sees its row cancelled. When the retries run
// out, the response is stored as failed (FailBackgroundResponse).
func BackgroundResponseWorkflow(ctx workflow.Context, in BackgroundResponseInput) (activities.RunBackgroundResponseResult, error) {
	p := *retrying
	run := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    backgroundAttemptTimeout,
		ScheduleToCloseTimeout: backgroundRetryFor,
		HeartbeatTimeout:       backgroundHeartbeatTimeout,
		WaitForCancellation:    true,
		RetryPolicy:            &p,
	})
	var res activities.RunBackgroundResponseResult
	err := workflow.ExecuteActivity(run, ba.RunBackgroundResponse, activities.RunBackgroundResponseInput{ResponseID: in.ResponseID}).Get(ctx, &res)
	if err == nil || temporal.IsCanceledError(err) || ctx.Err() != nil {
		return res, err
	}
	workflow.GetLogger(ctx).Error("background response failed for good", "response_id", in.ResponseID, "error", err)
	var failed activities.RunBackgroundResponseResult
	if ferr := workflow.ExecuteActivity(withActivity(ctx, 30*time.Second, time.Hour, 0), ba.FailBackgroundResponse,
		activities.RunBackgroundResponseInput{ResponseID: in.ResponseID}).Get(ctx, &failed); ferr != nil {
		return res, ferr
	}
	return failed, nil
}
