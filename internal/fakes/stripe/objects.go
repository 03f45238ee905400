package stripe

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The object types hold state; render methods produce Stripe's JSON shape
// (a subset of fields, with Stripe's names, nulls and nesting).

type customer struct {
	id, email, name string
	metadata        map[string]string
	created         int64
}

func (c *customer) render() map[string]any {
	return map[string]any{
		"id": c.id, "object": "customer", "created": c.created, "livemode": false,
		"email": nullable(c.email), "name": nullable(c.name), "metadata": metaOrEmpty(c.metadata),
		"invoice_settings": map[string]any{"default_payment_method": nil, "custom_fields": nil, "footer": nil},
		"balance":          0, "currency": nil, "delinquent": false, "description": nil,
	}
}

type lineItem struct {
	name       string
	currency   string
	unitAmount int64
	quantity   int64
}

type session struct {
	id, mode, status, paymentStatus string
	currency                        string
	amountTotal                     int64
	lineItems                       []lineItem
	clientReferenceID               string
	customerID, customerEmail       string
	successURL, cancelURL           string
	metadata                        map[string]string
	piMetadata                      map[string]string
	piDescription                   string
	invoiceCreation                 bool
	invoiceMetadata                 map[string]string
	invoiceDescription              string
	siMetadata                      map[string]string
	paymentMethodTypes              []string
	adaptivePricing                 bool
	paymentIntentID, setupIntentID  string
	invoiceID                       string
	completedEmail                  string
	created, expiresAt              int64
}

type paymentIntent struct {
	id, status, currency, customerID, paymentMethodID, description string
	amount, amountReceived                                         int64
	metadata                                                       map[string]string
	latestChargeID                                                 string
	lastError                                                      *apiError
	created                                                        int64
}

type charge struct {
	id, status, currency, customerID, paymentIntentID, paymentMethodID string
	amount, amountRefunded                                             int64
	paid, disputed                                                     bool
	failureCode, failureMessage                                        string
	metadata                                                           map[string]string
	created                                                            int64
}

func (c *charge) render() map[string]any {
	captured := c.status == "succeeded"
	amountCaptured := int64(0)
	if captured {
		amountCaptured = c.amount
	}
	outcome := map[string]any{"network_status": "approved_by_network", "type": "authorized", "seller_message": "Payment complete."}
	switch c.status {
	case "failed":
		outcome = map[string]any{"network_status": "declined_by_network", "type": "issuer_declined", "seller_message": "The bank did not return any further details with this decline."}
	case "pending":
		outcome = nil
	}
	return map[string]any{
		"id": c.id, "object": "charge", "amount": c.amount, "amount_captured": amountCaptured,
		"amount_refunded": c.amountRefunded, "captured": captured, "created": c.created,
		"currency": c.currency, "customer": nullable(c.customerID), "description": nil,
		"disputed": c.disputed, "failure_code": nullable(c.failureCode), "failure_message": nullable(c.failureMessage),
		"livemode": false, "metadata": metaOrEmpty(c.metadata), "paid": c.paid,
		"payment_intent": nullable(c.paymentIntentID), "payment_method": nullable(c.paymentMethodID),
		"receipt_url": "https://pay.stripe.com/receipts/payment/" + c.id,
		"refunded":    c.amount > 0 && c.amountRefunded == c.amount, "status": c.status,
		"outcome": outcome,
	}
}

type refund struct {
	id, status, currency, chargeID, paymentIntentID, reason string
	amount                                                  int64
	metadata                                                map[string]string
	created                                                 int64
}

func (r *refund) render() map[string]any {
	return map[string]any{
		"id": r.id, "object": "refund", "amount": r.amount, "charge": r.chargeID, "created": r.created,
		"currency": r.currency, "metadata": metaOrEmpty(r.metadata), "payment_intent": nullable(r.paymentIntentID),
		"reason": nullable(r.reason), "status": r.status, "balance_transaction": nil, "receipt_number": nil,
	}
}

type setupIntent struct {
	id, status, customerID, paymentMethodID, description string
	metadata                                             map[string]string
	created                                              int64
}

