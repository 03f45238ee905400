package stripe_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	fakestripe "github.com/beaver-gateway/beaver/internal/fakes/stripe"
	"github.com/beaver-gateway/beaver/internal/payments/stripe"
	stripego "github.com/stripe/stripe-go/v82"
)

const (
	testKey     = "sk_test_beaver_unit"
	testWHSec   = "whsec_beaver_unit"
	successURL  = "https://beaver.test/billing/done?session_id={CHECKOUT_SESSION_ID}"
	cancelURL   = "https://beaver.test/billing?cancelled=1"
	usd         = int64(1_000_000)
	testAccount = "acc_123"
)

func newTestClient(t *testing.T) (*stripe.Client, *fakestripe.Server) {
	t.Helper()
	fs := fakestripe.New(testWHSec)
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	c, err := stripe.New(stripe.Config{
		SecretKey: testKey, WebhookSecret: testWHSec, APIBase: srv.URL,
		SuccessURL: successURL, CancelURL: cancelURL, HTTPClient: srv.Client(),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, fs
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func onlyRequest(t *testing.T, fs *fakestripe.Server, method, path string) fakestripe.Request {
	t.Helper()
	rs := fs.RequestsTo(method, path)
	if len(rs) != 1 {
		t.Fatalf("%s %s: got %d requests, want 1", method, path, len(rs))
	}
	return rs[0]
}

func wantForm(t *testing.T, r fakestripe.Request, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := r.Form.Get(k); got != v {
			t.Errorf("%s %s: form %s = %q, want %q", r.Method, r.Path, k, got, v)
		}
	}
}

func noForm(t *testing.T, r fakestripe.Request, prefixes ...string) {
	t.Helper()
	for k := range r.Form {
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) {
				t.Errorf("%s %s: unexpected form key %s", r.Method, r.Path, k)
			}
		}
	}
}

func TestAPIVersionFamily(t *testing.T) {
	if stripe.APIVersionFamily != "2025-08-27.basil" || stripego.APIVersion != stripe.APIVersionFamily {
		t.Fatalf("APIVersionFamily = %q, stripego.APIVersion = %q; the contract pins 2025-08-27.basil", stripe.APIVersionFamily, stripego.APIVersion)
	}
}

func TestNewConfig(t *testing.T) {
	c, err := stripe.New(stripe.Config{})
	if !errors.Is(err, stripe.ErrDisabled) || c != nil {
		t.Fatalf("New without key = %v, %v; want nil, ErrDisabled", c, err)
	}
	if c.Enabled() {
		t.Fatal("nil client reports enabled")
	}
	if _, err := c.CreateTopUpCheckout(context.Background(), stripe.TopUpCheckout{AccountID: "a", AmountMicros: 10 * usd}); !errors.Is(err, stripe.ErrDisabled) {
		t.Fatalf("nil client CreateTopUpCheckout err = %v, want ErrDisabled", err)
	}
	if _, err := c.ParseWebhook([]byte("{}"), "t=1,v1=00"); !errors.Is(err, stripe.ErrWebhookNotConfigured) {
		t.Fatalf("nil client ParseWebhook err = %v", err)
	}

	for _, base := range []string{"ftp://x", "http://", "http://127.0.0.1:1/stripe", "http://h/?q=1", "not a url"} {
		if _, err := stripe.New(stripe.Config{SecretKey: testKey, APIBase: base}); err == nil {
			t.Errorf("APIBase %q accepted", base)
		}
	}
	for _, base := range []string{"http://127.0.0.1:12111", "http://127.0.0.1:12111/", "https://api.example.test/v1"} {
		if _, err := stripe.New(stripe.Config{SecretKey: testKey, APIBase: base}); err != nil {
			t.Errorf("APIBase %q refused: %v", base, err)
		}
	}
	for _, b := range [][2]int64{{100_000, 0}, {20 * usd, 10 * usd}, {5_000_001, 0}} {
		if _, err := stripe.New(stripe.Config{SecretKey: testKey, MinTopUpMicros: b[0], MaxTopUpMicros: b[1]}); err == nil {
			t.Errorf("bounds %v accepted", b)
		}
	}
	c, err = stripe.New(stripe.Config{SecretKey: testKey})
	if err != nil || !c.Enabled() || c.WebhooksEnabled() {
		t.Fatalf("New(key only) = %v enabled=%v webhooks=%v", err, c.Enabled(), c.WebhooksEnabled())
	}
	if lo, hi := c.TopUpBounds(); lo != 5*usd || hi != 10_000*usd {
		t.Fatalf("default bounds = %d, %d", lo, hi)
	}

	cfg := stripe.Config{SecretKey: testKey, WebhookSecret: testWHSec}
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		if strings.Contains(s, testKey) || strings.Contains(s, testWHSec) {
			t.Errorf("secret leaked in %q", s)
		}
	}
}

