package api_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/api"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/payments"
	"github.com/beaver-gateway/beaver/internal/payments/fakestripe"
	"github.com/beaver-gateway/beaver/models"
	"github.com/beaver-gateway/beaver/workflows"
)

// fakeRefunds is an in-process RefundStarter: one run per workflow id, the
// real RefundWorkflow with the real activities, synchronously.
type fakeRefunds struct {
	acts    *activities.PaymentActivities
	mu      sync.Mutex
	results map[string]workflows.RefundResult
}

func (f *fakeRefunds) StartRefund(_ context.Context, key string, in workflows.RefundInput) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := workflows.RefundWorkflowID(in.TopUpID, key)
	if _, ok := f.results[id]; ok {
		return id, nil
	}
	res, err := runRefund(f.acts, id, in)
	if err != nil {
		return "", err
	}
	f.results[id] = res
	return id, nil
}

func runRefund(acts *activities.PaymentActivities, id string, in workflows.RefundInput) (workflows.RefundResult, error) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
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

type billHarness struct {
	*harness
	Stripe  *fakestripe.Server
	TopUps  *fakeTopUps
	Refunds *fakeRefunds
	Acts    *activities.PaymentActivities
}

func newBillHarness(t *testing.T, dialect string) *billHarness {
	t.Helper()
	fs := fakestripe.New(testWebhookSecret)
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	bh := &billHarness{Stripe: fs, TopUps: &fakeTopUps{closed: map[string]workflows.TopUpSettlementResult{}},
		Refunds: &fakeRefunds{results: map[string]workflows.RefundResult{}}}
	bh.harness = newHarness(t, dialect, harnessOpts{Deps: func(t *testing.T, h *harness, d *api.Deps) {
		pc, err := payments.New(payments.Config{SecretKey: "sk_test_beaver", WebhookSecret: testWebhookSecret, APIBase: srv.URL})
		if err != nil {
			t.Fatalf("payments: %v", err)
		}
		d.Payments = pc
		bh.Acts = &activities.PaymentActivities{DB: h.DB, Ledger: h.Ledger, Payments: pc, Mailer: h.Mail,
			PublicURL: testPublicURL, Log: h.Log}
		bh.TopUps.acts, bh.Refunds.acts = bh.Acts, bh.Acts
		d.TopUps, d.Refunds = bh.TopUps, bh.Refunds
	}})
	return bh
}

func (h *billHarness) deliver(payload []byte, sig string) *resp {
	h.t.Helper()
	return h.do("POST", "/webhooks/stripe", "", payload, withHeader("Stripe-Signature", sig))
}

// paidTopUp buys usd by card and returns the top_ups row.
func (h *billHarness) paidTopUp(u *user, usd string) activities.TopUp {
	h.t.Helper()
	r := h.do("POST", "/account/top-up/checkout", u.Token, map[string]any{"amount_usd": usd}).want(200)
	sid := r.str("session_id")
	payload, sig := h.Stripe.CompleteCheckout(sid, true)
	h.deliver(payload, sig).want(200)
	var row activities.TopUp
	if err := h.DB.Where("checkout_session_id = ?", sid).Take(&row).Error; err != nil || row.Status != "paid" || row.PaymentIntentID == "" {
		h.t.Fatalf("top-up row %+v err %v", row, err)
	}
	return row
}

// spend debits the account outside the card flow (stands in for usage).
func (h *billHarness) spend(accountID string, micros int64, ref string) {
	h.t.Helper()
	if _, _, err := h.Ledger.Post(context.Background(), billing.Entry{AccountID: accountID, Type: models.EntryAdjustment,
		AmountMicros: -micros, Reference: ref, Description: "test spend"}); err != nil {
		h.t.Fatal(err)
	}
}

