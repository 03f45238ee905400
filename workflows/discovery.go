package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/beaver-gateway/beaver/activities"
)

// ModelDiscoveryInput says why discovery runs.
type ModelDiscoveryInput struct {
	Reason string
}

// ModelDiscoveryResult sums up a run.
type ModelDiscoveryResult struct {
	Providers int      // visited
	Changed   []string // providers whose report changed
	Failed    []string // providers whose list could not be read, or whose activity gave up
	Emailed   int      // admins emailed
}

// discoveryParallel bounds how many providers are listed at once: enough
// to finish quickly, few enough not to look like a burst to anyone.
const discoveryParallel = 4

// ModelDiscoveryWorkflow compares every provider's model list with the
// catalog (daily by schedule, or on an admin's request) and, when any
// provider's report changed since the run before, emails the admins one
// summary. One provider failing never stops the others.
func ModelDiscoveryWorkflow(ctx workflow.Context, in ModelDiscoveryInput) (ModelDiscoveryResult, error) {
	var list activities.ListProvidersResult
	if err := workflow.ExecuteActivity(withActivity(ctx, 30*time.Second, 10*time.Minute, 0), a.ListProviders,
		activities.ListProvidersInput{}).Get(ctx, &list); err != nil {
		return ModelDiscoveryResult{}, err
	}
	res := ModelDiscoveryResult{Providers: len(list.IDs), Changed: []string{}, Failed: []string{}}
	discoverAll(ctx, list.IDs, &res)
	if len(res.Changed) == 0 {
		return res, nil
	}
	var sent activities.SendDiscoveryReportResult
	err := workflow.ExecuteActivity(withActivity(ctx, time.Minute, 6*time.Hour, 0), a.SendDiscoveryReport,
		activities.SendDiscoveryReportInput{ProviderIDs: res.Changed}).Get(ctx, &sent)
	res.Emailed = sent.Sent
	return res, err
}

// discoverAll runs DiscoverModels for each provider, discoveryParallel at a
// time, in list order (so results and histories are deterministic).
func discoverAll(ctx workflow.Context, ids []string, res *ModelDiscoveryResult) {
	// A listing call is bounded by the registry's HTTP timeout; retries
	// cover database hiccups, not a provider that is down (that is a
	// result, not an error).
	actx := withActivity(ctx, 2*time.Minute, 10*time.Minute, 5)
	info := workflow.GetInfo(ctx).WorkflowExecution
	run := info.ID + "/" + info.RunID
	log := workflow.GetLogger(ctx)
	for start := 0; start < len(ids); start += discoveryParallel {
		batch := ids[start:min(start+discoveryParallel, len(ids))]
		futures := make([]workflow.Future, len(batch))
		for i, id := range batch {
			futures[i] = workflow.ExecuteActivity(actx, a.DiscoverModels, activities.DiscoverModelsInput{ProviderID: id, Run: run})
		}
		for i, id := range batch {
			var r activities.DiscoverModelsResult
			if err := futures[i].Get(ctx, &r); err != nil {
				log.Warn("model discovery gave up on a provider", "provider", id, "error", err)
				res.Failed = append(res.Failed, id)
				continue
			}
			if r.Failed {
				res.Failed = append(res.Failed, id)
			}
			if r.Changed {
				res.Changed = append(res.Changed, id)
			}
		}
	}
}
