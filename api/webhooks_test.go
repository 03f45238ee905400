package api_test

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/activities"
	fakestripe "github.com/beaver-gateway/beaver/internal/fakes/stripe"
	"github.com/beaver-gateway/beaver/models"
)

func TestStripeWebhookSignature(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newPayHarness(t, dialect, nil)
		u := h.newUser()
		sid := h.checkout(u, "25")
		payload, sig := h.Stripe.CompleteCheckout(sid, true)

		tampered := append([]byte(nil), payload...)
		tampered[len(tampered)-2] = ' '
		h.deliver(tampered, sig).wantError(400, "invalid_request")
		h.deliver(payload, "").wantError(400, "invalid_request")
		h.deliver(payload, h.Stripe.Sign(payload, time.Now().Add(-6*time.Minute))).wantError(400, "invalid_request")
		h.deliver(payload, h.Stripe.Sign(payload, time.Now().Add(6*time.Minute))).wantError(400, "invalid_request")
		other := fakestripe.New("whsec_someone_else")
		h.deliver(payload, other.Sign(payload, time.Now())).wantError(400, "invalid_request")
		h.wantCredited(u.ID, 0, 0)
		if h.Workflows.runs.Load() != 0 {
			t.Fatal("a refused event started a settlement")
		}

		// A slightly old but valid signature is accepted.
		h.deliver(payload, h.Stripe.Sign(payload, time.Now().Add(-4*time.Minute))).want(200)
		h.wantCredited(u.ID, 25_000_000, 1)
	})
}

func TestStripeWebhookCreditsOnceOnDuplicates(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newPayHarness(t, dialect, nil)
		u := h.newUser()
		sid := h.checkout(u, "25")
		payload, sig := h.Stripe.CompleteCheckout(sid, true)
		h.deliver(payload, sig).want(200)
		r := h.deliver(payload, sig).want(200)
		if r.get("duplicate") != true {
			t.Fatalf("second delivery not reported as duplicate: %s", r.Raw)
		}
		h.wantCredited(u.ID, 25_000_000, 1)
		row := h.topUpRow(sid)
		if row.Status != "paid" || row.LedgerEntryID == "" || row.PaymentIntentID == "" || row.ReceiptURL == "" {
			t.Fatalf("row = %+v", row)
		}
		var entry models.LedgerEntry
		if err := h.DB.Where("id = ?", row.LedgerEntryID).Take(&entry).Error; err != nil || entry.Reference != "stripe:checkout:"+sid {
			t.Fatalf("entry %+v err %v", entry, err)
		}
		if n := len(h.Mail.To(u.Email)); n < 1 {
			t.Fatalf("receipt emails: %d", n)
		}
		h.do("GET", "/account/balance", u.Token, nil).want(200)
	})
}

func TestStripeWebhookConcurrentDeliveries(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newPayHarness(t, dialect, nil)
		u := h.newUser()
		sid := h.checkout(u, "42.42")
		payload, sig := h.Stripe.CompleteCheckout(sid, true)
		var wg sync.WaitGroup
		codes := make([]int, 20)
		for i := range codes {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				req, _ := http.NewRequest("POST", h.URL+"/webhooks/stripe", bytes.NewReader(payload))
				req.Header.Set("Stripe-Signature", sig)
				res, err := h.Client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				res.Body.Close()
				codes[i] = res.StatusCode
			}(i)
		}
		wg.Wait()
		for i, c := range codes {
			if c != 200 {
				t.Fatalf("delivery %d: status %d", i, c)
			}
		}
		h.wantCredited(u.ID, 42_420_000, 1)

		// The activity itself is safe under concurrency too.
		var wg2 sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg2.Add(1)
			go func() {
				defer wg2.Done()
				if _, err := h.Acts.CreditTopUp(context.Background(), activities.CreditTopUpInput{
					SessionID: sid, AccountID: u.ID, AmountMicros: 42_420_000}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg2.Wait()
		h.wantCredited(u.ID, 42_420_000, 1)
	})
}

func TestStripeWebhookAsyncPayments(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newPayHarness(t, dialect, nil)
		u := h.newUser()

		// Out of order: async_payment_succeeded arrives before completed.
		sid := h.checkout(u, "30")
		completed, csig := h.Stripe.CompleteCheckout(sid, false)
		succeeded, ssig := h.Stripe.AsyncPaymentSucceeded(sid)
		h.deliver(succeeded, ssig).want(200)
		h.wantCredited(u.ID, 30_000_000, 1)
		h.deliver(completed, csig).want(200)
		h.wantCredited(u.ID, 30_000_000, 1)

		// In order, unpaid first: nothing until the payment succeeds.
		sid2 := h.checkout(u, "20")
		completed, csig = h.Stripe.CompleteCheckout(sid2, false)
		h.deliver(completed, csig).want(200)
		h.wantCredited(u.ID, 30_000_000, 1)
		if row := h.topUpRow(sid2); row.Status != "pending" {
			t.Fatalf("unpaid row status %s", row.Status)
		}
		succeeded, ssig = h.Stripe.AsyncPaymentSucceeded(sid2)
		h.deliver(succeeded, ssig).want(200)
		h.wantCredited(u.ID, 50_000_000, 2)

		// Failed delayed payment: marked failed, never credited.
		sid3 := h.checkout(u, "15")
		completed, csig = h.Stripe.CompleteCheckout(sid3, false)
		h.deliver(completed, csig).want(200)
		failed, fsig := h.Stripe.AsyncPaymentFailed(sid3)
		h.deliver(failed, fsig).want(200)
		h.wantCredited(u.ID, 50_000_000, 2)
		if row := h.topUpRow(sid3); row.Status != "failed" {
			t.Fatalf("failed row status %s", row.Status)
		}

		// An abandoned session expires: the pending row says so.
		sid4 := h.checkout(u, "12")
		expired, esig := h.Stripe.ExpireCheckout(sid4)
		h.deliver(expired, esig).want(200)
		if row := h.topUpRow(sid4); row.Status != "expired" {
			t.Fatalf("expired row status %s", row.Status)
		}
		h.wantCredited(u.ID, 50_000_000, 2)

		// Event types we do not handle: 200, nothing happens.
		ignored, isig := h.Stripe.SignedEvent("customer.created", map[string]any{"id": "cus_x", "object": "customer"})
		h.deliver(ignored, isig).want(200)
	})
}

func TestStripeWebhookTemporalDown(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newPayHarness(t, dialect, nil)
		u := h.newUser()
		sid := h.checkout(u, "25")
		payload, sig := h.Stripe.CompleteCheckout(sid, true)
		h.Workflows.down.Store(true)
		h.deliver(payload, sig).wantError(503, "service_unavailable")
		h.deliver(payload, sig).wantError(503, "service_unavailable")
		var n int64
		if err := h.DB.Table("stripe_events").Count(&n).Error; err != nil || n != 0 {
			t.Fatalf("stripe_events rows %d err %v; want none after 503", n, err)
		}
		h.wantCredited(u.ID, 0, 0)

		h.Workflows.down.Store(false)
		h.deliver(payload, sig).want(200)
		h.wantCredited(u.ID, 25_000_000, 1)
		h.deliver(payload, sig).want(200)
		h.wantCredited(u.ID, 25_000_000, 1)
	})
}

func TestDisputeFlagsAccountAndNotifiesAdminOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newPayHarness(t, dialect, nil)
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
