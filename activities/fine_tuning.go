package activities

import (
	"context"

	"go.temporal.io/sdk/temporal"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/finetune"
)

// FineTuningActivities are FineTuningJobWorkflow's steps: each calls one
// rule of package finetune. Registered by method name: renaming a method
// renames an activity type in histories.
type FineTuningActivities struct {
	FineTune *finetune.Service
}

// ErrTypeFineTuningJobGone: OpenAI no longer knows the job (404); polling
// again cannot help.
const ErrTypeFineTuningJobGone = "FineTuningJobGone"

// PollFineTuningJobInput names a job.
type PollFineTuningJobInput struct {
	JobID string
}

// PollFineTuningJobResult is the job's state at OpenAI.
type PollFineTuningJobResult struct {
	Status   string
	Terminal bool
}

// PollFineTuningJob reads the job from OpenAI and records it (read-only
// upstream, so any number of runs is safe).
func (a *FineTuningActivities) PollFineTuningJob(ctx context.Context, in PollFineTuningJobInput) (PollFineTuningJobResult, error) {
	r, err := a.FineTune.Poll(ctx, in.JobID)
	if err != nil {
		if e, ok := apierr.As(err); ok && e.Status == 404 {
			return PollFineTuningJobResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeFineTuningJobGone, nil)
		}
		return PollFineTuningJobResult{}, err
	}
	return PollFineTuningJobResult{Status: r.Status, Terminal: r.Terminal}, nil
}

// SettleFineTuningJobInput names a finished job.
type SettleFineTuningJobInput struct {
	JobID string
}

// SettleFineTuningJobResult is its charge.
type SettleFineTuningJobResult struct {
	Status         string
	TrainedTokens  int64
	ChargedMicros  int64
	HeldMicros     int64
	FineTunedModel string
	Settled        bool // this run settled it; false: an earlier one had
}

// SettleFineTuningJob charges the job once (finetune.Service.Settle: a
// conditional update makes every repeat a no-op) and releases its hold.
func (a *FineTuningActivities) SettleFineTuningJob(ctx context.Context, in SettleFineTuningJobInput) (SettleFineTuningJobResult, error) {
	// finetune.ErrNotFinished (the recorded state lags the poll) is retried
	// like any other failure.
	s, err := a.FineTune.Settle(ctx, in.JobID)
	if err != nil {
		return SettleFineTuningJobResult{}, err
	}
	return SettleFineTuningJobResult{Status: s.Status, TrainedTokens: s.TrainedTokens, ChargedMicros: s.ChargedMicros,
		HeldMicros: s.HeldMicros, FineTunedModel: s.FineTunedModel, Settled: s.Settled}, nil
}
