package workflows

import (
	"context"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/beaver-gateway/beaver/activities"
)

var fta *activities.FineTuningActivities

// FineTuningJobWorkflowID names the workflow of fine-tuning job jobID.
func FineTuningJobWorkflowID(jobID string) string { return "fine-tune:" + jobID }

// DefaultFineTuningPollEvery is how often a job is polled.
const DefaultFineTuningPollEvery = time.Minute

// fineTuningPollsPerRun bounds a run's history: after this many polls the
// workflow continues as new (a job may train for days).
const fineTuningPollsPerRun = 500

// FineTuningJobInput names the job; PollEvery 0 = DefaultFineTuningPollEvery.
type FineTuningJobInput struct {
	JobID     string
	PollEvery time.Duration
}

// FineTuningJobResult is the settled job.
type FineTuningJobResult struct {
	Status         string
	TrainedTokens  int64
	ChargedMicros  int64
	HeldMicros     int64
	FineTunedModel string
}

// FineTuningJobWorkflow follows a fine-tuning job at OpenAI until it ends
// (succeeded, failed or cancelled), polling it with a timer between polls,
// then settles it once: trained_tokens × the training price it was
// admitted under, the rest of its durable hold released, and the
// fine-tuned model made a private catalog model of the account. A job
// OpenAI no longer knows (404) fails the workflow and its hold stays for
// an operator: it is never released while the job might still train.
func FineTuningJobWorkflow(ctx workflow.Context, in FineTuningJobInput) (FineTuningJobResult, error) {
	every := in.PollEvery
	if every <= 0 {
		every = DefaultFineTuningPollEvery
	}
	pollCtx := withActivity(ctx, 30*time.Second, 6*time.Hour, 0)
	settleCtx := withActivity(ctx, 30*time.Second, 7*24*time.Hour, 0)
	for polls := 0; ; polls++ {
		var p activities.PollFineTuningJobResult
		if err := workflow.ExecuteActivity(pollCtx, fta.PollFineTuningJob,
			activities.PollFineTuningJobInput{JobID: in.JobID}).Get(ctx, &p); err != nil {
			return FineTuningJobResult{}, err
		}
		if p.Terminal {
			break
		}
		if polls+1 >= fineTuningPollsPerRun {
			return FineTuningJobResult{}, workflow.NewContinueAsNewError(ctx, FineTuningJobWorkflow, in)
		}
		if err := workflow.Sleep(ctx, every); err != nil {
			return FineTuningJobResult{}, err
		}
	}
	var s activities.SettleFineTuningJobResult
	if err := workflow.ExecuteActivity(settleCtx, fta.SettleFineTuningJob,
		activities.SettleFineTuningJobInput{JobID: in.JobID}).Get(ctx, &s); err != nil {
		return FineTuningJobResult{}, err
	}
	return FineTuningJobResult{Status: s.Status, TrainedTokens: s.TrainedTokens, ChargedMicros: s.ChargedMicros,
		HeldMicros: s.HeldMicros, FineTunedModel: s.FineTunedModel}, nil
}

// StartFineTuningJob starts the job's workflow; one that was started
// before counts as started (its id is never reused).
func (s *Starter) StartFineTuningJob(ctx context.Context, jobID string) error {
	return s.startOnce(ctx, "start_fine_tuning_job", FineTuningJobWorkflowID(jobID), FineTuningJobWorkflow,
		FineTuningJobInput{JobID: jobID, PollEvery: s.o.FineTuningPollEvery})
}