func (si *setupIntent) render() map[string]any {
	return map[string]any{
		"id": si.id, "object": "setup_intent", "client_secret": si.id + "_secret_" + randID(16),
		"created": si.created, "customer": nullable(si.customerID), "description": nullable(si.description),
		"last_setup_error": nil, "livemode": false, "metadata": metaOrEmpty(si.metadata),
		"payment_method": nullable(si.paymentMethodID), "payment_method_types": []string{"card"},
		"status": si.status, "usage": "off_session", "next_action": nil,
	}
}

type invoice struct {
	id, status, currency, customerID, customerEmail, description, paymentIntentID string
	total, amountPaid                                                             int64
	metadata                                                                      map[string]string
	number                                                                        string
	created                                                                       int64
}

func (in *invoice) render() map[string]any {
	return map[string]any{
		"id": in.id, "object": "invoice", "status": in.status, "currency": in.currency,
		"customer": nullable(in.customerID), "customer_email": nullable(in.customerEmail),
		"description": nullable(in.description), "total": in.total, "amount_due": in.total,
		"amount_paid": in.amountPaid, "amount_remaining": in.total - in.amountPaid,
		"hosted_invoice_url": "https://invoice.stripe.com/i/acct_fake/test_" + in.id,
		"invoice_pdf":        "https://pay.stripe.com/invoice/acct_fake/test_" + in.id + "/pdf",
		"metadata":           metaOrEmpty(in.metadata), "number": in.number, "created": in.created,
		"livemode": false, "collection_method": "charge_automatically",
	}
}

type dispute struct {
	id, chargeID, paymentIntentID, currency, reason, status string
	amount                                                  int64
	created                                                 int64
}

func (d *dispute) render() map[string]any {
	return map[string]any{
		"id": d.id, "object": "dispute", "amount": d.amount, "charge": d.chargeID, "created": d.created,
		"currency": d.currency, "is_charge_refundable": false, "livemode": false, "metadata": map[string]string{},
		"payment_intent": nullable(d.paymentIntentID), "reason": d.reason, "status": d.status,
		"evidence_details": map[string]any{"due_by": d.created + 7*24*3600, "has_evidence": false, "past_due": false, "submission_count": 0},
	}
}

func (s *Server) renderIntent(pi *paymentIntent, exp expansion) map[string]any {
	out := map[string]any{
		"id": pi.id, "object": "payment_intent", "amount": pi.amount, "amount_capturable": 0,
		"amount_received": pi.amountReceived, "capture_method": "automatic_async",
		"client_secret": pi.id + "_secret_" + randID(16), "confirmation_method": "automatic",
		"created": pi.created, "currency": pi.currency, "customer": nullable(pi.customerID),
		"description": nullable(pi.description), "last_payment_error": nil,
		"latest_charge": nullable(pi.latestChargeID), "livemode": false, "metadata": metaOrEmpty(pi.metadata),
		"next_action": nil, "payment_method": nullable(pi.paymentMethodID),
		"payment_method_types": []string{"card"}, "setup_future_usage": nil, "status": pi.status,
	}
	if pi.lastError != nil {
		out["last_payment_error"] = pi.lastError
	}
	if pi.status == "requires_action" {
		out["next_action"] = map[string]any{"type": "use_stripe_sdk", "use_stripe_sdk": map[string]any{}}
	}
	if exp.has("latest_charge") && pi.latestChargeID != "" {
		out["latest_charge"] = s.charges[pi.latestChargeID].render()
	}
	if exp.has("customer") && pi.customerID != "" {
		out["customer"] = s.customers[pi.customerID].render()
	}
	return out
}