func TestCentsMicros(t *testing.T) {
	if got := stripe.CentsToMicros(1234); got != 12_340_000 {
		t.Fatalf("CentsToMicros(1234) = %d", got)
	}
	for m, want := range map[int64]int64{0: 0, 10_000: 1, 25 * usd: 2500, -50_000: -5} {
		if got, err := stripe.MicrosToCents(m); err != nil || got != want {
			t.Errorf("MicrosToCents(%d) = %d, %v; want %d", m, got, err, want)
		}
	}
	for _, m := range []int64{1, 9_999, 12_345_678, -1} {
		if _, err := stripe.MicrosToCents(m); !errors.Is(err, stripe.ErrNotWholeCents) {
			t.Errorf("MicrosToCents(%d) err = %v, want ErrNotWholeCents", m, err)
		}
	}
}

func TestCreateTopUpCheckoutParams(t *testing.T) {
	c, fs := newTestClient(t)
	co, err := c.CreateTopUpCheckout(ctx(t), stripe.TopUpCheckout{
		AccountID: testAccount, Email: "user@example.com", AmountMicros: 25 * usd, IdempotencyKey: "topup-1",
	})
	if err != nil {
		t.Fatalf("CreateTopUpCheckout: %v", err)
	}
	if !strings.HasPrefix(co.ID, "cs_test_") || !strings.HasPrefix(co.URL, "https://checkout.stripe.com/") || co.ExpiresAt.IsZero() {
		t.Fatalf("checkout = %+v", co)
	}
	r := onlyRequest(t, fs, http.MethodPost, "/v1/checkout/sessions")
	if r.IdempotencyKey != "topup-1" {
		t.Errorf("Idempotency-Key = %q", r.IdempotencyKey)
	}
	if r.StripeVersion != stripe.APIVersionFamily {
		t.Errorf("Stripe-Version = %q", r.StripeVersion)
	}
	wantForm(t, r, map[string]string{
		"mode":                 "payment",
		"client_reference_id":  testAccount,
		"customer_email":       "user@example.com",
		"success_url":          successURL,
		"cancel_url":           cancelURL,
		"metadata[account_id]": testAccount, "metadata[amount_micros]": "25000000", "metadata[kind]": "topup",
		"payment_intent_data[metadata][account_id]":            testAccount,
		"payment_intent_data[metadata][amount_micros]":         "25000000",
		"payment_intent_data[metadata][kind]":                  "topup",
		"invoice_creation[enabled]":                            "true",
		"invoice_creation[invoice_data][metadata][account_id]": testAccount,
		"line_items[0][quantity]":                              "1",
		"line_items[0][price_data][currency]":                  "usd",
		"line_items[0][price_data][unit_amount]":               "2500",
		"line_items[0][price_data][product_data][name]":        "Beaver balance top-up",
		"adaptive_pricing[enabled]":                            "false",
	})
	noForm(t, r, "customer[", "line_items[1]")
	if r.Form.Has("customer") {
		t.Error("customer sent alongside customer_email")
	}

	// An existing Customer replaces customer_email (Stripe takes only one).
	co2, err := c.CreateTopUpCheckout(ctx(t), stripe.TopUpCheckout{
		AccountID: testAccount, Email: "user@example.com", CustomerID: mustCustomer(t, c, fs), AmountMicros: 5 * usd,
		SuccessURL: "https://beaver.test/other",
	})
	if err != nil {
		t.Fatalf("CreateTopUpCheckout with customer: %v", err)
	}
	rs := fs.RequestsTo(http.MethodPost, "/v1/checkout/sessions")
	last := rs[len(rs)-1]
	if last.Form.Get("customer") != co2.CustomerID || last.Form.Has("customer_email") {
		t.Errorf("customer=%q customer_email present=%v", last.Form.Get("customer"), last.Form.Has("customer_email"))
	}
	if last.Form.Get("success_url") != "https://beaver.test/other" || last.Form.Get("line_items[0][price_data][unit_amount]") != "500" {
		t.Errorf("override/amount wrong: %v", last.Form)
	}
	if last.IdempotencyKey == "" {
		t.Error("stripe-go should still send its own Idempotency-Key")
	}
}

