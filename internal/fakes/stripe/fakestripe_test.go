package stripe_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	fakestripe "github.com/beaver-gateway/beaver/internal/fakes/stripe"
	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"
)

type errBody struct {
	Error struct {
		Type          string         `json:"type"`
		Code          string         `json:"code"`
		DeclineCode   string         `json:"decline_code"`
		Message       string         `json:"message"`
		Param         string         `json:"param"`
		Charge        string         `json:"charge"`
		PaymentIntent map[string]any `json:"payment_intent"`
	} `json:"error"`
}

type harness struct {
	t   *testing.T
	fs  *fakestripe.Server
	srv *httptest.Server
}

func newHarness(t *testing.T) *harness {
	fs := fakestripe.New("whsec_fake")
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	return &harness{t: t, fs: fs, srv: srv}
}

// do sends a raw request; form goes in the body for POST, the query for GET.
func (h *harness) do(method, path string, form url.Values, hdr map[string]string) (int, http.Header, []byte) {
	h.t.Helper()
	var body io.Reader
	target := h.srv.URL + path
	if method == http.MethodGet {
		if len(form) > 0 {
			target += "?" + form.Encode()
		}
	} else {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer sk_test_fake")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return res.StatusCode, res.Header, b
}

func (h *harness) wantError(status int, b []byte, gotStatus int, typ, code, param string) errBody {
	h.t.Helper()
	var e errBody
	if err := json.Unmarshal(b, &e); err != nil {
		h.t.Fatalf("error body %s: %v", b, err)
	}
	if gotStatus != status || e.Error.Type != typ || e.Error.Code != code || e.Error.Param != param || e.Error.Message == "" {
		h.t.Fatalf("got %d %s, want %d type=%s code=%s param=%s", gotStatus, b, status, typ, code, param)
	}
	return e
}

func topUpForm() url.Values {
	return url.Values{
		"mode":                                          {"payment"},
		"line_items[0][price_data][currency]":           {"usd"},
		"line_items[0][price_data][unit_amount]":        {"1000"},
		"line_items[0][price_data][product_data][name]": {"Beaver balance top-up"},
		"line_items[0][quantity]":                       {"1"},
		"client_reference_id":                           {"acc_1"},
		"metadata[account_id]":                          {"acc_1"},
		"invoice_creation[enabled]":                     {"true"},
		"success_url":                                   {"https://beaver.test/ok?session_id={CHECKOUT_SESSION_ID}"},
	}
}

func TestErrorShapes(t *testing.T) {
	h := newHarness(t)
	st, _, b := h.do(http.MethodPost, "/v1/customers", url.Values{}, map[string]string{"Authorization": ""})
	h.wantError(401, b, st, "invalid_request_error", "", "")

	st, _, b = h.do(http.MethodGet, "/v1/nothing", nil, nil)
	h.wantError(404, b, st, "invalid_request_error", "", "")

	st, _, b = h.do(http.MethodPost, "/v1/customers", url.Values{"colour": {"blue"}}, nil)
	h.wantError(400, b, st, "invalid_request_error", "parameter_unknown", "colour")

	f := topUpForm()
	f.Del("mode")
	st, _, b = h.do(http.MethodPost, "/v1/checkout/sessions", f, nil)
	h.wantError(400, b, st, "invalid_request_error", "parameter_missing", "mode")

	f = topUpForm()
	f.Set("customer", "cus_missing")
	st, _, b = h.do(http.MethodPost, "/v1/checkout/sessions", f, nil)
	h.wantError(404, b, st, "invalid_request_error", "resource_missing", "customer")

	f = topUpForm()
	f.Set("success_url", "not a url")
	st, _, b = h.do(http.MethodPost, "/v1/checkout/sessions", f, nil)
	h.wantError(400, b, st, "invalid_request_error", "url_invalid", "success_url")

	f = topUpForm()
	f.Set("line_items[0][price_data][unit_amount]", "49")
	st, _, b = h.do(http.MethodPost, "/v1/checkout/sessions", f, nil)
	h.wantError(400, b, st, "invalid_request_error", "amount_too_small", "line_items")

	setup := url.Values{"mode": {"setup"}}
	st, _, b = h.do(http.MethodPost, "/v1/checkout/sessions", setup, nil)
	h.wantError(400, b, st, "invalid_request_error", "parameter_missing", "currency")

	st, _, b = h.do(http.MethodGet, "/v1/checkout/sessions/cs_test_nope", nil, nil)
	h.wantError(404, b, st, "invalid_request_error", "resource_missing", "session")

	st, _, b = h.do(http.MethodGet, "/v1/setup_intents/seti_nope", nil, nil)
	h.wantError(404, b, st, "invalid_request_error", "resource_missing", "intent")
}

func TestCheckoutSessionShapeAndIdempotency(t *testing.T) {
	h := newHarness(t)
	key := map[string]string{"Idempotency-Key": "k1"}
	st, hdr, b1 := h.do(http.MethodPost, "/v1/checkout/sessions", topUpForm(), key)
	if st != 200 || hdr.Get("Request-Id") == "" {
		t.Fatalf("create: %d %s", st, b1)
	}
	var cs stripe.CheckoutSession
	if err := json.Unmarshal(b1, &cs); err != nil {
		t.Fatal(err)
	}
	if cs.Object != "checkout.session" || cs.Mode != "payment" || cs.Status != "open" || cs.PaymentStatus != "unpaid" ||
		cs.AmountTotal != 1000 || cs.Currency != "usd" || cs.ClientReferenceID != "acc_1" || cs.Metadata["account_id"] != "acc_1" ||
		cs.SuccessURL != "https://beaver.test/ok?session_id={CHECKOUT_SESSION_ID}" || cs.URL == "" || cs.PaymentIntent != nil {
		t.Fatalf("session = %s", b1)
	}

	st, hdr, b2 := h.do(http.MethodPost, "/v1/checkout/sessions", topUpForm(), key)
	if st != 200 || hdr.Get("Idempotent-Replayed") != "true" || string(b2) != string(b1) {
		t.Fatalf("replay: %d %v %s", st, hdr, b2)
	}
	f := topUpForm()
	f.Set("line_items[0][price_data][unit_amount]", "2000")
	st, _, b := h.do(http.MethodPost, "/v1/checkout/sessions", f, key)
	h.wantError(400, b, st, "idempotency_error", "", "")

	// Completion moves state and is visible through GET with expansions.
	payload, sig := h.fs.CompleteCheckout(cs.ID, true)
	ev, err := webhook.ConstructEvent(payload, sig, "whsec_fake")
	if err != nil {
		t.Fatalf("helper payload does not verify with stripe-go: %v", err)
	}
	if ev.Type != "checkout.session.completed" || ev.APIVersion != stripe.APIVersion {
		t.Fatalf("event = %s %s", ev.Type, ev.APIVersion)
	}
	st, _, b = h.do(http.MethodGet, "/v1/checkout/sessions/"+cs.ID, url.Values{"expand[0]": {"invoice"}, "expand[1]": {"payment_intent.latest_charge"}}, nil)
	var got stripe.CheckoutSession
	if err := json.Unmarshal(b, &got); err != nil || st != 200 {
		t.Fatalf("get: %d %s %v", st, b, err)
	}
	if got.Status != "complete" || got.PaymentStatus != "paid" || got.Invoice == nil || got.Invoice.HostedInvoiceURL == "" ||
		got.PaymentIntent == nil || got.PaymentIntent.Status != "succeeded" || got.PaymentIntent.LatestCharge == nil ||
		got.PaymentIntent.LatestCharge.ReceiptURL == "" || got.URL != "" {
		t.Fatalf("completed session = %s", b)
	}
	st, _, b = h.do(http.MethodGet, "/v1/checkout/sessions/"+cs.ID, url.Values{"expand[0]": {"line_items.data.price.product"}}, nil)
	h.wantError(400, b, st, "invalid_request_error", "", "expand")

	if _, ok := h.fs.Object(got.PaymentIntent.ID); !ok {
		t.Fatal("Object does not find the PaymentIntent")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("completing a completed session did not panic")
			}
		}()
		h.fs.CompleteCheckout(cs.ID, true)
	}()
}