func (s *Server) renderSession(cs *session, exp expansion) map[string]any {
	var amountTotal, amountSubtotal any
	if cs.mode == "payment" {
		amountTotal, amountSubtotal = cs.amountTotal, cs.amountTotal
	}
	var currency any
	if cs.currency != "" {
		currency = cs.currency
	}
	var invoiceCreation any
	if cs.mode == "payment" {
		invoiceCreation = map[string]any{
			"enabled": cs.invoiceCreation,
			"invoice_data": map[string]any{
				"account_tax_ids": nil, "custom_fields": nil, "description": nullable(cs.invoiceDescription),
				"footer": nil, "issuer": nil, "metadata": metaOrEmpty(cs.invoiceMetadata), "rendering_options": nil,
			},
		}
	}
	var customerDetails any
	if cs.status == "complete" {
		customerDetails = map[string]any{"email": nullable(cs.completedEmail), "name": nil, "phone": nil,
			"address": nil, "tax_exempt": "none", "tax_ids": []any{}}
	}
	var url any
	if cs.status == "open" {
		url = "https://checkout.stripe.com/c/pay/" + cs.id
	}
	out := map[string]any{
		"id": cs.id, "object": "checkout.session", "adaptive_pricing": map[string]any{"enabled": cs.adaptivePricing},
		"amount_subtotal": amountSubtotal, "amount_total": amountTotal, "cancel_url": nullable(cs.cancelURL),
		"client_reference_id": nullable(cs.clientReferenceID), "created": cs.created, "currency": currency,
		"currency_conversion": nil, "customer": nullable(cs.customerID), "customer_creation": customerCreation(cs),
		"customer_details": customerDetails, "customer_email": nullable(cs.customerEmail),
		"expires_at": cs.expiresAt, "invoice": nullable(cs.invoiceID), "invoice_creation": invoiceCreation,
		"livemode": false, "locale": nil, "metadata": metaOrEmpty(cs.metadata), "mode": cs.mode,
		"payment_intent": nullable(cs.paymentIntentID), "payment_method_types": cs.paymentMethodTypes,
		"payment_status": cs.paymentStatus, "setup_intent": nullable(cs.setupIntentID), "status": cs.status,
		"success_url": nullable(cs.successURL), "ui_mode": "hosted", "url": url, "total_details": nil,
	}
	if exp.has("customer") && cs.customerID != "" {
		out["customer"] = s.customers[cs.customerID].render()
	}
	if exp.has("invoice") && cs.invoiceID != "" {
		out["invoice"] = s.invoices[cs.invoiceID].render()
	}
	if exp.has("payment_intent") && cs.paymentIntentID != "" {
		out["payment_intent"] = s.renderIntent(s.intents[cs.paymentIntentID], exp.sub("payment_intent"))
	}
	if exp.has("setup_intent") && cs.setupIntentID != "" {
		out["setup_intent"] = s.setupIntents[cs.setupIntentID].render()
	}
	return out
}

func customerCreation(cs *session) any {
	if cs.mode == "payment" && cs.customerID == "" {
		return "if_required"
	}
	return nil
}

// --- handlers -----------------------------------------------------------

func (s *Server) createCustomer(form url.Values) reply {
	if r := checkParams(form, "email", "name", "description", "metadata", "expand", "phone"); r != nil {
		return *r
	}
	c := &customer{id: newID("cus_"), email: form.Get("email"), name: form.Get("name"),
		metadata: subMap(form, "metadata"), created: now()}
	s.customers[c.id] = c
	return ok(c.render())
}

