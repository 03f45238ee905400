package api_test

import (
	"context"
	"testing"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/workflows"
)

func TestAutoRechargeSettings(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newPayHarness(t, dialect, nil)
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

func TestAutoRechargeChargesSavedCard(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newPayHarness(t, dialect, nil)
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
		h := newPayHarness(t, dialect, nil)
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
		h := newPayHarness(t, dialect, nil)
		u := h.newUser()
		h.saveCard(u, "pm_card_authenticationRequired")
		res := runAutoRecharge(t, h.Acts, u.ID, "")
		if res.Status != workflows.AutoRechargeDeclined || !res.Disabled {
			t.Fatalf("res %+v", res)
		}
		h.wantBalance(u.ID, 0)
	})
}
