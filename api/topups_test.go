package api_test

import (
	"testing"

	"github.com/beaver-gateway/beaver/internal/config"
)

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