// mustCustomer creates a Customer through a setup checkout.
func mustCustomer(t *testing.T, c *stripe.Client, fs *fakestripe.Server) string {
	t.Helper()
	co, err := c.CreateSetupCheckout(ctx(t), stripe.SetupCheckout{AccountID: testAccount, Email: "user@example.com"})
	if err != nil || co.CustomerID == "" {
		t.Fatalf("CreateSetupCheckout: %+v, %v", co, err)
	}
	return co.CustomerID
}

func TestCreateTopUpCheckoutIdempotency(t *testing.T) {
	c, fs := newTestClient(t)
	in := stripe.TopUpCheckout{AccountID: testAccount, AmountMicros: 42 * usd, IdempotencyKey: "same-key"}
	a, err := c.CreateTopUpCheckout(ctx(t), in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.CreateTopUpCheckout(ctx(t), in)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || a.URL != b.URL {
		t.Fatalf("same idempotency key gave sessions %s and %s", a.ID, b.ID)
	}
	if n := len(fs.RequestsTo(http.MethodPost, "/v1/checkout/sessions")); n != 2 {
		t.Fatalf("requests = %d", n)
	}

	in.AmountMicros = 43 * usd
	_, err = c.CreateTopUpCheckout(ctx(t), in)
	var apiErr *stripe.APIError
	if !errors.As(err, &apiErr) || apiErr.Type != "idempotency_error" || apiErr.Retryable {
		t.Fatalf("reused key with other params: err = %v", err)
	}
}

func TestCreateTopUpCheckoutValidation(t *testing.T) {
	c, fs := newTestClient(t)
	cases := []struct {
		name    string
		account string
		micros  int64
		ok      bool
	}{
		{"zero", testAccount, 0, false},
		{"negative", testAccount, -5 * usd, false},
		{"sub-cent", testAccount, 12_345_600, false},
		{"one micro over a cent", testAccount, 5*usd + 1, false},
		{"below min", testAccount, 4_990_000, false},
		{"above max", testAccount, 10_000*usd + 10_000, false},
		{"no account", "", 10 * usd, false},
		{"min", testAccount, 5 * usd, true},
		{"max", testAccount, 10_000 * usd, true},
		{"cents", testAccount, 12_340_000, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(fs.Requests())
			_, err := c.CreateTopUpCheckout(ctx(t), stripe.TopUpCheckout{AccountID: tc.account, AmountMicros: tc.micros})
			if tc.ok {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var ve *stripe.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want *ValidationError", err)
			}
			if len(fs.Requests()) != before {
				t.Fatal("invalid input reached Stripe")
			}
		})
	}
	// The bounds are configurable.
	srv := httptest.NewServer(fs)
	defer srv.Close()
	c2, err := stripe.New(stripe.Config{SecretKey: testKey, APIBase: srv.URL, MinTopUpMicros: 1 * usd, MaxTopUpMicros: 2 * usd})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.CreateTopUpCheckout(ctx(t), stripe.TopUpCheckout{AccountID: testAccount, AmountMicros: 1 * usd}); err != nil {
		t.Fatalf("1 USD with min 1: %v", err)
	}
	var ve *stripe.ValidationError
	if _, err := c2.CreateTopUpCheckout(ctx(t), stripe.TopUpCheckout{AccountID: testAccount, AmountMicros: 3 * usd}); !errors.As(err, &ve) ||
		!strings.Contains(ve.Message, "between 1 and 2 USD") {
		t.Fatalf("3 USD with max 2: %v", err)
	}
}