func TestOffSessionDeclineShape(t *testing.T) {
	h := newHarness(t)
	st, _, b := h.do(http.MethodPost, "/v1/customers", url.Values{"email": {"a@example.com"}}, nil)
	var cus stripe.Customer
	if err := json.Unmarshal(b, &cus); err != nil || st != 200 || cus.Email != "a@example.com" {
		t.Fatalf("customer: %d %s", st, b)
	}
	base := url.Values{"amount": {"1000"}, "currency": {"usd"}, "customer": {cus.ID}, "off_session": {"true"}, "confirm": {"true"}}

	f := cloneWith(base, "payment_method", "pm_card_chargeDeclined")
	st, _, b = h.do(http.MethodPost, "/v1/payment_intents", f, nil)
	e := h.wantError(402, b, st, "card_error", "card_declined", "")
	if e.Error.DeclineCode != "generic_decline" || e.Error.Charge == "" || e.Error.PaymentIntent["status"] != "requires_payment_method" {
		t.Fatalf("decline = %s", b)
	}

	f = cloneWith(base, "payment_method", "pm_card_authenticationRequired")
	st, _, b = h.do(http.MethodPost, "/v1/payment_intents", f, nil)
	e = h.wantError(402, b, st, "card_error", "authentication_required", "")
	if e.Error.PaymentIntent["id"] == nil {
		t.Fatalf("auth required = %s", b)
	}

	// On-session, authentication is a next action rather than an error.
	f = cloneWith(base, "payment_method", "pm_card_authenticationRequired")
	f.Del("off_session")
	st, _, b = h.do(http.MethodPost, "/v1/payment_intents", f, nil)
	var pi stripe.PaymentIntent
	if err := json.Unmarshal(b, &pi); err != nil || st != 200 || pi.Status != "requires_action" {
		t.Fatalf("on-session auth: %d %s", st, b)
	}

	f = cloneWith(base, "payment_method", "pm_card_visa")
	f.Set("amount", "49")
	st, _, b = h.do(http.MethodPost, "/v1/payment_intents", f, nil)
	h.wantError(400, b, st, "invalid_request_error", "amount_too_small", "amount")

	f = cloneWith(base, "payment_method", "pm_card_visa")
	f.Del("confirm")
	st, _, b = h.do(http.MethodPost, "/v1/payment_intents", f, nil)
	h.wantError(400, b, st, "invalid_request_error", "", "off_session")
}

func TestSignHelper(t *testing.T) {
	fs := fakestripe.New("whsec_fake")
	p := fakestripe.EventPayload("charge.refunded", map[string]any{"id": "ch_1", "object": "charge"})
	old := fs.Sign(p, time.Now().Add(-10*time.Minute))
	if _, err := webhook.ConstructEvent(p, old, "whsec_fake"); err != webhook.ErrTooOld {
		t.Fatalf("old signature err = %v", err)
	}
	if _, err := webhook.ConstructEventIgnoringTolerance(p, old, "whsec_fake"); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
}

func cloneWith(v url.Values, k, val string) url.Values {
	out := url.Values{}
	for kk, vv := range v {
		out[kk] = append([]string(nil), vv...)
	}
	out.Set(k, val)
	return out
}
