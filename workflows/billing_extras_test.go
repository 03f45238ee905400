package workflows_test

import (
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/workflows"
)

func newBillingEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
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
		Return(activities.FinishRefundResult{Status: activities.RefundSucceeded}, nil).Once()
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
		Return(activities.FinishRefundResult{Status: activities.RefundFailed}, nil).Once()
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

func arSettings(enabled bool, available int64) activities.GetAutoRechargeResult {
	return activities.GetAutoRechargeResult{Found: true, AvailableMicros: available, BalanceMicros: available,
		Settings: activities.AutoRecharge{AccountID: "acct_1", Enabled: enabled, ThresholdMicros: 5_000_000,
			AmountMicros: 20_000_000, StripeCustomerID: "cus_1", PaymentMethodID: "pm_1"}}
}

func arResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) workflows.AutoRechargeResult {
	t.Helper()
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("workflow: completed=%v err=%v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	var res workflows.AutoRechargeResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestAutoRechargeCharges(t *testing.T) {
	env := newBillingEnv(t)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.AutoRechargeWorkflowID("acct_1")})
	env.OnActivity(pa.GetAutoRecharge, mock.Anything, activities.GetAutoRechargeInput{AccountID: "acct_1"}).Return(arSettings(true, 1_000_000), nil).Once()
	env.OnActivity(pa.ChargeAutoRecharge, mock.Anything, mock.MatchedBy(func(in activities.ChargeAutoRechargeInput) bool {
		return in.AccountID == "acct_1" && in.CustomerID == "cus_1" && in.PaymentMethodID == "pm_1" && in.AmountMicros == 20_000_000 &&
			len(in.IdempotencyKey) > len("autorecharge:acct_1:") && in.IdempotencyKey[:len("autorecharge:acct_1:")] == "autorecharge:acct_1:"
	})).Return(activities.ChargeAutoRechargeResult{Succeeded: true, PaymentIntentID: "pi_9", AmountMicros: 20_000_000}, nil).Once()
	env.OnActivity(pa.CreditAutoRecharge, mock.Anything, activities.CreditAutoRechargeInput{AccountID: "acct_1", PaymentIntentID: "pi_9", AmountMicros: 20_000_000}).
		Return(activities.CreditAutoRechargeResult{EntryID: "txn_5", Created: true}, nil).Once()
	env.ExecuteWorkflow(workflows.AutoRechargeWorkflow, workflows.AutoRechargeInput{AccountID: "acct_1"})
	if res := arResult(t, env); res.Status != workflows.AutoRechargeCharged || res.EntryID != "txn_5" {
		t.Fatalf("result = %+v", res)
	}
}

func TestAutoRechargeSkips(t *testing.T) {
	for name, st := range map[string]activities.GetAutoRechargeResult{
		"disabled": arSettings(false, 1_000_000), "above threshold": arSettings(true, 6_000_000), "none": {},
	} {
		t.Run(name, func(t *testing.T) {
			env := newBillingEnv(t)
			env.OnActivity(pa.GetAutoRecharge, mock.Anything, mock.Anything).Return(st, nil).Once()
			env.ExecuteWorkflow(workflows.AutoRechargeWorkflow, workflows.AutoRechargeInput{AccountID: "acct_1"})
			if res := arResult(t, env); res.Status != workflows.AutoRechargeSkipped {
				t.Fatalf("result = %+v", res)
			}
		})
	}
}

func TestAutoRechargeDeclineCountsAndEmails(t *testing.T) {
	env := newBillingEnv(t)
	env.OnActivity(pa.GetAutoRecharge, mock.Anything, mock.Anything).Return(arSettings(true, 0), nil).Once()
	env.OnActivity(pa.ChargeAutoRecharge, mock.Anything, mock.Anything).
		Return(activities.ChargeAutoRechargeResult{Declined: true, Code: "card_declined", Message: "Your card was declined.", PaymentIntentID: "pi_x"}, nil).Once()
	env.OnActivity(pa.RecordAutoRechargeFailure, mock.Anything, mock.MatchedBy(func(in activities.RecordAutoRechargeFailureInput) bool {
		return in.AccountID == "acct_1" && in.Code == "card_declined" && !in.AuthenticationRequired && in.AttemptKey != ""
	})).Return(activities.RecordAutoRechargeFailureResult{ConsecutiveFailures: 3, Disabled: true, DisabledReason: "declined 3 times"}, nil).Once()
	env.OnActivity(pa.SendAutoRechargeFailed, mock.Anything, mock.MatchedBy(func(in activities.SendAutoRechargeFailedInput) bool {
		return in.DisabledReason == "declined 3 times" && in.AmountMicros == 20_000_000
	})).Return(activities.SendAutoRechargeFailedResult{}, nil).Once()
	env.ExecuteWorkflow(workflows.AutoRechargeWorkflow, workflows.AutoRechargeInput{AccountID: "acct_1"})
	if res := arResult(t, env); res.Status != workflows.AutoRechargeDeclined || !res.Disabled || res.ConsecutiveFailures != 3 {
		t.Fatalf("result = %+v", res)
	}
}