func (s *Server) createSession(form url.Values) reply {
	if r := checkParams(form, "mode", "line_items", "client_reference_id", "customer", "customer_email",
		"metadata", "payment_intent_data", "invoice_creation", "success_url", "cancel_url", "currency",
		"setup_intent_data", "payment_method_types", "adaptive_pricing", "expand", "customer_creation",
		"expires_at", "locale", "ui_mode"); r != nil {
		return *r
	}
	cs := &session{
		id: newID("cs_test_"), mode: form.Get("mode"), status: "open",
		clientReferenceID: form.Get("client_reference_id"), customerID: form.Get("customer"),
		customerEmail: form.Get("customer_email"), successURL: form.Get("success_url"),
		cancelURL: form.Get("cancel_url"), currency: form.Get("currency"),
		metadata: subMap(form, "metadata"), piMetadata: subMap(form, "payment_intent_data[metadata]"),
		piDescription:      form.Get("payment_intent_data[description]"),
		siMetadata:         subMap(form, "setup_intent_data[metadata]"),
		invoiceMetadata:    subMap(form, "invoice_creation[invoice_data][metadata]"),
		invoiceDescription: form.Get("invoice_creation[invoice_data][description]"),
		paymentMethodTypes: list(form, "payment_method_types"),
		adaptivePricing:    true,
		created:            now(),
	}
	cs.expiresAt = cs.created + 24*3600
	if len(cs.paymentMethodTypes) == 0 {
		cs.paymentMethodTypes = []string{"card", "link"}
	}
	if v, present, r := boolParam(form, "adaptive_pricing[enabled]"); r != nil {
		return *r
	} else if present {
		cs.adaptivePricing = v
	}
	inv, invPresent, r := boolParam(form, "invoice_creation[enabled]")
	if r != nil {
		return *r
	}
	cs.invoiceCreation = inv

	switch cs.mode {
	case "":
		return invalid("parameter_missing", "mode", "Missing required param: mode.")
	case "payment", "setup":
	case "subscription":
		return invalid("", "mode", "fakestripe does not implement subscription mode.")
	default:
		return invalid("", "mode", "Invalid mode: must be one of payment, setup, or subscription")
	}
	if cs.customerID != "" && cs.customerEmail != "" {
		return invalid("", "customer_email", "You may only specify one of these parameters: customer, customer_email.")
	}
	if cs.customerID != "" && s.customers[cs.customerID] == nil {
		return missing("customer", "customer", cs.customerID)
	}
	for _, p := range []string{"success_url", "cancel_url"} {
		if u := form.Get(p); u != "" {
			if r := validURL(p, u); r != nil {
				return *r
			}
		}
	}

	items, r := parseLineItems(form)
	if r != nil {
		return *r
	}
	if cs.mode == "setup" {
		if len(items) > 0 {
			return invalid("", "line_items", "You cannot pass `line_items` in `setup` mode.")
		}
		if invPresent {
			return invalid("", "invoice_creation", "`invoice_creation` can only be used in `payment` mode.")
		}
		if len(list(form, "payment_method_types")) == 0 && cs.currency == "" {
			return invalid("parameter_missing", "currency", "`currency` is required in `setup` mode when `payment_method_types` is not passed.")
		}
		cs.paymentStatus = "no_payment_required"
	} else {
		if len(items) == 0 {
			return invalid("parameter_missing", "line_items", "`line_items` is required in `payment` mode.")
		}
		cs.lineItems = items
		cs.currency = items[0].currency
		for i, it := range items {
			if it.currency != cs.currency {
				return invalid("", fmt.Sprintf("line_items[%d][price_data][currency]", i), "All line items must use the same currency.")
			}
			cs.amountTotal += it.unitAmount * it.quantity
		}
		if cs.currency == "usd" && cs.amountTotal < 50 {
			return invalid("amount_too_small", "line_items", "The Checkout Session's total amount due must add up to at least $0.50 usd")
		}
		cs.paymentStatus = "unpaid"
	}
	s.sessions[cs.id] = cs
	return ok(s.renderSession(cs, nil))
}

func parseLineItems(form url.Values) ([]lineItem, *reply) {
	var items []lineItem
	for i := 0; ; i++ {
		pfx := fmt.Sprintf("line_items[%d]", i)
		found := false
		for k := range form {
			if strings.HasPrefix(k, pfx+"[") {
				found = true
				break
			}
		}
		if !found {
			return items, nil
		}
		if form.Get(pfx+"[price]") != "" {
			r := invalid("resource_missing", pfx+"[price]", "No such price: '"+form.Get(pfx+"[price]")+"'")
			return nil, &r
		}
		it := lineItem{
			name:     form.Get(pfx + "[price_data][product_data][name]"),
			currency: form.Get(pfx + "[price_data][currency]"),
		}
		if it.currency == "" {
			r := invalid("parameter_missing", pfx+"[price_data][currency]", "Missing required param: "+pfx+"[price_data][currency].")
			return nil, &r
		}
		if it.name == "" && form.Get(pfx+"[price_data][product]") == "" {
			r := invalid("parameter_missing", pfx+"[price_data][product_data][name]", "Missing required param: "+pfx+"[price_data][product_data][name].")
			return nil, &r
		}
		amt, present, r := intParam(form, pfx+"[price_data][unit_amount]")
		if r != nil {
			return nil, r
		}
		if !present || amt < 0 {
			r := invalid("parameter_missing", pfx+"[price_data][unit_amount]", "Missing required param: "+pfx+"[price_data][unit_amount].")
			return nil, &r
		}
		it.unitAmount = amt
		q, present, r := intParam(form, pfx+"[quantity]")
		if r != nil {
			return nil, r
		}
		if !present || q < 1 {
			r := invalid("parameter_missing", pfx+"[quantity]", "Missing required param: "+pfx+"[quantity].")
			return nil, &r
		}
		it.quantity = q
		items = append(items, it)
	}
}

