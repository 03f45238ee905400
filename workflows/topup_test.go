package workflows_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/internal/payments"
	"github.com/beaver-gateway/beaver/internal/payments/stripe"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
	"github.com/beaver-gateway/beaver/workflows"
)

var pa *activities.PaymentActivities

const sid = "cs_test_123"

func session(paymentStatus string) activities.GetCheckoutSessionResult {
	return activities.GetCheckoutSessionResult{Session: payments.CheckoutSession{
		ID: sid, Mode: "payment", Status: "complete", PaymentStatus: paymentStatus, Currency: "usd",
		AmountTotalMicros: 25_000_000, AccountID: "acct_1", Kind: stripe.KindTopUp,
		PaymentIntentID: "pi_1", ReceiptURL: "https://pay.stripe.test/receipt", InvoiceURL: "https://invoice.stripe.test/i",
	}}
}

func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := testenv.WorkflowEnv(&s)
	env.RegisterWorkflow(workflows.TopUpSettlementWorkflow)
	env.RegisterActivity(&activities.PaymentActivities{})
	t.Cleanup(func() { env.AssertExpectations(t) })
	return env
}

func result(t *testing.T, env *testsuite.TestWorkflowEnvironment) workflows.TopUpSettlementResult {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	var res workflows.TopUpSettlementResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

func expectCredit(env *testsuite.TestWorkflowEnvironment) {
	env.OnActivity(pa.CreditTopUp, mock.Anything, activities.CreditTopUpInput{
		SessionID: sid, AccountID: "acct_1", AmountMicros: 25_000_000, PaymentIntentID: "pi_1",
		InvoiceURL: "https://invoice.stripe.test/i", ReceiptURL: "https://pay.stripe.test/receipt",
	}).Return(activities.CreditTopUpResult{EntryID: "txn_1", BalanceAfterMicros: 30_000_000, Created: true}, nil).Once()
	env.OnActivity(pa.SendTopUpReceipt, mock.Anything, activities.SendTopUpReceiptInput{
		SessionID: sid, AccountID: "acct_1", AmountMicros: 25_000_000, BalanceAfterMicros: 30_000_000, EntryID: "txn_1",
	}).Return(activities.SendTopUpReceiptResult{}, nil).Once()
}

func TestTopUpSettlementPaid(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(pa.GetCheckoutSession, mock.Anything, activities.GetCheckoutSessionInput{SessionID: sid}).
		Return(session("paid"), nil).Once()
	expectCredit(env)
	env.ExecuteWorkflow(workflows.TopUpSettlementWorkflow, workflows.TopUpSettlementInput{
		SessionID: sid, EventType: stripe.EventCheckoutSessionCompleted})
	res := result(t, env)
	if res.Status != workflows.SettlementPaid || res.EntryID != "txn_1" || !res.Credited || res.AmountMicros != 25_000_000 {
		t.Fatalf("result = %+v", res)
	}
}

func TestTopUpSettlementUnpaidThenAsyncSucceeded(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(pa.GetCheckoutSession, mock.Anything, mock.Anything).Return(session("unpaid"), nil).Once()
	env.OnActivity(pa.GetCheckoutSession, mock.Anything, mock.Anything).Return(session("paid"), nil).Once()
	expectCredit(env)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(workflows.SignalTopUpEvent, stripe.EventCheckoutSessionAsyncSucceeded)
	}, time.Hour)
	env.ExecuteWorkflow(workflows.TopUpSettlementWorkflow, workflows.TopUpSettlementInput{
		SessionID: sid, EventType: stripe.EventCheckoutSessionCompleted})
	if res := result(t, env); res.Status != workflows.SettlementPaid || !res.Credited {
		t.Fatalf("result = %+v", res)
	}
}

