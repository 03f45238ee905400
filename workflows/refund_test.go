package workflows_test

import (
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
	"github.com/beaver-gateway/beaver/workflows"
)

// newBillingEnv runs RefundWorkflow and AutoRechargeWorkflow with mocked
// payment activities.
func newBillingEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := testenv.WorkflowEnv(&s)
	env.RegisterWorkflow(workflows.RefundWorkflow)
	env.RegisterWorkflow(workflows.AutoRechargeWorkflow)
	env.RegisterActivity(&activities.PaymentActivities{})
	t.Cleanup(func() { env.AssertExpectations(t) })
	return env
}

func refundResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) workflows.RefundResult {
	t.Helper()
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("workflow: completed=%v err=%v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	var res workflows.RefundResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

const refundWID = "refund:tu_1:key1"

func TestRefundWorkflowDebitsThenRefunds(t *testing.T) {
	env := newBillingEnv(t)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: refundWID})
	var order []string
	env.OnActivity(pa.PrepareRefund, mock.Anything, activities.PrepareRefundInput{RequestKey: refundWID, TopUpID: "tu_1", AmountMicros: 5_000_000}).
		Run(func(mock.Arguments) { order = append(order, "debit") }).
		Return(activities.PrepareRefundResult{RefundID: "rf_1", AccountID: "acct_1", PaymentIntentID: "pi_1", AmountMicros: 5_000_000, LedgerEntryID: "txn_9"}, nil).Once()
	env.OnActivity(pa.StripeRefund, mock.Anything, activities.StripeRefundInput{RefundID: "rf_1", PaymentIntentID: "pi_1", AmountMicros: 5_000_000}).
		Run(func(mock.Arguments) { order = append(order, "stripe") }).
		Return(activities.StripeRefundResult{StripeRefundID: "re_1", Status: "succeeded"}, nil).Once()
	env.OnActivity(pa.FinishRefund, mock.Anything, activities.FinishRefundInput{RefundID: "rf_1", StripeRefundID: "re_1"}).
		Return(activities.FinishRefundResult{Status: models.RefundSucceeded}, nil).Once()
	env.ExecuteWorkflow(workflows.RefundWorkflow, workflows.RefundInput{TopUpID: "tu_1", AmountMicros: 5_000_000})
	res := refundResult(t, env)
	if res.Status != workflows.RefundSucceeded || res.StripeRefundID != "re_1" || res.RefundID != "rf_1" {
		t.Fatalf("result = %+v", res)
	}
	if len(order) != 2 || order[0] != "debit" || order[1] != "stripe" {
		t.Fatalf("order = %v, want debit before stripe", order)
	}
}

func TestRefundWorkflowStripeRefusesCompensates(t *testing.T) {
	env := newBillingEnv(t)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: refundWID})
	env.OnActivity(pa.PrepareRefund, mock.Anything, mock.Anything).
		Return(activities.PrepareRefundResult{RefundID: "rf_1", AccountID: "acct_1", PaymentIntentID: "pi_1", AmountMicros: 5_000_000}, nil).Once()
	env.OnActivity(pa.StripeRefund, mock.Anything, mock.Anything).
		Return(activities.StripeRefundResult{Refused: true, Reason: "charge_already_refunded"}, nil).Once()
	env.OnActivity(pa.FinishRefund, mock.Anything, activities.FinishRefundInput{RefundID: "rf_1", Failed: true, Reason: "charge_already_refunded"}).
		Return(activities.FinishRefundResult{Status: models.RefundFailed}, nil).Once()
	env.ExecuteWorkflow(workflows.RefundWorkflow, workflows.RefundInput{TopUpID: "tu_1", AmountMicros: 5_000_000})
	if res := refundResult(t, env); res.Status != workflows.RefundFailed {
		t.Fatalf("result = %+v", res)
	}
}

func TestRefundWorkflowRejectedNeverCallsStripe(t *testing.T) {
	for _, typ := range []string{activities.ErrTypeRefundInsufficientBalance, activities.ErrTypeRefundTooLarge} {
		t.Run(typ, func(t *testing.T) {
			env := newBillingEnv(t)
			env.OnActivity(pa.PrepareRefund, mock.Anything, mock.Anything).
				Return(activities.PrepareRefundResult{}, temporal.NewNonRetryableApplicationError("no", typ, nil)).Once()
			env.ExecuteWorkflow(workflows.RefundWorkflow, workflows.RefundInput{TopUpID: "tu_1", AmountMicros: 5_000_000})
			if res := refundResult(t, env); res.Status != workflows.RefundRejected {
				t.Fatalf("result = %+v", res)
			}
		})
	}
}