func TestTopUpCompletedFlow(t *testing.T) {
	c, fs := newTestClient(t)
	co, err := c.CreateTopUpCheckout(ctx(t), stripe.TopUpCheckout{AccountID: testAccount, Email: "u@example.com", AmountMicros: 25 * usd})
	if err != nil {
		t.Fatal(err)
	}
	open, err := c.GetCheckoutSession(ctx(t), co.ID)
	if err != nil {
		t.Fatal(err)
	}
	if open.Status != "open" || open.PaymentStatus != "unpaid" || open.PaymentIntentID != "" {
		t.Fatalf("open session = %+v", open)
	}

	payload, sig := fs.CompleteCheckout(co.ID, true)
	ev, err := c.ParseWebhook(payload, sig)
	if err != nil {
		t.Fatalf("ParseWebhook: %v", err)
	}
	if ev.Type != stripe.EventCheckoutSessionCompleted || ev.CheckoutSession == nil || !strings.HasPrefix(ev.ID, "evt_") ||
		ev.APIVersion != stripe.APIVersionFamily || ev.Created.IsZero() || len(ev.Object) == 0 {
		t.Fatalf("event = %+v", ev)
	}
	es := ev.CheckoutSession
	if es.ID != co.ID || es.AccountID != testAccount || es.AmountTotalMicros != 25*usd || es.Currency != "usd" ||
		es.PaymentStatus != "paid" || es.Status != "complete" || es.Mode != "payment" || es.Kind != "topup" ||
		es.RequestedAmountMicros != 25*usd || es.PaymentIntentID == "" || es.InvoiceID == "" || es.CustomerEmail != "u@example.com" {
		t.Fatalf("event session = %+v", es)
	}
	if es.InvoiceURL != "" || es.ReceiptURL != "" {
		t.Errorf("webhook objects are not expanded, yet URLs are set: %+v", es)
	}

	got, err := c.GetCheckoutSession(ctx(t), co.ID)
	if err != nil {
		t.Fatal(err)
	}
	r := fs.RequestsTo(http.MethodGet, "/v1/checkout/sessions/"+co.ID)
	wantForm(t, r[len(r)-1], map[string]string{"expand[0]": "invoice", "expand[1]": "setup_intent", "expand[2]": "payment_intent.latest_charge"})
	if got.PaymentIntentID != es.PaymentIntentID || got.InvoiceID != es.InvoiceID ||
		!strings.HasPrefix(got.InvoiceURL, "https://invoice.stripe.com/") || !strings.HasPrefix(got.ReceiptURL, "https://pay.stripe.com/receipts/") ||
		got.AmountTotalMicros != 25*usd || got.AccountID != testAccount {
		t.Fatalf("retrieved session = %+v", got)
	}

	_, err = c.GetCheckoutSession(ctx(t), "cs_test_nope")
	var apiErr *stripe.APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatus != 404 || apiErr.Code != "resource_missing" || apiErr.Retryable {
		t.Fatalf("unknown session err = %v", err)
	}
}

func TestAsyncPayment(t *testing.T) {
	c, fs := newTestClient(t)
	ids := make([]string, 2)
	for i := range ids {
		co, err := c.CreateTopUpCheckout(ctx(t), stripe.TopUpCheckout{AccountID: testAccount, AmountMicros: 10 * usd})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = co.ID
		ev, err := c.ParseWebhook(fs.CompleteCheckout(co.ID, false))
		if err != nil {
			t.Fatal(err)
		}
		if ev.CheckoutSession.Status != "complete" || ev.CheckoutSession.PaymentStatus != "unpaid" {
			t.Fatalf("delayed completion = %+v", ev.CheckoutSession)
		}
	}
	ev, err := c.ParseWebhook(fs.AsyncPaymentSucceeded(ids[0]))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != stripe.EventCheckoutSessionAsyncSucceeded || ev.CheckoutSession.PaymentStatus != "paid" || ev.CheckoutSession.AmountTotalMicros != 10*usd {
		t.Fatalf("async succeeded = %s %+v", ev.Type, ev.CheckoutSession)
	}
	ev, err = c.ParseWebhook(fs.AsyncPaymentFailed(ids[1]))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != stripe.EventCheckoutSessionAsyncFailed || ev.CheckoutSession.PaymentStatus != "unpaid" || ev.CheckoutSession.AccountID != testAccount {
		t.Fatalf("async failed = %s %+v", ev.Type, ev.CheckoutSession)
	}
}

