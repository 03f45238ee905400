package workflows_test

import (
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/worker"
	"github.com/beaver-gateway/beaver/workflows"
)

// The histories in testdata/ were recorded from real runs on a Temporal dev
// server (go test ./worker -run TestEndToEnd with BEAVER_RECORD_HISTORIES=1;
// the money workflows' with fake Stripe, before the payments code moved to
// internal/payments, so they also prove that move kept the workflows as
// they were). Replaying them against today's code catches
// non-deterministic changes to workflows that may still have runs in
// flight: such a change needs workflow.GetVersion, or a new workflow type.

// moneyHistories must stay: the workflows that move money each have at
// least one recorded run.
var moneyHistories = []string{
	"topup_settlement_paid",         // paid at once: credit, receipt
	"topup_settlement_async_paid",   // a delayed payment: wait, signal, credit
	"refund_succeeded",              // debit, Stripe refund, finish
	"auto_recharge_charged",         // charge the saved card, credit
	"auto_recharge_declined",        // a decline: count it, email the user
	"fine_tuning_succeeded",         // poll, timer, poll… until succeeded, settle once
	"background_response_completed", // a background response run and charged
	"background_response_cancelled", // one cancelled before it ran: free
	"batch_completed",               // a batch's lines run and charged, its files written
	"batch_native_completed",        // a batch sent to Anthropic's Message Batches: held, polled, each line charged once
}

var replayLog = sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no histories in testdata/: %v", err)
	}
	for _, name := range moneyHistories {
		if !slices.Contains(files, filepath.Join("testdata", name+".json")) {
			t.Errorf("testdata/%s.json is missing", name)
		}
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			r := sdkworker.NewWorkflowReplayer()
			worker.RegisterWorkflows(r)
			if err := r.ReplayWorkflowHistoryFromJSONFile(replayLog, f); err != nil {
				t.Fatalf("replay %s: %v", f, err)
			}
		})
	}
}

// TestReplayCatchesAChangedWorkflow shows the replay test has teeth: a
// RepricingWorkflow that schedules something else does not replay.
func TestReplayCatchesAChangedWorkflow(t *testing.T) {
	changed := func(ctx workflow.Context, in workflows.RepricingInput) (workflows.RepricingResult, error) {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
		var acts *activities.Activities
		err := workflow.ExecuteActivity(ctx, acts.SweepLeases, activities.SweepLeasesInput{}).Get(ctx, nil)
		return workflows.RepricingResult{}, err
	}
	r := sdkworker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(changed, workflow.RegisterOptions{Name: "RepricingWorkflow"})
	if err := r.ReplayWorkflowHistoryFromJSONFile(replayLog, filepath.Join("testdata", "repricing.json")); err == nil {
		t.Fatal("a changed workflow replayed without error")
	}
}

// TestReplayCatchesAChangedMoneyWorkflow: a RefundWorkflow that asked
// Stripe before debiting the ledger (the order that would refund money
// already spent) does not replay.
func TestReplayCatchesAChangedMoneyWorkflow(t *testing.T) {
	changed := func(ctx workflow.Context, in workflows.RefundInput) (workflows.RefundResult, error) {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
		var pa *activities.PaymentActivities
		err := workflow.ExecuteActivity(ctx, pa.StripeRefund, activities.StripeRefundInput{}).Get(ctx, nil)
		return workflows.RefundResult{}, err
	}
	r := sdkworker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(changed, workflow.RegisterOptions{Name: "RefundWorkflow"})
	if err := r.ReplayWorkflowHistoryFromJSONFile(replayLog, filepath.Join("testdata", "refund_succeeded.json")); err == nil {
		t.Fatal("a changed workflow replayed without error")
	}
}

// TestReplayCatchesAChangedBackgroundResponse: a BackgroundResponseWorkflow
// that gave up on its response (FailBackgroundResponse) instead of running
// it does not replay its recorded run.
func TestReplayCatchesAChangedBackgroundResponse(t *testing.T) {
	changed := func(ctx workflow.Context, in workflows.BackgroundResponseInput) (activities.RunBackgroundResponseResult, error) {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
		var ba *activities.BackgroundResponseActivities
		var res activities.RunBackgroundResponseResult
		err := workflow.ExecuteActivity(ctx, ba.FailBackgroundResponse, activities.RunBackgroundResponseInput{ResponseID: in.ResponseID}).Get(ctx, &res)
		return res, err
	}
	r := sdkworker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(changed, workflow.RegisterOptions{Name: "BackgroundResponseWorkflow"})
	if err := r.ReplayWorkflowHistoryFromJSONFile(replayLog, filepath.Join("testdata", "background_response_completed.json")); err == nil {
		t.Fatal("a changed workflow replayed without error")
	}
}

// TestReplayCatchesAChangedDiscovery: a ModelDiscoveryWorkflow that no
// longer emails the report after a change does not replay its recorded run.
func TestReplayCatchesAChangedDiscovery(t *testing.T) {
	changed := func(ctx workflow.Context, in workflows.ModelDiscoveryInput) (workflows.ModelDiscoveryResult, error) {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
		var acts *activities.Activities
		var list activities.ListProvidersResult
		err := workflow.ExecuteActivity(ctx, acts.ListProviders, activities.ListProvidersInput{}).Get(ctx, &list)
		return workflows.ModelDiscoveryResult{Providers: len(list.IDs)}, err
	}
	r := sdkworker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(changed, workflow.RegisterOptions{Name: "ModelDiscoveryWorkflow"})
	if err := r.ReplayWorkflowHistoryFromJSONFile(replayLog, filepath.Join("testdata", "model_discovery_changed.json")); err == nil {
		t.Fatal("a changed workflow replayed without error")
	}
}
