package workflows_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/workflows"
)

// discoveryEnv lists providers ids and answers each one's DiscoverModels
// with results[id].
func discoveryEnv(t *testing.T, ids []string, results map[string]activities.DiscoverModelsResult) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	env := newWorkflowEnv(t)
	env.OnActivity(a.ListProviders, mock.Anything, mock.Anything).Return(activities.ListProvidersResult{IDs: ids}, nil).Once()
	for id, r := range results {
		env.OnActivity(a.DiscoverModels, mock.Anything, mock.MatchedBy(func(in activities.DiscoverModelsInput) bool {
			return in.ProviderID == id && in.Run != ""
		})).Return(r, nil).Once()
	}
	return env
}

func discoveryResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) workflows.ModelDiscoveryResult {
	t.Helper()
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res workflows.ModelDiscoveryResult
	require.NoError(t, env.GetWorkflowResult(&res))
	return res
}

func TestModelDiscoveryEmailsWhenSomethingChanged(t *testing.T) {
	ids := []string{"anthropic", "deepseek", "google", "groq", "openai", "xai"} // more than one batch
	results := map[string]activities.DiscoverModelsResult{}
	for _, id := range ids {
		results[id] = activities.DiscoverModelsResult{Served: 3}
	}
	results["openai"] = activities.DiscoverModelsResult{Changed: true, Served: 3, Missing: 1}
	results["xai"] = activities.DiscoverModelsResult{Changed: true, Failed: true}
	env := discoveryEnv(t, ids, results)
	env.OnActivity(a.SendDiscoveryReport, mock.Anything, activities.SendDiscoveryReportInput{ProviderIDs: []string{"openai", "xai"}}).
		Return(activities.SendDiscoveryReportResult{Sent: 2}, nil).Once()
	env.ExecuteWorkflow(workflows.ModelDiscoveryWorkflow, workflows.ModelDiscoveryInput{Reason: "test"})
	require.Equal(t, workflows.ModelDiscoveryResult{Providers: 6, Changed: []string{"openai", "xai"}, Failed: []string{"xai"},
		Emailed: 2}, discoveryResult(t, env))
}

func TestModelDiscoveryUnchangedSendsNoEmail(t *testing.T) {
	env := discoveryEnv(t, []string{"openai", "xai"}, map[string]activities.DiscoverModelsResult{
		"openai": {Served: 3, Missing: 1}, // the same as the run before
		"xai":    {Failed: true},          // still failing
	})
	// No SendDiscoveryReport mock: calling it would fail the workflow.
	env.ExecuteWorkflow(workflows.ModelDiscoveryWorkflow, workflows.ModelDiscoveryInput{})
	res := discoveryResult(t, env)
	require.Empty(t, res.Changed)
	require.Zero(t, res.Emailed)
	env.AssertNotCalled(t, "SendDiscoveryReport", mock.Anything, mock.Anything)
}

func TestModelDiscoveryOneProviderGivingUpStopsNoOther(t *testing.T) {
	env := newWorkflowEnv(t)
	env.OnActivity(a.ListProviders, mock.Anything, mock.Anything).Return(activities.ListProvidersResult{IDs: []string{"broken", "openai"}}, nil).Once()
	env.OnActivity(a.DiscoverModels, mock.Anything, mock.MatchedBy(func(in activities.DiscoverModelsInput) bool { return in.ProviderID == "broken" })).
		Return(activities.DiscoverModelsResult{}, errors.New("database is locked"))
	env.OnActivity(a.DiscoverModels, mock.Anything, mock.MatchedBy(func(in activities.DiscoverModelsInput) bool { return in.ProviderID == "openai" })).
		Return(activities.DiscoverModelsResult{Changed: true}, nil).Once()
	env.OnActivity(a.SendDiscoveryReport, mock.Anything, activities.SendDiscoveryReportInput{ProviderIDs: []string{"openai"}}).
		Return(activities.SendDiscoveryReportResult{Sent: 1}, nil).Once()
	env.ExecuteWorkflow(workflows.ModelDiscoveryWorkflow, workflows.ModelDiscoveryInput{})
	res := discoveryResult(t, env)
	require.Equal(t, []string{"broken"}, res.Failed)
	require.Equal(t, []string{"openai"}, res.Changed)
}

func TestModelDiscoveryWithNoProviders(t *testing.T) {
	env := discoveryEnv(t, []string{}, nil)
	env.ExecuteWorkflow(workflows.ModelDiscoveryWorkflow, workflows.ModelDiscoveryInput{})
	require.Equal(t, workflows.ModelDiscoveryResult{Changed: []string{}, Failed: []string{}}, discoveryResult(t, env))
}