func (s *Server) getSession(id string, form url.Values) reply {
	if r := checkParams(form, "expand"); r != nil {
		return *r
	}
	paths := list(form, "expand")
	if r := checkExpand(paths, "customer", "invoice", "payment_intent", "payment_intent.latest_charge",
		"payment_intent.customer", "setup_intent", "line_items"); r != nil {
		return *r
	}
	cs := s.sessions[id]
	if cs == nil {
		return missing("checkout.session", "session", id)
	}
	return ok(s.renderSession(cs, newExpansion(paths)))
}

func (s *Server) getIntent(id string, form url.Values) reply {
	if r := checkParams(form, "expand", "client_secret"); r != nil {
		return *r
	}
	paths := list(form, "expand")
	if r := checkExpand(paths, "latest_charge", "customer"); r != nil {
		return *r
	}
	pi := s.intents[id]
	if pi == nil {
		return missing("payment_intent", "intent", id)
	}
	return ok(s.renderIntent(pi, newExpansion(paths)))
}

// cardOutcome maps Stripe's test payment methods to what the issuer says.
func cardOutcome(pm string) (code, declineCode, msg string) {
	switch pm {
	case "pm_card_chargeDeclined":
		return "card_declined", "generic_decline", "Your card was declined."
	case "pm_card_chargeDeclinedInsufficientFunds":
		return "card_declined", "insufficient_funds", "Your card has insufficient funds."
	case "pm_card_chargeDeclinedExpiredCard":
		return "expired_card", "expired_card", "Your card has expired."
	case "pm_card_authenticationRequired", "pm_card_threeDSecureRequired":
		return "authentication_required", "authentication_required", "Your card was declined. This transaction requires authentication."
	}
	return "", "", ""
}

func (s *Server) createIntent(form url.Values) reply {
	if r := checkParams(form, "amount", "currency", "customer", "payment_method", "off_session", "confirm",
		"metadata", "description", "expand", "payment_method_types", "receipt_email",
		"statement_descriptor_suffix", "error_on_requires_action", "setup_future_usage"); r != nil {
		return *r
	}
	amount, present, r := intParam(form, "amount")
	if r != nil {
		return *r
	}
	if !present {
		return invalid("parameter_missing", "amount", "Missing required param: amount.")
	}
	currency := form.Get("currency")
	if currency == "" {
		return invalid("parameter_missing", "currency", "Missing required param: currency.")
	}
	if currency == "usd" && amount < 50 {
		return invalid("amount_too_small", "amount", "Amount must be at least $0.50 usd")
	}
	custID := form.Get("customer")
	if custID != "" && s.customers[custID] == nil {
		return missing("customer", "customer", custID)
	}
	confirm, _, r := boolParam(form, "confirm")
	if r != nil {
		return *r
	}
	offSession := false
	switch v := form.Get("off_session"); v {
	case "", "false":
	case "true", "one_off", "recurring":
		offSession = true
	default:
		return invalid("parameter_invalid_boolean", "off_session", "Invalid off_session: "+v)
	}
	if offSession && !confirm {
		return invalid("", "off_session", "You can only pass `off_session` when `confirm` is true.")
	}
	paths := list(form, "expand")
	if r := checkExpand(paths, "latest_charge", "customer"); r != nil {
		return *r
	}
	pmID := form.Get("payment_method")
	if confirm && pmID == "" {
		return invalid("parameter_missing", "payment_method", "You must provide a `payment_method` to confirm this PaymentIntent.")
	}
	if pmID != "" && !strings.HasPrefix(pmID, "pm_") {
		return missing("payment_method", "payment_method", pmID)
	}
	pi := &paymentIntent{
		id: newID("pi_"), amount: amount, currency: currency, customerID: custID, paymentMethodID: pmID,
		description: form.Get("description"), metadata: subMap(form, "metadata"), created: now(),
		status: "requires_payment_method",
	}
	if pmID != "" {
		pi.status = "requires_confirmation"
	}
	s.intents[pi.id] = pi
	if !confirm {
		return ok(s.renderIntent(pi, newExpansion(paths)))
	}

	code, declineCode, msg := cardOutcome(pmID)
	switch {
	case code == "":
		ch := s.newCharge(pi, "succeeded")
		pi.status, pi.amountReceived, pi.latestChargeID = "succeeded", amount, ch.id
		return ok(s.renderIntent(pi, newExpansion(paths)))
	case code == "authentication_required" && !offSession:
		pi.status = "requires_action"
		return ok(s.renderIntent(pi, newExpansion(paths)))
	}
	// A declined confirmation: the PaymentIntent goes back to
	// requires_payment_method and the 402 error embeds it.
	e := apiError{Type: "card_error", Code: code, DeclineCode: declineCode, Message: msg,
		PaymentMethod: map[string]any{"id": pmID, "object": "payment_method", "type": "card"}}
	if code != "authentication_required" {
		ch := s.newCharge(pi, "failed")
		ch.failureCode, ch.failureMessage = code, msg
		pi.latestChargeID, e.Charge = ch.id, ch.id
	}
	pi.status = "requires_payment_method"
	last := e
	pi.lastError = &last
	e.PaymentIntent = s.renderIntent(pi, nil)
	if code == "authentication_required" {
		e.DeclineCode = "authentication_required"
	}
	return errReply(http.StatusPaymentRequired, e)
}

