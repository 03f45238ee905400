package stripe

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"
)

// The helpers below play Stripe's side of a flow and return the webhook
// Stripe would send: the JSON payload and its Stripe-Signature header,
// signed now with the server's webhook secret. They panic on misuse
// (unknown id, wrong state): they are for tests only.

// CompleteCheckout completes an open session as if the customer finished
// the hosted page and returns checkout.session.completed.
//
// Payment mode: paid=true charges the card at once (PaymentIntent
// succeeded, charge with receipt, paid invoice if invoice_creation was
// enabled; payment_status "paid"). paid=false models a delayed method
// (bank debit): payment_status "unpaid", PaymentIntent "processing", the
// outcome follows via AsyncPaymentSucceeded or AsyncPaymentFailed.
//
// Setup mode: paid is ignored and pm_card_visa is saved; see
// CompleteSetupCheckout to choose the card.
func (s *Server) CompleteCheckout(id string, paid bool) (payload []byte, sigHeader string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.openSession(id)
	if cs.mode == "setup" {
		s.completeSetup(cs, "pm_card_visa")
		return s.signedEvent("checkout.session.completed", s.renderSession(cs, nil))
	}
	cs.completedEmail = firstNonEmpty(cs.customerEmail, "customer@example.com")
	if c := s.customers[cs.customerID]; c != nil && c.email != "" {
		cs.completedEmail = c.email
	}
	pi := &paymentIntent{
		id: newID("pi_"), amount: cs.amountTotal, currency: cs.currency, customerID: cs.customerID,
		paymentMethodID: newID("pm_"), description: cs.piDescription, metadata: cs.piMetadata, created: now(),
	}
	s.intents[pi.id] = pi
	cs.paymentIntentID = pi.id
	var ch *charge
	if paid {
		ch = s.newCharge(pi, "succeeded")
		pi.status, pi.amountReceived = "succeeded", pi.amount
		cs.paymentStatus = "paid"
	} else {
		ch = s.newCharge(pi, "pending")
		pi.status = "processing"
		cs.paymentStatus = "unpaid"
	}
	pi.latestChargeID = ch.id
	if cs.invoiceCreation {
		in := &invoice{
			id: newID("in_"), status: "open", currency: cs.currency, customerID: cs.customerID,
			customerEmail: cs.completedEmail, description: cs.invoiceDescription, paymentIntentID: pi.id,
			total: cs.amountTotal, metadata: cs.invoiceMetadata, number: fmt.Sprintf("FAKE-%04d", len(s.invoices)+1),
			created: now(),
		}
		if paid {
			in.status, in.amountPaid = "paid", in.total
		}
		s.invoices[in.id] = in
		cs.invoiceID = in.id
	}
	cs.status = "complete"
	return s.signedEvent("checkout.session.completed", s.renderSession(cs, nil))
}

// CompleteSetupCheckout completes a setup-mode session, saving
// paymentMethodID (e.g. "pm_card_chargeDeclined" to make later off-session
// charges fail) on a succeeded SetupIntent, and returns
// checkout.session.completed.
func (s *Server) CompleteSetupCheckout(id, paymentMethodID string) (payload []byte, sigHeader string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.openSession(id)
	if cs.mode != "setup" {
		panic(fmt.Sprintf("fakestripe: session %s is in %s mode, not setup", id, cs.mode))
	}
	s.completeSetup(cs, paymentMethodID)
	return s.signedEvent("checkout.session.completed", s.renderSession(cs, nil))
}

func (s *Server) completeSetup(cs *session, pm string) {
	si := &setupIntent{id: newID("seti_"), status: "succeeded", customerID: cs.customerID,
		paymentMethodID: pm, metadata: cs.siMetadata, created: now()}
	s.setupIntents[si.id] = si
	cs.setupIntentID = si.id
	cs.status = "complete"
	if c := s.customers[cs.customerID]; c != nil {
		cs.completedEmail = c.email
	}
}

// AsyncPaymentSucceeded settles a session completed with paid=false and
// returns checkout.session.async_payment_succeeded.
func (s *Server) AsyncPaymentSucceeded(id string) (payload []byte, sigHeader string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, pi, ch := s.pendingSession(id)
	ch.status, ch.paid = "succeeded", true
	pi.status, pi.amountReceived = "succeeded", pi.amount
	cs.paymentStatus = "paid"
	if in := s.invoices[cs.invoiceID]; in != nil {
		in.status, in.amountPaid = "paid", in.total
	}
	return s.signedEvent("checkout.session.async_payment_succeeded", s.renderSession(cs, nil))
}

// AsyncPaymentFailed fails a session completed with paid=false and returns
// checkout.session.async_payment_failed.
func (s *Server) AsyncPaymentFailed(id string) (payload []byte, sigHeader string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, pi, ch := s.pendingSession(id)
	ch.status, ch.failureCode, ch.failureMessage = "failed", "insufficient_funds", "The account has insufficient funds."
	pi.status = "requires_payment_method"
	pi.lastError = &apiError{Type: "card_error", Code: "payment_intent_payment_attempt_failed",
		DeclineCode: "insufficient_funds", Message: "The payment failed.", Charge: ch.id}
	if in := s.invoices[cs.invoiceID]; in != nil {
		in.status = "uncollectible"
	}
	return s.signedEvent("checkout.session.async_payment_failed", s.renderSession(cs, nil))
}

