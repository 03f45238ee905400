package testenv

import (
	"time"

	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
)

// WorkflowEnv is a Temporal test environment for tests. Its deadlock
// detector waits a minute instead of the SDK's one second: a workflow task
// that runs activities inline (the test environment does) or is starved of
// CPU on a loaded CI machine is not a deadlocked workflow, and a detector
// that fires on wall-clock time would make the test fail by chance.
func WorkflowEnv(s *testsuite.WorkflowTestSuite) *testsuite.TestWorkflowEnvironment {
	env := s.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{DeadlockDetectionTimeout: time.Minute})
	return env
}