func TestSetupCheckoutAndOffSessionCharge(t *testing.T) {
	c, fs := newTestClient(t)
	co, err := c.CreateSetupCheckout(ctx(t), stripe.SetupCheckout{AccountID: testAccount, Email: "u@example.com", IdempotencyKey: "setup-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(co.CustomerID, "cus_") || !strings.HasPrefix(co.ID, "cs_test_") || co.URL == "" {
		t.Fatalf("setup checkout = %+v", co)
	}
	cr := onlyRequest(t, fs, http.MethodPost, "/v1/customers")
	wantForm(t, cr, map[string]string{"email": "u@example.com", "metadata[account_id]": testAccount})
	if cr.IdempotencyKey != "setup-1/customer" {
		t.Errorf("customer Idempotency-Key = %q", cr.IdempotencyKey)
	}
	sr := onlyRequest(t, fs, http.MethodPost, "/v1/checkout/sessions")
	wantForm(t, sr, map[string]string{
		"mode": "setup", "customer": co.CustomerID, "client_reference_id": testAccount, "currency": "usd",
		"payment_method_types[0]": "card", "metadata[account_id]": testAccount, "metadata[kind]": "setup",
		"setup_intent_data[metadata][account_id]": testAccount, "success_url": successURL,
	})
	noForm(t, sr, "line_items", "invoice_creation", "payment_intent_data", "customer_email")
	if sr.IdempotencyKey != "setup-1" {
		t.Errorf("session Idempotency-Key = %q", sr.IdempotencyKey)
	}

	// A retried setup reuses the Customer.
	again, err := c.CreateSetupCheckout(ctx(t), stripe.SetupCheckout{AccountID: testAccount, Email: "u@example.com", IdempotencyKey: "setup-1"})
	if err != nil || again.CustomerID != co.CustomerID || again.ID != co.ID {
		t.Fatalf("retried setup = %+v, %v (first %+v)", again, err, co)
	}

	ev, err := c.ParseWebhook(fs.CompleteCheckout(co.ID, true))
	if err != nil {
		t.Fatal(err)
	}
	es := ev.CheckoutSession
	if es.Mode != "setup" || es.SetupIntentID == "" || es.CustomerID != co.CustomerID || es.AccountID != testAccount || es.AmountTotalMicros != 0 {
		t.Fatalf("setup completed = %+v", es)
	}
	pm, err := c.DefaultPaymentMethod(ctx(t), co.CustomerID, es.SetupIntentID)
	if err != nil || pm != "pm_card_visa" {
		t.Fatalf("DefaultPaymentMethod = %q, %v", pm, err)
	}
	if _, err := c.DefaultPaymentMethod(ctx(t), "cus_someone_else", es.SetupIntentID); err == nil {
		t.Fatal("DefaultPaymentMethod accepted another customer's SetupIntent")
	}
	got, err := c.GetCheckoutSession(ctx(t), co.ID)
	if err != nil || got.PaymentMethodID != "pm_card_visa" {
		t.Fatalf("GetCheckoutSession(setup) = %+v, %v", got, err)
	}

	res, err := c.ChargeOffSession(ctx(t), stripe.OffSessionCharge{
		AccountID: testAccount, CustomerID: co.CustomerID, PaymentMethodID: pm, AmountMicros: 20 * usd, IdempotencyKey: "recharge-1",
	})
	if err != nil {
		t.Fatalf("ChargeOffSession: %v", err)
	}
	if res.Status != "succeeded" || !strings.HasPrefix(res.PaymentIntentID, "pi_") || !strings.HasPrefix(res.ChargeID, "ch_") ||
		res.ReceiptURL == "" || res.AmountMicros != 20*usd {
		t.Fatalf("result = %+v", res)
	}
	pr := onlyRequest(t, fs, http.MethodPost, "/v1/payment_intents")
	wantForm(t, pr, map[string]string{
		"amount": "2000", "currency": "usd", "customer": co.CustomerID, "payment_method": pm,
		"off_session": "true", "confirm": "true", "metadata[account_id]": testAccount,
		"metadata[kind]": "auto_recharge", "metadata[amount_micros]": "20000000", "expand[0]": "latest_charge",
	})
	if pr.IdempotencyKey != "recharge-1" {
		t.Errorf("Idempotency-Key = %q", pr.IdempotencyKey)
	}
	// Same key: no second charge.
	res2, err := c.ChargeOffSession(ctx(t), stripe.OffSessionCharge{
		AccountID: testAccount, CustomerID: co.CustomerID, PaymentMethodID: pm, AmountMicros: 20 * usd, IdempotencyKey: "recharge-1",
	})
	if err != nil || res2.PaymentIntentID != res.PaymentIntentID {
		t.Fatalf("retried charge = %+v, %v", res2, err)
	}

	ev, err = c.ParseWebhook(fs.PaymentIntentEvent(res.PaymentIntentID))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != stripe.EventPaymentIntentSucceeded || ev.PaymentIntent == nil || ev.PaymentIntent.AccountID != testAccount ||
		ev.PaymentIntent.Kind != "auto_recharge" || ev.PaymentIntent.AmountReceivedMicros != 20*usd || ev.PaymentIntent.LatestChargeID != res.ChargeID {
		t.Fatalf("payment_intent.succeeded = %+v", ev.PaymentIntent)
	}
}

func TestOffSessionDeclines(t *testing.T) {
	c, fs := newTestClient(t)
	cus := mustCustomer(t, c, fs)
	cases := []struct {
		pm, code, decline string
		retryable         bool
	}{
		{"pm_card_chargeDeclined", "card_declined", "generic_decline", false},
		{"pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds", true},
		{"pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card", false},
		{"pm_card_authenticationRequired", "authentication_required", "authentication_required", false},
	}
	for _, tc := range cases {
		t.Run(tc.pm, func(t *testing.T) {
			res, err := c.ChargeOffSession(ctx(t), stripe.OffSessionCharge{
				AccountID: testAccount, CustomerID: cus, PaymentMethodID: tc.pm, AmountMicros: 10 * usd, IdempotencyKey: "k-" + tc.pm,
			})
			var d *stripe.DeclineError
			if !errors.As(err, &d) {
				t.Fatalf("err = %v, want *DeclineError", err)
			}
			if d.Code != tc.code || d.DeclineCode != tc.decline || d.Retryable != tc.retryable || d.Message == "" {
				t.Fatalf("decline = %+v", d)
			}
			if d.PaymentIntentID == "" || res.PaymentIntentID != d.PaymentIntentID || d.PaymentIntentStatus != "requires_payment_method" {
				t.Fatalf("decline lost the PaymentIntent: %+v / %+v", d, res)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error text leaks a client secret: %s", err)
			}
			ev, err := c.ParseWebhook(fs.PaymentIntentEvent(d.PaymentIntentID))
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type != stripe.EventPaymentIntentPaymentFailed || ev.PaymentIntent.LastErrorCode != tc.code || ev.PaymentIntent.LastDeclineCode != tc.decline {
				t.Fatalf("payment_failed event = %s %+v", ev.Type, ev.PaymentIntent)
			}
		})
	}

	var ve *stripe.ValidationError
	for _, in := range []stripe.OffSessionCharge{
		{CustomerID: cus, PaymentMethodID: "pm_card_visa", AmountMicros: 10 * usd},
		{AccountID: testAccount, PaymentMethodID: "pm_card_visa", AmountMicros: 10 * usd},
		{AccountID: testAccount, CustomerID: cus, AmountMicros: 10 * usd},
		{AccountID: testAccount, CustomerID: cus, PaymentMethodID: "pm_card_visa", AmountMicros: 10*usd + 5},
	} {
		if _, err := c.ChargeOffSession(ctx(t), in); !errors.As(err, &ve) {
			t.Errorf("ChargeOffSession(%+v) err = %v, want *ValidationError", in, err)
		}
	}
}

func paidTopUp(t *testing.T, c *stripe.Client, fs *fakestripe.Server, micros int64) string {
	t.Helper()
	co, err := c.CreateTopUpCheckout(ctx(t), stripe.TopUpCheckout{AccountID: testAccount, AmountMicros: micros})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := c.ParseWebhook(fs.CompleteCheckout(co.ID, true))
	if err != nil {
		t.Fatal(err)
	}
	return ev.CheckoutSession.PaymentIntentID
}

func TestRefund(t *testing.T) {
	c, fs := newTestClient(t)
	pi := paidTopUp(t, c, fs, 25*usd)

	r, err := c.Refund(ctx(t), stripe.RefundInput{PaymentIntentID: pi, AmountMicros: 10 * usd, IdempotencyKey: "refund-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.ID, "re_") || r.Status != "succeeded" || r.AmountMicros != 10*usd || r.PaymentIntentID != pi || r.ChargeID == "" {
		t.Fatalf("refund = %+v", r)
	}
	rr := onlyRequest(t, fs, http.MethodPost, "/v1/refunds")
	wantForm(t, rr, map[string]string{"payment_intent": pi, "amount": "1000"})
	if rr.IdempotencyKey != "refund-1" {
		t.Errorf("Idempotency-Key = %q", rr.IdempotencyKey)
	}

	_, err = c.Refund(ctx(t), stripe.RefundInput{PaymentIntentID: pi, AmountMicros: 20 * usd})
	var apiErr *stripe.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != "amount_too_large" || apiErr.HTTPStatus != 400 || apiErr.Retryable {
		t.Fatalf("over-refund err = %v", err)
	}

	rest, err := c.Refund(ctx(t), stripe.RefundInput{PaymentIntentID: pi}) // 0 = the remainder
	if err != nil || rest.AmountMicros != 15*usd {
		t.Fatalf("remainder refund = %+v, %v", rest, err)
	}
	if _, err := c.Refund(ctx(t), stripe.RefundInput{PaymentIntentID: pi, AmountMicros: 1 * usd}); !errors.As(err, &apiErr) || apiErr.Code != "charge_already_refunded" {
		t.Fatalf("refund of refunded charge err = %v", err)
	}

	ev, err := c.ParseWebhook(fs.ChargeRefunded(pi, 0))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != stripe.EventChargeRefunded || ev.Charge == nil || ev.Charge.PaymentIntentID != pi ||
		ev.Charge.AmountRefundedMicros != 25*usd || !ev.Charge.Refunded || ev.Charge.AmountMicros != 25*usd {
		t.Fatalf("charge.refunded = %+v", ev.Charge)
	}

	var ve *stripe.ValidationError
	for _, in := range []stripe.RefundInput{{AmountMicros: usd}, {PaymentIntentID: pi, AmountMicros: 1}, {PaymentIntentID: pi, AmountMicros: -usd}} {
		if _, err := c.Refund(ctx(t), in); !errors.As(err, &ve) {
			t.Errorf("Refund(%+v) err = %v, want *ValidationError", in, err)
		}
	}
}

func TestDashboardRefundAndDispute(t *testing.T) {
	c, fs := newTestClient(t)
	pi := paidTopUp(t, c, fs, 30*usd)
	ev, err := c.ParseWebhook(fs.ChargeRefunded(pi, 500)) // 5 USD refunded in the Dashboard
	if err != nil {
		t.Fatal(err)
	}
	if ev.Charge.AmountRefundedMicros != 5*usd || ev.Charge.Refunded {
		t.Fatalf("partial dashboard refund = %+v", ev.Charge)
	}

	ev, err = c.ParseWebhook(fs.DisputeCreated(pi, "fraudulent"))
	if err != nil {
		t.Fatal(err)
	}
	d := ev.Dispute
	if ev.Type != stripe.EventChargeDisputeCreated || d == nil || !strings.HasPrefix(d.ID, "dp_") || d.PaymentIntentID != pi ||
		d.ChargeID == "" || d.AmountMicros != 30*usd || d.Reason != "fraudulent" || d.Status != "needs_response" || d.Currency != "usd" {
		t.Fatalf("dispute = %+v", d)
	}
	var apiErr *stripe.APIError
	if _, err := c.Refund(ctx(t), stripe.RefundInput{PaymentIntentID: pi}); !errors.As(err, &apiErr) || apiErr.Code != "charge_disputed" {
		t.Fatalf("refund of disputed charge err = %v", err)
	}
}

func TestParseWebhookSignature(t *testing.T) {
	c, fs := newTestClient(t)
	co, err := c.CreateTopUpCheckout(ctx(t), stripe.TopUpCheckout{AccountID: testAccount, AmountMicros: 10 * usd})
	if err != nil {
		t.Fatal(err)
	}
	payload, sig := fs.CompleteCheckout(co.ID, true)
	if _, err := c.ParseWebhook(payload, sig); err != nil {
		t.Fatalf("valid event refused: %v", err)
	}

	tampered := []byte(strings.Replace(string(payload), `"amount_total":1000`, `"amount_total":100000`, 1))
	if string(tampered) == string(payload) {
		t.Fatal("test did not tamper")
	}
	other := fakestripe.New("whsec_someone_else")
	now := time.Now()
	cases := map[string]struct {
		payload []byte
		header  string
	}{
		"tampered payload":       {tampered, sig},
		"wrong secret":           {payload, other.Sign(payload, now)},
		"stale (6 min)":          {payload, fs.Sign(payload, now.Add(-6*time.Minute))},
		"future (6 min)":         {payload, fs.Sign(payload, now.Add(6*time.Minute))},
		"missing header":         {payload, ""},
		"garbage header":         {payload, "nonsense"},
		"no v1 signature":        {payload, fmt.Sprintf("t=%d", now.Unix())},
		"signature of other ts":  {payload, strings.Replace(fs.Sign(payload, now), fmt.Sprintf("t=%d", now.Unix()), fmt.Sprintf("t=%d", now.Unix()-1), 1)},
		"empty payload, old sig": {nil, sig},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := c.ParseWebhook(tc.payload, tc.header); !errors.Is(err, stripe.ErrBadSignature) {
				t.Fatalf("err = %v, want ErrBadSignature", err)
			}
		})
	}
	for name, at := range map[string]time.Time{"4 min old": now.Add(-4 * time.Minute), "1 min ahead": now.Add(time.Minute)} {
		if _, err := c.ParseWebhook(payload, fs.Sign(payload, at)); err != nil {
			t.Errorf("%s refused: %v", name, err)
		}
	}
	// Stripe sends several v1 signatures while a secret is rolled.
	multi := other.Sign(payload, now) + "," + strings.SplitN(fs.Sign(payload, now), ",", 2)[1]
	if _, err := c.ParseWebhook(payload, multi); err != nil {
		t.Errorf("rolled-secret header refused: %v", err)
	}
}