// ExpireCheckout expires an open session and returns
// checkout.session.expired.
func (s *Server) ExpireCheckout(id string) (payload []byte, sigHeader string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.openSession(id)
	cs.status = "expired"
	return s.signedEvent("checkout.session.expired", s.renderSession(cs, nil))
}

// ChargeRefunded returns charge.refunded for the PaymentIntent's charge.
// With amountCents > 0 it first refunds that much, as a refund made in the
// Dashboard would; with 0 it reports the refunds already made through the
// API. Like Stripe's basil API, the charge carries amount_refunded
// (cumulative) but no refunds list.
func (s *Server) ChargeRefunded(paymentIntentID string, amountCents int64) (payload []byte, sigHeader string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.succeededCharge(paymentIntentID)
	if amountCents > 0 {
		rep, re := s.refundCharge(ch, amountCents, true, "requested_by_customer", nil)
		if re == nil {
			b, _ := json.Marshal(rep.body)
			panic(fmt.Sprintf("fakestripe: refund of %s failed: %s", ch.id, b))
		}
	}
	if ch.amountRefunded == 0 {
		panic(fmt.Sprintf("fakestripe: charge %s has no refunds", ch.id))
	}
	return s.signedEvent("charge.refunded", ch.render())
}

// DisputeCreated opens a dispute for the PaymentIntent's full charge
// (reason e.g. "fraudulent"; "" means that) and returns
// charge.dispute.created.
func (s *Server) DisputeCreated(paymentIntentID, reason string) (payload []byte, sigHeader string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.succeededCharge(paymentIntentID)
	if reason == "" {
		reason = "fraudulent"
	}
	d := &dispute{id: newID("dp_"), chargeID: ch.id, paymentIntentID: ch.paymentIntentID,
		currency: ch.currency, reason: reason, status: "needs_response", amount: ch.amount, created: now()}
	s.disputes[d.id] = d
	ch.disputed = true
	return s.signedEvent("charge.dispute.created", d.render())
}

// PaymentIntentEvent returns payment_intent.succeeded or
// payment_intent.payment_failed for the PaymentIntent's current state
// (e.g. after an off-session charge through the API).
func (s *Server) PaymentIntentEvent(id string) (payload []byte, sigHeader string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pi := s.intents[id]
	if pi == nil {
		panic("fakestripe: no such payment_intent " + id)
	}
	switch {
	case pi.status == "succeeded":
		return s.signedEvent("payment_intent.succeeded", s.renderIntent(pi, nil))
	case pi.status == "requires_payment_method" && pi.lastError != nil:
		return s.signedEvent("payment_intent.payment_failed", s.renderIntent(pi, nil))
	}
	panic(fmt.Sprintf("fakestripe: payment_intent %s is %s: neither succeeded nor failed", id, pi.status))
}

// SignedEvent wraps any object as data.object of an event of eventType and
// signs it now.
func (s *Server) SignedEvent(eventType string, object any) (payload []byte, sigHeader string) {
	return s.signedEvent(eventType, object)
}

// EventPayload builds an unsigned event envelope (API version
// stripe.APIVersion), for tests that sign it themselves.
func EventPayload(eventType string, object any) []byte {
	ev := map[string]any{
		"id": newID("evt_"), "object": "event", "api_version": stripe.APIVersion, "created": now(),
		"data": map[string]any{"object": object}, "livemode": false, "pending_webhooks": 1,
		"request": map[string]any{"id": nil, "idempotency_key": nil}, "type": eventType,
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(fmt.Sprintf("fakestripe: marshal event: %v", err))
	}
	return b
}

// Sign returns a Stripe-Signature header for payload as signed at `at`
// with the server's webhook secret (use a past or future time to test
// tolerance).
func (s *Server) Sign(payload []byte, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{
		Payload: payload, Secret: s.webhookSecret, Timestamp: at,
	}).Header
}

func (s *Server) signedEvent(eventType string, object any) ([]byte, string) {
	payload := EventPayload(eventType, object)
	return payload, s.Sign(payload, time.Now())
}

func (s *Server) openSession(id string) *session {
	cs := s.sessions[id]
	if cs == nil {
		panic("fakestripe: no such checkout session " + id)
	}
	if cs.status != "open" {
		panic(fmt.Sprintf("fakestripe: checkout session %s is %s, not open", id, cs.status))
	}
	return cs
}

func (s *Server) pendingSession(id string) (*session, *paymentIntent, *charge) {
	cs := s.sessions[id]
	if cs == nil {
		panic("fakestripe: no such checkout session " + id)
	}
	if cs.mode != "payment" || cs.status != "complete" || cs.paymentStatus != "unpaid" {
		panic(fmt.Sprintf("fakestripe: session %s is not a completed, unpaid payment session (complete it with paid=false first)", id))
	}
	pi := s.intents[cs.paymentIntentID]
	if pi.status != "processing" {
		panic(fmt.Sprintf("fakestripe: payment_intent %s is %s, not processing", pi.id, pi.status))
	}
	return cs, pi, s.charges[pi.latestChargeID]
}

func (s *Server) succeededCharge(paymentIntentID string) *charge {
	pi := s.intents[paymentIntentID]
	if pi == nil {
		panic("fakestripe: no such payment_intent " + paymentIntentID)
	}
	ch := s.charges[pi.latestChargeID]
	if ch == nil || ch.status != "succeeded" {
		panic(fmt.Sprintf("fakestripe: payment_intent %s has no succeeded charge", paymentIntentID))
	}
	return ch
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
