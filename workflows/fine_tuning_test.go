package workflows_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/workflows"
)

var fta *activities.FineTuningActivities

func newFineTuningEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := testenv.WorkflowEnv(&s)
	env.RegisterWorkflow(workflows.FineTuningJobWorkflow)
	env.RegisterActivity(&activities.FineTuningActivities{})
	t.Cleanup(func() { env.AssertExpectations(t) })
	return env
}

func TestFineTuningJobWorkflowPollsUntilDoneThenSettlesOnce(t *testing.T) {
	env := newFineTuningEnv(t)
	in := activities.PollFineTuningJobInput{JobID: "ftjob-1"}
	var polledAt []time.Time
	poll := func(status string, terminal bool) {
		env.OnActivity(fta.PollFineTuningJob, mock.Anything, in).
			Run(func(mock.Arguments) { polledAt = append(polledAt, env.Now()) }).
			Return(activities.PollFineTuningJobResult{Status: status, Terminal: terminal}, nil).Once()
	}
	poll("validating_files", false)
	poll("queued", false)
	poll("running", false)
	poll("succeeded", true)
	env.OnActivity(fta.SettleFineTuningJob, mock.Anything, activities.SettleFineTuningJobInput{JobID: "ftjob-1"}).
		Return(activities.SettleFineTuningJobResult{Status: "succeeded", TrainedTokens: 340, ChargedMicros: 1955,
			HeldMicros: 20240, FineTunedModel: "openai/ft:gpt-4.1-mini:org:x:1", Settled: true}, nil).Once()
	env.ExecuteWorkflow(workflows.FineTuningJobWorkflow, workflows.FineTuningJobInput{JobID: "ftjob-1", PollEvery: 5 * time.Second})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("completed=%v err=%v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	var res workflows.FineTuningJobResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Status != "succeeded" || res.ChargedMicros != 1955 || res.TrainedTokens != 340 || res.FineTunedModel == "" {
		t.Fatalf("result %+v", res)
	}
	if len(polledAt) != 4 {
		t.Fatalf("%d polls", len(polledAt))
	}
	for i := 1; i < len(polledAt); i++ {
		if gap := polledAt[i].Sub(polledAt[i-1]); gap < 5*time.Second {
			t.Fatalf("poll %d came %v after the one before, want the 5s timer between", i, gap)
		}
	}
}

func TestFineTuningJobWorkflowCancelledJobSettles(t *testing.T) {
	env := newFineTuningEnv(t)
	env.OnActivity(fta.PollFineTuningJob, mock.Anything, mock.Anything).
		Return(activities.PollFineTuningJobResult{Status: "cancelled", Terminal: true}, nil).Once()
	env.OnActivity(fta.SettleFineTuningJob, mock.Anything, mock.Anything).
		Return(activities.SettleFineTuningJobResult{Status: "cancelled", HeldMicros: 100, Settled: true}, nil).Once()
	env.ExecuteWorkflow(workflows.FineTuningJobWorkflow, workflows.FineTuningJobInput{JobID: "ftjob-2"})
	var res workflows.FineTuningJobResult
	if err := env.GetWorkflowResult(&res); err != nil || res.Status != "cancelled" || res.ChargedMicros != 0 {
		t.Fatalf("result %+v %v", res, err)
	}
}

func TestFineTuningJobWorkflowID(t *testing.T) {
	if id := workflows.FineTuningJobWorkflowID("ftjob-abc"); id != "fine-tune:ftjob-abc" {
		t.Fatalf("id %q", id)
	}
}

// A FineTuningJobWorkflow that settled without waiting for the job to end
// (charging before trained_tokens is final) does not replay the recorded
// run.
func TestReplayCatchesASettleBeforeTheJobEnds(t *testing.T) {
	changed := func(ctx workflow.Context, in workflows.FineTuningJobInput) (workflows.FineTuningJobResult, error) {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
		var s activities.SettleFineTuningJobResult
		err := workflow.ExecuteActivity(ctx, fta.SettleFineTuningJob, activities.SettleFineTuningJobInput{JobID: in.JobID}).Get(ctx, &s)
		return workflows.FineTuningJobResult{Status: s.Status}, err
	}
	r := sdkworker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(changed, workflow.RegisterOptions{Name: "FineTuningJobWorkflow"})
	if err := r.ReplayWorkflowHistoryFromJSONFile(replayLog, filepath.Join("testdata", "fine_tuning_succeeded.json")); err == nil {
		t.Fatal("a changed fine-tuning workflow replayed without error")
	}
}