func TestTopUpSettlementUnpaidPollsUntilPaid(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(pa.GetCheckoutSession, mock.Anything, mock.Anything).Return(session("unpaid"), nil).Times(3)
	env.OnActivity(pa.GetCheckoutSession, mock.Anything, mock.Anything).Return(session("paid"), nil).Once()
	expectCredit(env)
	env.ExecuteWorkflow(workflows.TopUpSettlementWorkflow, workflows.TopUpSettlementInput{
		SessionID: sid, EventType: stripe.EventCheckoutSessionCompleted})
	if res := result(t, env); res.Status != workflows.SettlementPaid {
		t.Fatalf("result = %+v", res)
	}
}

func TestTopUpSettlementAsyncFailed(t *testing.T) {
	for _, viaSignal := range []bool{false, true} {
		t.Run(map[bool]string{false: "started-by-failure", true: "signalled"}[viaSignal], func(t *testing.T) {
			env := newEnv(t)
			env.OnActivity(pa.GetCheckoutSession, mock.Anything, mock.Anything).Return(session("unpaid"), nil)
			env.OnActivity(pa.MarkTopUp, mock.Anything, activities.MarkTopUpInput{SessionID: sid, AccountID: "acct_1",
				AmountMicros: 25_000_000, PaymentIntentID: "pi_1", Status: models.TopUpFailed}).
				Return(activities.MarkTopUpResult{Status: models.TopUpFailed}, nil).Once()
			event := stripe.EventCheckoutSessionAsyncFailed
			if viaSignal {
				event = stripe.EventCheckoutSessionCompleted
				env.RegisterDelayedCallback(func() {
					env.SignalWorkflow(workflows.SignalTopUpEvent, stripe.EventCheckoutSessionAsyncFailed)
				}, time.Hour)
			}
			env.ExecuteWorkflow(workflows.TopUpSettlementWorkflow, workflows.TopUpSettlementInput{SessionID: sid, EventType: event})
			if res := result(t, env); res.Status != workflows.SettlementFailed || res.Credited {
				t.Fatalf("result = %+v", res)
			}
		})
	}
}

func TestTopUpSettlementStaysPendingAfterMaxWait(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(pa.GetCheckoutSession, mock.Anything, mock.Anything).Return(session("unpaid"), nil)
	env.ExecuteWorkflow(workflows.TopUpSettlementWorkflow, workflows.TopUpSettlementInput{
		SessionID: sid, EventType: stripe.EventCheckoutSessionCompleted, PollInterval: time.Hour, MaxWait: 3 * time.Hour})
	if res := result(t, env); res.Status != workflows.SettlementPending {
		t.Fatalf("result = %+v", res)
	}
}

func TestTopUpSettlementIgnoresOtherCurrencies(t *testing.T) {
	env := newEnv(t)
	s := session("paid")
	s.Session.Currency, s.Session.AmountTotalMicros = "eur", 0
	env.OnActivity(pa.GetCheckoutSession, mock.Anything, mock.Anything).Return(s, nil).Once()
	env.ExecuteWorkflow(workflows.TopUpSettlementWorkflow, workflows.TopUpSettlementInput{
		SessionID: sid, EventType: stripe.EventCheckoutSessionCompleted})
	if res := result(t, env); res.Status != workflows.SettlementIgnored {
		t.Fatalf("result = %+v", res)
	}
}

func TestTopUpSettlementReceiptFailureKeepsCredit(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(pa.GetCheckoutSession, mock.Anything, mock.Anything).Return(session("paid"), nil).Once()
	env.OnActivity(pa.CreditTopUp, mock.Anything, mock.Anything).
		Return(activities.CreditTopUpResult{EntryID: "txn_1", Created: true}, nil).Once()
	env.OnActivity(pa.SendTopUpReceipt, mock.Anything, mock.Anything).
		Return(activities.SendTopUpReceiptResult{}, errors.New("smtp down"))
	env.ExecuteWorkflow(workflows.TopUpSettlementWorkflow, workflows.TopUpSettlementInput{
		SessionID: sid, EventType: stripe.EventCheckoutSessionCompleted})
	if res := result(t, env); res.Status != workflows.SettlementPaid {
		t.Fatalf("result = %+v", res)
	}
}
