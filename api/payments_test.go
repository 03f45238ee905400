package api_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/api"
	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/internal/payments"
	"github.com/beaver-gateway/beaver/internal/payments/fakestripe"
	"github.com/beaver-gateway/beaver/models"
	"github.com/beaver-gateway/beaver/workflows"
)

const testWebhookSecret = "whsec_test_beaver"

// fakeTopUps is an in-process TopUpStarter with Temporal's id semantics:
// one settlement per workflow id; starting (or signalling) an open one
// re-runs the real TopUpSettlementWorkflow with the real activities (as the
// running workflow would re-check on a signal), a closed one is "already
// started" (success). down makes it fail like an unreachable Temporal.
type fakeTopUps struct {
	acts   *activities.PaymentActivities
	down   atomic.Bool
	mu     sync.Mutex
	closed map[string]workflows.TopUpSettlementResult
	runs   atomic.Int64
}

func (f *fakeTopUps) StartTopUpSettlement(ctx context.Context, in workflows.TopUpSettlementInput) error {
	if f.down.Load() {
		return errors.New("temporal: connection refused")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := workflows.TopUpWorkflowID(in.SessionID)
	if _, ok := f.closed[id]; ok {
		return nil
	}
	f.runs.Add(1)
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
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
		f.closed[id] = res
	}
	return nil
}

type payHarness struct {
	*harness
	Stripe *fakestripe.Server
	TopUps *fakeTopUps
}