// wantBalance checks balance == sum(ledger) == want.
func (h *billHarness) wantBalance(accountID string, want int64) {
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

func TestBillingListsCardTopUpsAndRefunds(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newBillHarness(t, dialect)
		u := h.newUser()
		top := h.paidTopUp(u, "25")
		r := h.do("POST", "/admin/refunds", h.Admin.Token, map[string]any{"top_up_id": top.ID, "amount_usd": "10"}).want(202)
		if !strings.HasPrefix(r.str("workflow_id"), "refund:"+top.ID+":") {
			t.Fatalf("workflow_id %s", r.Raw)
		}
		h.wantBalance(u.ID, 15_000_000)
		if n := len(h.Stripe.RequestsTo("POST", "/v1/refunds")); n != 1 {
			t.Fatalf("stripe refunds: %d", n)
		}
		b := h.do("GET", "/account/billing", u.Token, nil).want(200)
		if b.str("card_top_ups.0.id") != top.ID || b.str("card_top_ups.0.status") != "paid" ||
			b.str("card_top_ups.0.receipt_url") == "" || b.num("card_top_ups.0.refunded_micros") != 10_000_000 {
			t.Fatalf("card_top_ups: %s", b.Raw)
		}
		if b.str("card_refunds.0.status") != "succeeded" || b.num("card_refunds.0.amount_micros") != 10_000_000 ||
			b.str("card_refunds.0.stripe_refund_id") == "" || len(b.list("refunds")) != 1 {
			t.Fatalf("refunds: %s", b.Raw)
		}
		// The refund the webhook then reports is Beaver's own: no second debit.
		payload, sig := h.Stripe.ChargeRefunded(top.PaymentIntentID, 0)
		h.deliver(payload, sig).want(200)
		h.wantBalance(u.ID, 15_000_000)
		// Nothing more than what is left can be refunded.
		h.do("POST", "/admin/refunds", h.Admin.Token, map[string]any{"top_up_id": top.ID, "amount_usd": "15.01"}).wantError(400, "invalid_request")
		// An Idempotency-Key repeats the same refund, not a second one.
		for i := 0; i < 2; i++ {
			h.do("POST", "/admin/refunds", h.Admin.Token, map[string]any{"top_up_id": top.ID, "amount_usd": "5"},
				withHeader("Idempotency-Key", "same")).want(202)
		}
		h.wantBalance(u.ID, 10_000_000)
		// Not an admin: 403.
		h.do("POST", "/admin/refunds", u.Token, map[string]any{"top_up_id": top.ID, "amount_usd": "1"}).want(403)
	})
}

func TestRefundCappedByUnspentBalance(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newBillHarness(t, dialect)
		u := h.newUser()
		top := h.paidTopUp(u, "25")
		h.spend(u.ID, 20_000_000, "spend:1")
		h.do("POST", "/admin/refunds", h.Admin.Token, map[string]any{"top_up_id": top.ID, "amount_usd": "10"}).wantError(402, "insufficient_balance")
		// The workflow checks again (the API's check can race with spending).
		res, err := runRefund(h.Acts, "refund:"+top.ID+":direct", workflows.RefundInput{TopUpID: top.ID, AmountMicros: 10_000_000})
		if err != nil || res.Status != workflows.RefundRejected {
			t.Fatalf("res %+v err %v", res, err)
		}
		if n := len(h.Stripe.RequestsTo("POST", "/v1/refunds")); n != 0 {
			t.Fatalf("stripe was asked to refund %d times", n)
		}
		h.wantBalance(u.ID, 5_000_000)
		// Up to the unspent balance is fine.
		h.do("POST", "/admin/refunds", h.Admin.Token, map[string]any{"top_up_id": top.ID, "amount_usd": "5"}).want(202)
		h.wantBalance(u.ID, 0)
	})
}

func TestRefundRefusedByStripeIsCreditedBack(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newBillHarness(t, dialect)
		u := h.newUser()
		top := h.paidTopUp(u, "25")
		h.Stripe.FailNext("POST", "/v1/refunds", 400, "invalid_request_error", "charge_disputed", "This charge is disputed.")
		h.do("POST", "/admin/refunds", h.Admin.Token, map[string]any{"top_up_id": top.ID, "amount_usd": "10"}).want(202)
		h.wantBalance(u.ID, 25_000_000)
		var rf activities.RefundRow
		if err := h.DB.Where("top_up_id = ?", top.ID).Take(&rf).Error; err != nil || rf.Status != "failed" {
			t.Fatalf("refund %+v err %v", rf, err)
		}
		if n := h.scalar("SELECT COUNT(*) FROM ledger_entries WHERE account_id = ? AND type IN ('refund', 'adjustment')", u.ID); n != 2 {
			t.Fatalf("refund + reversal entries = %d", n)
		}
		// The failed refund does not count against the refundable amount.
		h.do("POST", "/admin/refunds", h.Admin.Token, map[string]any{"top_up_id": top.ID, "amount_usd": "25"}).want(202)
		h.wantBalance(u.ID, 0)
	})
}

func TestDashboardRefundReconciledOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newBillHarness(t, dialect)
		u := h.newUser()
		top := h.paidTopUp(u, "25")
		payload, sig := h.Stripe.ChargeRefunded(top.PaymentIntentID, 500) // 5 USD in the Dashboard
		h.deliver(payload, sig).want(200)
		h.deliver(payload, sig).want(200)
		h.wantBalance(u.ID, 20_000_000)
		// Another event reporting the same cumulative amount changes nothing,
		// even with the event log lost.
		p2, s2 := h.Stripe.ChargeRefunded(top.PaymentIntentID, 0)
		h.deliver(p2, s2).want(200)
		if err := h.DB.Exec("DELETE FROM stripe_events").Error; err != nil {
			t.Fatal(err)
		}
		h.deliver(payload, sig).want(200)
		h.wantBalance(u.ID, 20_000_000)
		// More than is unspent: debit what is left, record the shortfall.
		h.spend(u.ID, 18_000_000, "spend:1")
		p3, s3 := h.Stripe.ChargeRefunded(top.PaymentIntentID, 1000) // cumulative 15 USD
		h.deliver(p3, s3).want(200)
		h.wantBalance(u.ID, 0)
		if got := h.scalar("SELECT COALESCE(SUM(shortfall_micros), 0) FROM refunds WHERE top_up_id = ?", top.ID); got != 8_000_000 {
			t.Fatalf("shortfall = %d", got)
		}
		if got := h.scalar("SELECT refunded_micros FROM top_ups WHERE id = ?", top.ID); got != 15_000_000 {
			t.Fatalf("refunded_micros = %d", got)
		}
		// Only 10 USD is left to refund through Beaver, and none is unspent.
		h.do("POST", "/admin/refunds", h.Admin.Token, map[string]any{"top_up_id": top.ID, "amount_usd": "10.01"}).wantError(400, "invalid_request")
	})
}

func TestDisputeFlagsAccountAndNotifiesAdminOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newBillHarness(t, dialect)
		u := h.newUser()
		top := h.paidTopUp(u, "25")
		payload, sig := h.Stripe.DisputeCreated(top.PaymentIntentID, "fraudulent")
		h.deliver(payload, sig).want(200)
		h.deliver(payload, sig).want(200)
		if err := h.DB.Exec("DELETE FROM stripe_events").Error; err != nil {
			t.Fatal(err)
		}
		h.deliver(payload, sig).want(200)
		if h.scalar("SELECT COUNT(*) FROM accounts WHERE id = ? AND flagged = ?", u.ID, true) != 1 {
			t.Fatal("account not flagged")
		}
		if n := len(h.Mail.To(h.Cfg.AdminEmail)); n != 1 {
			t.Fatalf("admin emails: %d", n)
		}
		if h.scalar("SELECT COUNT(*) FROM disputes WHERE account_id = ?", u.ID) != 1 {
			t.Fatal("dispute not recorded once")
		}
	})
}

func TestAutoRechargeSettings(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newBillHarness(t, dialect)
		u := h.newUser()
		r := h.do("GET", "/account/auto-recharge", u.Token, nil).want(200)
		if r.get("enabled") != false || r.get("card") != nil {
			t.Fatalf("default: %s", r.Raw)
		}
		h.do("PUT", "/account/auto-recharge", u.Token, map[string]any{"enabled": true, "threshold_usd": "5", "amount_usd": "20"}).wantError(400, "invalid_request")
		s := h.do("POST", "/account/auto-recharge/setup", u.Token, nil).want(200)
		if s.str("checkout_url") == "" || s.str("session_id") == "" {
			t.Fatalf("setup: %s", s.Raw)
		}
		payload, sig := h.Stripe.CompleteSetupCheckout(s.str("session_id"), "pm_card_visa")
		h.deliver(payload, sig).want(200)
		r = h.do("GET", "/account/auto-recharge", u.Token, nil).want(200)
		if r.str("card.payment_method_id") != "pm_card_visa" {
			t.Fatalf("card not saved: %s", r.Raw)
		}
		h.do("PUT", "/account/auto-recharge", u.Token, map[string]any{"enabled": true, "threshold_usd": "5", "amount_usd": "1"}).wantError(400, "invalid_request")
		h.do("PUT", "/account/auto-recharge", u.Token, map[string]any{"enabled": true, "threshold_usd": "-1", "amount_usd": "20"}).wantError(400, "invalid_request")
		r = h.do("PUT", "/account/auto-recharge", u.Token, map[string]any{"enabled": true, "threshold_usd": 5, "amount_usd": "20"}).want(200)
		if r.num("threshold_micros") != 5_000_000 || r.num("amount_micros") != 20_000_000 || r.get("enabled") != true {
			t.Fatalf("put: %s", r.Raw)
		}
		r = h.do("PUT", "/account/auto-recharge", u.Token, map[string]any{"enabled": false}).want(200)
		if r.get("enabled") != false || r.num("amount_micros") != 20_000_000 {
			t.Fatalf("disable keeps amounts: %s", r.Raw)
		}
		// An API key may read but not change it.
		_, key := h.createKey(u, map[string]any{"name": "k"})
		h.do("GET", "/account/auto-recharge", key, nil).want(200)
		h.do("PUT", "/account/auto-recharge", key, map[string]any{"enabled": false}).want(403)
	})
}