func TestParseWebhookPayloadAndVersion(t *testing.T) {
	c, fs := newTestClient(t)
	sign := func(p string) ([]byte, string) { return []byte(p), fs.Sign([]byte(p), time.Now()) }

	for _, v := range []string{"2025-08-27.basil", "2025-10-29.basil"} {
		p, h := sign(`{"id":"evt_1","object":"event","api_version":"` + v + `","created":1700000000,"type":"customer.created","data":{"object":{"id":"cus_1","object":"customer"}}}`)
		ev, err := c.ParseWebhook(p, h)
		if err != nil {
			t.Fatalf("%s refused: %v", v, err)
		}
		if ev.Type != "customer.created" || ev.CheckoutSession != nil || ev.Charge != nil || string(ev.Object) != `{"id":"cus_1","object":"customer"}` ||
			!ev.Created.Equal(time.Unix(1700000000, 0)) {
			t.Fatalf("ignored-type event = %+v", ev)
		}
	}
	for _, v := range []string{"2024-06-20", "2025-09-30.clover", ""} {
		p, h := sign(`{"id":"evt_2","object":"event","api_version":"` + v + `","created":1,"type":"charge.refunded","data":{"object":{"id":"ch_1","object":"charge"}}}`)
		if _, err := c.ParseWebhook(p, h); !errors.Is(err, stripe.ErrAPIVersionMismatch) {
			t.Errorf("api_version %q: err = %v, want ErrAPIVersionMismatch", v, err)
		}
	}
	for name, p := range map[string]string{
		"not json":       `{"id":`,
		"no data":        `{"id":"evt_3","object":"event","api_version":"2025-08-27.basil","type":"x"}`,
		"bad object":     `{"id":"evt_4","object":"event","api_version":"2025-08-27.basil","type":"charge.refunded","data":{"object":{"object":"charge","amount":"lots"}}}`,
		"object is list": `{"id":"evt_5","object":"event","api_version":"2025-08-27.basil","type":"x","data":{"object":[1]}}`,
	} {
		pb, h := sign(p)
		if _, err := c.ParseWebhook(pb, h); !errors.Is(err, stripe.ErrBadPayload) {
			t.Errorf("%s: err = %v, want ErrBadPayload", name, err)
		}
	}

	noSecret, err := stripe.New(stripe.Config{SecretKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	p, h := sign(`{}`)
	if _, err := noSecret.ParseWebhook(p, h); !errors.Is(err, stripe.ErrWebhookNotConfigured) {
		t.Fatalf("no webhook secret: err = %v", err)
	}
}

func TestStripeErrorMapping(t *testing.T) {
	c, fs := newTestClient(t)
	fs.FailNext(http.MethodPost, "/v1/checkout/sessions", http.StatusTooManyRequests, "invalid_request_error", "rate_limit", "Too many requests")
	_, err := c.CreateTopUpCheckout(ctx(t), stripe.TopUpCheckout{AccountID: testAccount, AmountMicros: 10 * usd})
	var apiErr *stripe.APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatus != 429 || !apiErr.Retryable || apiErr.RequestID == "" ||
		!strings.Contains(err.Error(), "create top-up checkout session") {
		t.Fatalf("429 err = %v", err)
	}
	if strings.Contains(err.Error(), testKey) {
		t.Fatal("error leaks the secret key")
	}

	// stripe-go does not retry a JSON error answer (only 429 lock_timeout);
	// a 5xx is Retryable for the caller, and retrying with the same
	// idempotency key is safe.
	fs.FailNext(http.MethodPost, "/v1/refunds", http.StatusInternalServerError, "api_error", "", "boom")
	pi := paidTopUp(t, c, fs, 10*usd)
	in := stripe.RefundInput{PaymentIntentID: pi, IdempotencyKey: "r-retry"}
	if _, err := c.Refund(ctx(t), in); !errors.As(err, &apiErr) || !apiErr.Retryable || apiErr.HTTPStatus != 500 {
		t.Fatalf("500 err = %v", err)
	}
	if r, err := c.Refund(ctx(t), in); err != nil || r.AmountMicros != 10*usd {
		t.Fatalf("retried refund = %+v, %v", r, err)
	}
	rs := fs.RequestsTo(http.MethodPost, "/v1/refunds")
	if len(rs) != 2 || rs[0].IdempotencyKey != "r-retry" || rs[1].IdempotencyKey != "r-retry" {
		t.Fatalf("retry requests = %+v", rs)
	}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.GetCheckoutSession(cancelled, "cs_test_x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx err = %v", err)
	}

	bad, err := stripe.New(stripe.Config{SecretKey: "sk_test_x", APIBase: "http://127.0.0.1:1", HTTPClient: &http.Client{Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	shortCtx, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	if _, err := bad.GetCheckoutSession(shortCtx, "cs_test_x"); err == nil || errors.As(err, &apiErr) {
		t.Fatalf("unreachable Stripe err = %v, want a transport error", err)
	}
}
