package workflows_test

import (
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/models"
	"github.com/beaver-gateway/beaver/workflows"
)

func arSettings(enabled bool, available int64) activities.GetAutoRechargeResult {
	return activities.GetAutoRechargeResult{Found: true, AvailableMicros: available, BalanceMicros: available,
		Settings: models.AutoRecharge{AccountID: "acct_1", Enabled: enabled, ThresholdMicros: 5_000_000,
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