func runAutoRecharge(t *testing.T, acts *activities.PaymentActivities, accountID, runID string) workflows.AutoRechargeResult {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
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

func (h *billHarness) saveCard(u *user, pm string) {
	h.t.Helper()
	s := h.do("POST", "/account/auto-recharge/setup", u.Token, nil).want(200)
	payload, sig := h.Stripe.CompleteSetupCheckout(s.str("session_id"), pm)
	h.deliver(payload, sig).want(200)
	h.do("PUT", "/account/auto-recharge", u.Token, map[string]any{"enabled": true, "threshold_usd": "5", "amount_usd": "20"}).want(200)
}

func TestAutoRechargeChargesSavedCard(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newBillHarness(t, dialect)
		u := h.newUser()
		h.saveCard(u, "pm_card_visa")
		res := runAutoRecharge(t, h.Acts, u.ID, "")
		if res.Status != workflows.AutoRechargeCharged || res.AmountMicros != 20_000_000 {
			t.Fatalf("res %+v", res)
		}
		h.wantBalance(u.ID, 20_000_000)
		if h.scalar("SELECT COUNT(*) FROM ledger_entries WHERE reference = ?", "stripe:pi:"+res.PaymentIntentID) != 1 {
			t.Fatal("no stripe:pi credit")
		}
		// Above the threshold now: nothing happens.
		if res := runAutoRecharge(t, h.Acts, u.ID, ":2"); res.Status != workflows.AutoRechargeSkipped {
			t.Fatalf("res %+v", res)
		}
		b := h.do("GET", "/account/billing", u.Token, nil).want(200)
		if len(b.list("card_top_ups")) != 1 {
			t.Fatalf("billing: %s", b.Raw)
		}
	})
}

func TestAutoRechargeDisabledAfterDeclines(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newBillHarness(t, dialect)
		u := h.newUser()
		h.saveCard(u, "pm_card_chargeDeclined")
		for i, want := range []bool{false, false, true} {
			res := runAutoRecharge(t, h.Acts, u.ID, ":"+string(rune('a'+i)))
			if res.Status != workflows.AutoRechargeDeclined || res.Disabled != want || res.ConsecutiveFailures != int64(i+1) {
				t.Fatalf("run %d: %+v", i, res)
			}
		}
		r := h.do("GET", "/account/auto-recharge", u.Token, nil).want(200)
		if r.get("enabled") != false || r.str("disabled_reason") == "" {
			t.Fatalf("not disabled: %s", r.Raw)
		}
		if n := len(h.Mail.To(u.Email)); n < 3 {
			t.Fatalf("decline emails: %d", n)
		}
		h.wantBalance(u.ID, 0)
		// Counting is idempotent per attempt.
		out, err := h.Acts.RecordAutoRechargeFailure(context.Background(), activities.RecordAutoRechargeFailureInput{
			AccountID: u.ID, AttemptKey: "k1", Code: "card_declined"})
		out2, err2 := h.Acts.RecordAutoRechargeFailure(context.Background(), activities.RecordAutoRechargeFailureInput{
			AccountID: u.ID, AttemptKey: "k1", Code: "card_declined"})
		if err != nil || err2 != nil || out.ConsecutiveFailures != out2.ConsecutiveFailures {
			t.Fatalf("%+v %+v %v %v", out, out2, err, err2)
		}
	})
}

func TestAutoRechargeAuthenticationRequiredDisablesAtOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newBillHarness(t, dialect)
		u := h.newUser()
		h.saveCard(u, "pm_card_authenticationRequired")
		res := runAutoRecharge(t, h.Acts, u.ID, "")
		if res.Status != workflows.AutoRechargeDeclined || !res.Disabled {
			t.Fatalf("res %+v", res)
		}
		h.wantBalance(u.ID, 0)
	})
}

func TestDashboardRefundConcurrentDeliveries(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newBillHarness(t, dialect)
		u := h.newUser()
		top := h.paidTopUp(u, "25")
		payload, sig := h.Stripe.ChargeRefunded(top.PaymentIntentID, 700)
		p2, s2 := h.Stripe.ChargeRefunded(top.PaymentIntentID, 0) // same cumulative, another event
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				pl, sg := payload, sig
				if i%2 == 1 {
					pl, sg = p2, s2
				}
				r := h.do("POST", "/webhooks/stripe", "", pl, withHeader("Stripe-Signature", sg))
				if r.Status != 200 && r.Status != 503 {
					errs <- errors.New(string(r.Raw))
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		h.wantBalance(u.ID, 18_000_000)
		if n := h.scalar("SELECT COUNT(*) FROM refunds WHERE top_up_id = ?", top.ID); n != 1 {
			t.Fatalf("refund rows = %d", n)
		}
	})
}
