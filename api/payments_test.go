package api_test

// The card-payment test harness: the API over a fake Stripe with the real
// payment rules, and workflows run in process (the real workflows with the
// real activities, synchronously) where the API would start them on
// Temporal.

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/api"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/config"
	fakestripe "github.com/beaver-gateway/beaver/internal/fakes/stripe"
	"github.com/beaver-gateway/beaver/internal/payments"
	"github.com/beaver-gateway/beaver/internal/payments/stripe"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
	"github.com/beaver-gateway/beaver/workflows"
)

const testWebhookSecret = "whsec_test_beaver"

// The API's interface for Temporal is satisfied by the one starter.
var _ api.Workflows = (*workflows.Starter)(nil)

// inProcessWorkflows is api.Workflows with Temporal's id semantics for the
// money workflows, run in process: one top-up settlement per workflow id
// (starting or signalling an open one re-runs the real
// TopUpSettlementWorkflow with the real activities, as the running workflow
// would re-check on a signal; a closed one is "already started", success),
// one refund per workflow id. down makes it fail like an unreachable
// Temporal. Everything else answers 503, as without Temporal.
type inProcessWorkflows struct {
	api.Workflows
	acts    *activities.PaymentActivities
	down    atomic.Bool
	runs    atomic.Int64 // settlement runs
	mu      sync.Mutex
	settled map[string]workflows.TopUpSettlementResult
	refunds map[string]workflows.RefundResult
}

func (f *inProcessWorkflows) StartTopUpSettlement(ctx context.Context, in workflows.TopUpSettlementInput) error {
	if f.down.Load() {
		return errors.New("temporal: connection refused")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := workflows.TopUpWorkflowID(in.SessionID)
	if _, ok := f.settled[id]; ok {
		return nil
	}
	f.runs.Add(1)
	var s testsuite.WorkflowTestSuite
	env := testenv.WorkflowEnv(&s)
	env.RegisterWorkflow(workflows.TopUpSettlementWorkflow)
	env.RegisterActivity(f.acts)
	// A short wait: an unpaid session leaves the run "pending" (still open).
	in.PollInterval, in.MaxWait = time.Millisecond, time.Millisecond
	env.ExecuteWorkflow(workflows.TopUpSettlementWorkflow, in)
	if err := env.GetWorkflowError(); err != nil {
		return nil // the workflow failed after being started: still "taken"
	}
	var res workflows.TopUpSettlementResult
	if err := env.GetWorkflowResult(&res); err == nil && res.Status != workflows.SettlementPending {
		f.settled[id] = res
	}
	return nil
}

func (f *inProcessWorkflows) StartRefund(_ context.Context, key string, in workflows.RefundInput) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := workflows.RefundWorkflowID(in.TopUpID, key)
	if _, ok := f.refunds[id]; ok {
		return id, nil
	}
	res, err := runRefund(f.acts, id, in)
	if err != nil {
		return "", err
	}
	f.refunds[id] = res
	return id, nil
}

func runRefund(acts *activities.PaymentActivities, id string, in workflows.RefundInput) (workflows.RefundResult, error) {
	var s testsuite.WorkflowTestSuite
	env := testenv.WorkflowEnv(&s)
	env.RegisterWorkflow(workflows.RefundWorkflow)
	env.RegisterActivity(acts)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: id})
	env.ExecuteWorkflow(workflows.RefundWorkflow, in)
	if err := env.GetWorkflowError(); err != nil {
		return workflows.RefundResult{}, err
	}
	var res workflows.RefundResult
	err := env.GetWorkflowResult(&res)
	return res, err
}

func runAutoRecharge(t *testing.T, acts *activities.PaymentActivities, accountID, runID string) workflows.AutoRechargeResult {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := testenv.WorkflowEnv(&s)
	env.RegisterWorkflow(workflows.AutoRechargeWorkflow)
	env.RegisterActivity(acts)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.AutoRechargeWorkflowID(accountID) + runID})
	env.ExecuteWorkflow(workflows.AutoRechargeWorkflow, workflows.AutoRechargeInput{AccountID: accountID})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res workflows.AutoRechargeResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

type payHarness struct {
	*harness
	Stripe    *fakestripe.Server
	Workflows *inProcessWorkflows
	Acts      *activities.PaymentActivities
}