func (s *Server) newCharge(pi *paymentIntent, status string) *charge {
	ch := &charge{
		id: newID("ch_"), status: status, currency: pi.currency, customerID: pi.customerID,
		paymentIntentID: pi.id, paymentMethodID: pi.paymentMethodID, amount: pi.amount,
		paid: status == "succeeded", metadata: pi.metadata, created: now(),
	}
	s.charges[ch.id] = ch
	return ch
}

func (s *Server) createRefund(form url.Values) reply {
	if r := checkParams(form, "payment_intent", "charge", "amount", "reason", "metadata", "expand"); r != nil {
		return *r
	}
	var ch *charge
	piID := form.Get("payment_intent")
	switch {
	case piID != "" && form.Get("charge") != "":
		return invalid("", "charge", "You may only specify one of these parameters: charge, payment_intent.")
	case piID != "":
		pi := s.intents[piID]
		if pi == nil {
			return missing("payment_intent", "payment_intent", piID)
		}
		if pi.latestChargeID == "" || s.charges[pi.latestChargeID].status != "succeeded" {
			return invalid("charge_not_refundable", "payment_intent", fmt.Sprintf("This PaymentIntent (%s) does not have a successful charge to refund.", piID))
		}
		ch = s.charges[pi.latestChargeID]
	case form.Get("charge") != "":
		ch = s.charges[form.Get("charge")]
		if ch == nil {
			return missing("charge", "charge", form.Get("charge"))
		}
	default:
		return invalid("parameter_missing", "payment_intent", "One of the following params should be provided for this request: payment_intent or charge.")
	}
	switch reason := form.Get("reason"); reason {
	case "", "duplicate", "fraudulent", "requested_by_customer":
	default:
		return invalid("", "reason", "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer")
	}
	amount, present, r := intParam(form, "amount")
	if r != nil {
		return *r
	}
	rep, _ := s.refundCharge(ch, amount, present, form.Get("reason"), subMap(form, "metadata"))
	return rep
}

// refundCharge applies Stripe's refund rules: not more than the unrefunded
// amount, not on a disputed charge.
func (s *Server) refundCharge(ch *charge, amount int64, amountGiven bool, reason string, meta map[string]string) (reply, *refund) {
	remaining := ch.amount - ch.amountRefunded
	if ch.disputed {
		return invalid("charge_disputed", "charge", fmt.Sprintf("Charge %s has been charged back; cannot issue a refund.", ch.id)), nil
	}
	if remaining <= 0 {
		return invalid("charge_already_refunded", "charge", fmt.Sprintf("Charge %s has already been refunded.", ch.id)), nil
	}
	if !amountGiven {
		amount = remaining
	}
	if amount <= 0 {
		return invalid("parameter_invalid_integer", "amount", "Invalid positive integer"), nil
	}
	if amount > remaining {
		return invalid("amount_too_large", "amount", fmt.Sprintf("Refund amount (%s) is greater than unrefunded amount on charge (%s)",
			dollars(amount), dollars(remaining))), nil
	}
	re := &refund{id: newID("re_"), status: "succeeded", currency: ch.currency, chargeID: ch.id,
		paymentIntentID: ch.paymentIntentID, reason: reason, amount: amount, metadata: meta, created: now()}
	s.refunds[re.id] = re
	ch.amountRefunded += amount
	return ok(re.render()), re
}

func dollars(cents int64) string {
	return "$" + strconv.FormatInt(cents/100, 10) + "." + fmt.Sprintf("%02d", cents%100)
}