func newPayHarness(t *testing.T, dialect string, cfg func(*config.Config)) *payHarness {
	t.Helper()
	fs := fakestripe.New(testWebhookSecret)
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	ph := &payHarness{Stripe: fs, TopUps: &fakeTopUps{closed: map[string]workflows.TopUpSettlementResult{}}}
	ph.harness = newHarness(t, dialect, harnessOpts{Config: cfg, Deps: func(t *testing.T, h *harness, d *api.Deps) {
		pc, err := payments.New(payments.Config{SecretKey: "sk_test_beaver", WebhookSecret: testWebhookSecret, APIBase: srv.URL})
		if err != nil {
			t.Fatalf("payments: %v", err)
		}
		d.Payments = pc
		ph.TopUps.acts = &activities.PaymentActivities{DB: h.DB, Ledger: h.Ledger, Payments: pc, Mailer: h.Mail,
			PublicURL: testPublicURL, Log: h.Log}
		d.TopUps = ph.TopUps
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

// wantCredited checks balance == sum(ledger) == want and the number of
// topup entries.
func (h *payHarness) wantCredited(accountID string, wantMicros int64, wantTopUps int) {
	h.t.Helper()
	var acct models.Account
	if err := h.DB.Where("id = ?", accountID).Take(&acct).Error; err != nil {
		h.t.Fatal(err)
	}
	var sum int64
	if err := h.DB.Raw("SELECT COALESCE(SUM(amount_micros), 0) FROM ledger_entries WHERE account_id = ?", accountID).Scan(&sum).Error; err != nil {
		h.t.Fatal(err)
	}
	var n int64
	if err := h.DB.Model(&models.LedgerEntry{}).Where("account_id = ? AND type = ?", accountID, models.EntryTopUp).Count(&n).Error; err != nil {
		h.t.Fatal(err)
	}
	if acct.BalanceMicros != sum || sum != wantMicros || n != int64(wantTopUps) {
		h.t.Fatalf("balance %d, ledger sum %d, topup entries %d; want %d and %d entries", acct.BalanceMicros, sum, n, wantMicros, wantTopUps)
	}
}

func (h *payHarness) topUpRow(sessionID string) activities.TopUp {
	h.t.Helper()
	var row activities.TopUp
	if err := h.DB.Where("checkout_session_id = ?", sessionID).Take(&row).Error; err != nil {
		h.t.Fatalf("top_ups row for %s: %v", sessionID, err)
	}
	return row
}

func TestTopUpCheckout(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newPayHarness(t, dialect, nil)
		u := h.newUser()
		sid := h.checkout(u, "25")
		row := h.topUpRow(sid)
		if row.Status != "pending" || row.AccountID != u.ID || row.AmountMicros != 25_000_000 {
			t.Fatalf("row = %+v", row)
		}
		reqs := h.Stripe.RequestsTo("POST", "/v1/checkout/sessions")
		if len(reqs) != 1 {
			t.Fatalf("%d session requests", len(reqs))
		}
		f := reqs[0].Form
		if f.Get("client_reference_id") != u.ID || f.Get("metadata[account_id]") != u.ID ||
			f.Get("line_items[0][price_data][unit_amount]") != "2500" {
			t.Fatalf("form = %v", f)
		}

		// Idempotency-Key: the same key returns the same session.
		r1 := h.do("POST", "/account/top-up/checkout", u.Token, map[string]any{"amount_usd": "10.50"},
			withHeader("Idempotency-Key", "k-1")).want(200)
		r2 := h.do("POST", "/account/top-up/checkout", u.Token, map[string]any{"amount_usd": "10.50"},
			withHeader("Idempotency-Key", "k-1")).want(200)
		if r1.str("session_id") != r2.str("session_id") {
			t.Fatalf("same key, sessions %s and %s", r1.str("session_id"), r2.str("session_id"))
		}
		if k := h.Stripe.RequestsTo("POST", "/v1/checkout/sessions")[1].IdempotencyKey; k != "topup-checkout:"+u.ID+":k-1" {
			t.Fatalf("idempotency key %q", k)
		}
		// Another user with the same key gets their own session.
		u2 := h.newUser()
		r3 := h.do("POST", "/account/top-up/checkout", u2.Token, map[string]any{"amount_usd": "10.50"},
			withHeader("Idempotency-Key", "k-1")).want(200)
		if r3.str("session_id") == r1.str("session_id") {
			t.Fatal("two accounts share a session")
		}

		for _, bad := range []any{"4.99", "10000.01", "5.001", "0", "-5", nil} {
			h.do("POST", "/account/top-up/checkout", u.Token, map[string]any{"amount_usd": bad}).wantError(400, "invalid_request")
		}
		h.do("POST", "/account/top-up/checkout", u.Token, map[string]any{"amount_usd": "5"}).want(200)
		h.do("POST", "/account/top-up/checkout", u.Token, map[string]any{"amount_usd": 10000}).want(200)
		// An API key cannot start a checkout (session only).
		_, key := h.createKey(u, nil)
		h.do("POST", "/account/top-up/checkout", key, map[string]any{"amount_usd": "25"}).want(401, 403)
	})
}

func TestTopUpCheckoutDisabledAndUnverified(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		h.do("POST", "/account/top-up/checkout", u.Token, map[string]any{"amount_usd": "25"}).wantError(503, "service_unavailable")
		h.do("POST", "/webhooks/stripe", "", []byte(`{}`), withHeader("Stripe-Signature", "t=1,v1=00")).
			wantError(503, "service_unavailable")

		ph := newPayHarness(t, dialect, func(c *config.Config) { c.RequireVerifiedEmail = true })
		u2 := ph.newUser()
		ph.do("POST", "/account/top-up/checkout", u2.Token, map[string]any{"amount_usd": "25"}).wantError(403, "email_not_verified")
	})
}

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
		if h.TopUps.runs.Load() != 0 {
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
				if _, err := h.TopUps.acts.CreditTopUp(context.Background(), activities.CreditTopUpInput{
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
		h.TopUps.down.Store(true)
		h.deliver(payload, sig).wantError(503, "service_unavailable")
		h.deliver(payload, sig).wantError(503, "service_unavailable")
		var n int64
		if err := h.DB.Table("stripe_events").Count(&n).Error; err != nil || n != 0 {
			t.Fatalf("stripe_events rows %d err %v; want none after 503", n, err)
		}
		h.wantCredited(u.ID, 0, 0)

		h.TopUps.down.Store(false)
		h.deliver(payload, sig).want(200)
		h.wantCredited(u.ID, 25_000_000, 1)
		h.deliver(payload, sig).want(200)
		h.wantCredited(u.ID, 25_000_000, 1)
	})
}
