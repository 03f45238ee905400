package api_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/beaver-gateway/beaver/models"
	"github.com/beaver-gateway/beaver/workflows"
)

func TestBillingListsCardTopUpsAndRefunds(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newPayHarness(t, dialect, nil)
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
		h := newPayHarness(t, dialect, nil)
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
		h := newPayHarness(t, dialect, nil)
		u := h.newUser()
		top := h.paidTopUp(u, "25")
		h.Stripe.FailNext("POST", "/v1/refunds", 400, "invalid_request_error", "charge_disputed", "This charge is disputed.")
		h.do("POST", "/admin/refunds", h.Admin.Token, map[string]any{"top_up_id": top.ID, "amount_usd": "10"}).want(202)
		h.wantBalance(u.ID, 25_000_000)
		var rf models.Refund
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
		h := newPayHarness(t, dialect, nil)
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

func TestDashboardRefundConcurrentDeliveries(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newPayHarness(t, dialect, nil)
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