func newPayHarness(t *testing.T, dialect string, cfg func(*config.Config)) *payHarness {
	t.Helper()
	fs := fakestripe.New(testWebhookSecret)
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	ph := &payHarness{Stripe: fs}
	ph.harness = newHarness(t, dialect, harnessOpts{Config: cfg, Deps: func(t *testing.T, h *harness, d *api.Deps) {
		sc, err := stripe.New(stripe.Config{SecretKey: "sk_test_beaver", WebhookSecret: testWebhookSecret, APIBase: srv.URL})
		if err != nil {
			t.Fatalf("stripe: %v", err)
		}
		d.Payments = payments.New(payments.Deps{DB: h.DB, Ledger: h.Ledger, Stripe: sc, Mailer: h.Mail,
			PublicURL: testPublicURL, AdminEmail: h.Cfg.AdminEmail, Log: h.Log})
		ph.Acts = &activities.PaymentActivities{Payments: d.Payments}
		ph.Workflows = &inProcessWorkflows{Workflows: workflows.NewStarter(workflows.StarterOptions{Log: h.Log}), acts: ph.Acts,
			settled: map[string]workflows.TopUpSettlementResult{}, refunds: map[string]workflows.RefundResult{}}
		d.Workflows = ph.Workflows
	}})
	return ph
}

func (h *payHarness) checkout(u *user, usd string) string {
	h.t.Helper()
	r := h.do("POST", "/account/top-up/checkout", u.Token, map[string]any{"amount_usd": usd}).want(200)
	if r.str("checkout_url") == "" {
		h.t.Fatalf("no checkout_url: %s", r.Raw)
	}
	return r.str("session_id")
}

func (h *payHarness) deliver(payload []byte, sig string) *resp {
	h.t.Helper()
	return h.do("POST", "/webhooks/stripe", "", payload, withHeader("Stripe-Signature", sig))
}

// paidTopUp buys usd by card and returns the top_ups row.
func (h *payHarness) paidTopUp(u *user, usd string) models.TopUp {
	h.t.Helper()
	sid := h.checkout(u, usd)
	payload, sig := h.Stripe.CompleteCheckout(sid, true)
	h.deliver(payload, sig).want(200)
	row := h.topUpRow(sid)
	if row.Status != "paid" || row.PaymentIntentID == "" {
		h.t.Fatalf("top-up row %+v", row)
	}
	return row
}

func (h *payHarness) topUpRow(sessionID string) models.TopUp {
	h.t.Helper()
	var row models.TopUp
	if err := h.DB.Where("checkout_session_id = ?", sessionID).Take(&row).Error; err != nil {
		h.t.Fatalf("top_ups row for %s: %v", sessionID, err)
	}
	return row
}

// spend debits the account outside the card flow (stands in for usage).
func (h *payHarness) spend(accountID string, micros int64, ref string) {
	h.t.Helper()
	if _, _, err := h.Ledger.Post(context.Background(), billing.Entry{AccountID: accountID, Type: models.EntryAdjustment,
		AmountMicros: -micros, Reference: ref, Description: "test spend"}); err != nil {
		h.t.Fatal(err)
	}
}

// wantBalance checks balance == sum(ledger) == want.
func (h *payHarness) wantBalance(accountID string, want int64) {
	h.t.Helper()
	var acct models.Account
	if err := h.DB.Where("id = ?", accountID).Take(&acct).Error; err != nil {
		h.t.Fatal(err)
	}
	sum := h.scalar("SELECT COALESCE(SUM(amount_micros), 0) FROM ledger_entries WHERE account_id = ?", accountID)
	if acct.BalanceMicros != sum || sum != want {
		h.t.Fatalf("balance %d, ledger sum %d, want %d", acct.BalanceMicros, sum, want)
	}
}

// wantCredited checks balance == sum(ledger) == want and the number of
// topup entries.
func (h *payHarness) wantCredited(accountID string, wantMicros int64, wantTopUps int) {
	h.t.Helper()
	h.wantBalance(accountID, wantMicros)
	var n int64
	if err := h.DB.Model(&models.LedgerEntry{}).Where("account_id = ? AND type = ?", accountID, models.EntryTopUp).Count(&n).Error; err != nil {
		h.t.Fatal(err)
	}
	if n != int64(wantTopUps) {
		h.t.Fatalf("%d topup entries, want %d", n, wantTopUps)
	}
}

// saveCard saves pm through a setup Checkout and turns auto-recharge on
// (5 USD threshold, 20 USD amount).
func (h *payHarness) saveCard(u *user, pm string) {
	h.t.Helper()
	s := h.do("POST", "/account/auto-recharge/setup", u.Token, nil).want(200)
	payload, sig := h.Stripe.CompleteSetupCheckout(s.str("session_id"), pm)
	h.deliver(payload, sig).want(200)
	h.do("PUT", "/account/auto-recharge", u.Token, map[string]any{"enabled": true, "threshold_usd": "5", "amount_usd": "20"}).want(200)
}
