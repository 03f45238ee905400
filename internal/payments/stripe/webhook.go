package stripe

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"
)

// WebhookTolerance is how far a webhook's signed timestamp may be from our
// clock, in either direction, before the event is refused.
const WebhookTolerance = 5 * time.Minute

// Webhook errors. HTTP handlers answer 400 to the first three (Stripe
// retries with backoff, so a fixed configuration heals) and 503 to
// ErrWebhookNotConfigured.
var (
	// ErrBadSignature: missing or malformed Stripe-Signature header, no
	// matching signature, or a timestamp outside WebhookTolerance.
	ErrBadSignature = errors.New("payments: bad webhook signature")
	// ErrBadPayload: correctly signed but not a decodable Stripe event.
	ErrBadPayload = errors.New("payments: bad webhook payload")
	// ErrAPIVersionMismatch: the endpoint sends another API version family
	// than APIVersionFamily; objects could decode wrongly, so we refuse
	// rather than risk misreading money. Fix the endpoint's version.
	ErrAPIVersionMismatch = errors.New("payments: webhook event API version does not match " + APIVersionFamily)
	// ErrWebhookNotConfigured: STRIPE_WEBHOOK_SECRET is unset.
	ErrWebhookNotConfigured = errors.New("payments: webhook secret not configured (STRIPE_WEBHOOK_SECRET unset)")
)

// Event types Beaver handles.
const (
	EventCheckoutSessionCompleted      = "checkout.session.completed"
	EventCheckoutSessionAsyncSucceeded = "checkout.session.async_payment_succeeded"
	EventCheckoutSessionAsyncFailed    = "checkout.session.async_payment_failed"
	EventCheckoutSessionExpired        = "checkout.session.expired"
	EventChargeRefunded                = "charge.refunded"
	EventChargeDisputeCreated          = "charge.dispute.created"
	EventChargeDisputeClosed           = "charge.dispute.closed"
	EventPaymentIntentSucceeded        = "payment_intent.succeeded"
	EventPaymentIntentPaymentFailed    = "payment_intent.payment_failed"
	EventSetupIntentSucceeded          = "setup_intent.succeeded"
)

// Event is a verified Stripe event. Object is data.object verbatim; the
// helper matching its "object" field is decoded, the others are nil.
type Event struct {
	ID         string
	Type       string
	Created    time.Time
	Livemode   bool
	APIVersion string
	Object     json.RawMessage

	CheckoutSession *CheckoutSession   // object "checkout.session"
	Charge          *ChargeInfo        // object "charge"
	Dispute         *DisputeInfo       // object "dispute"
	PaymentIntent   *PaymentIntentInfo // object "payment_intent"
}

// ChargeInfo is a charge from an event (charge.refunded, ...).
type ChargeInfo struct {
	ID              string
	PaymentIntentID string
	CustomerID      string
	Status          string
	Currency        string
	AmountMicros    int64 // 0 unless Currency is "usd", like every *Micros here
	// AmountRefundedMicros is cumulative over all refunds of the charge;
	// handle charge.refunded idempotently by crediting differences.
	AmountRefundedMicros int64
	Refunded             bool
	Disputed             bool
	ReceiptURL           string
	Metadata             map[string]string
	// Refunds is filled only when the event carries the list; since API
	// version 2022-11-15 Stripe omits it unless expanded, so do not rely
	// on it.
	Refunds []Refund
}

// DisputeInfo is a dispute from charge.dispute.* events.
type DisputeInfo struct {
	ID              string
	ChargeID        string
	PaymentIntentID string
	AmountMicros    int64
	Currency        string
	Reason          string
	Status          string
}

// PaymentIntentInfo is a PaymentIntent from payment_intent.* events.
type PaymentIntentInfo struct {
	ID                   string
	Status               string
	AmountMicros         int64
	AmountReceivedMicros int64
	Currency             string
	CustomerID           string
	PaymentMethodID      string
	LatestChargeID       string
	AccountID            string // metadata.account_id
	Kind                 string // metadata.kind
	Metadata             map[string]string
	// Last payment error, for payment_intent.payment_failed.
	LastErrorCode    string
	LastDeclineCode  string
	LastErrorMessage string
}

// ParseWebhook verifies the Stripe-Signature header (HMAC with the webhook
// secret, timestamp within WebhookTolerance either way) and decodes the
// event. Errors wrap ErrBadSignature, ErrBadPayload, ErrAPIVersionMismatch
// or ErrWebhookNotConfigured.
func (c *Client) ParseWebhook(payload []byte, sigHeader string) (Event, error) {
	if !c.WebhooksEnabled() {
		return Event{}, ErrWebhookNotConfigured
	}
	// stripe-go only refuses timestamps that are too old; a signed
	// timestamp far in the future is just as suspicious.
	if ts, ok := signatureTimestamp(sigHeader); ok && time.Until(ts) > WebhookTolerance {
		return Event{}, fmt.Errorf("%w: timestamp is more than %s in the future", ErrBadSignature, WebhookTolerance)
	}
	// We check the API version ourselves (same rule as stripe-go: the same
	// release train) so a mismatch is a typed error, not an opaque string
	// indistinguishable from a JSON error.
	ev, err := webhook.ConstructEventWithOptions(payload, sigHeader, c.webhookSecret, webhook.ConstructEventOptions{
		Tolerance:                WebhookTolerance,
		IgnoreAPIVersionMismatch: true,
	})
	if err != nil {
		switch {
		case errors.Is(err, webhook.ErrNotSigned), errors.Is(err, webhook.ErrInvalidHeader),
			errors.Is(err, webhook.ErrNoValidSignature), errors.Is(err, webhook.ErrTooOld):
			return Event{}, fmt.Errorf("%w: %w", ErrBadSignature, err)
		default:
			return Event{}, fmt.Errorf("%w: %w", ErrBadPayload, err)
		}
	}
	if !sameReleaseTrain(ev.APIVersion) {
		return Event{}, fmt.Errorf("%w: event %s has api_version %q", ErrAPIVersionMismatch, ev.ID, ev.APIVersion)
	}
	if ev.ID == "" || ev.Type == "" || ev.Data == nil || len(ev.Data.Raw) == 0 {
		return Event{}, fmt.Errorf("%w: event without id, type or data.object", ErrBadPayload)
	}
	out := Event{
		ID:         ev.ID,
		Type:       string(ev.Type),
		Created:    time.Unix(ev.Created, 0).UTC(),
		Livemode:   ev.Livemode,
		APIVersion: ev.APIVersion,
		Object:     ev.Data.Raw,
	}
	if err := out.decodeObject(); err != nil {
		return Event{}, fmt.Errorf("%w: event %s (%s): %w", ErrBadPayload, ev.ID, ev.Type, err)
	}
	return out, nil
}

// sameReleaseTrain reports whether an event's "YYYY-MM-DD.train" version
// is on APIVersionFamily's train (e.g. both "basil").
func sameReleaseTrain(v string) bool {
	_, train, ok := strings.Cut(v, ".")
	_, ours, _ := strings.Cut(APIVersionFamily, ".")
	return ok && train == ours
}

// signatureTimestamp extracts t= from a Stripe-Signature header.
func signatureTimestamp(header string) (time.Time, bool) {
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && k == "t" {
			sec, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			return time.Unix(sec, 0), true
		}
	}
	return time.Time{}, false
}

func (e *Event) decodeObject() error {
	var head struct {
		Object string `json:"object"`
	}
	if err := json.Unmarshal(e.Object, &head); err != nil {
		return err
	}
	switch head.Object {
	case "checkout.session":
		var s stripego.CheckoutSession
		if err := json.Unmarshal(e.Object, &s); err != nil {
			return err
		}
		cs := sessionFromStripe(&s)
		e.CheckoutSession = &cs
	case "charge":
		var ch stripego.Charge
		if err := json.Unmarshal(e.Object, &ch); err != nil {
			return err
		}
		e.Charge = chargeFromStripe(&ch)
	case "dispute":
		var d stripego.Dispute
		if err := json.Unmarshal(e.Object, &d); err != nil {
			return err
		}
		info := &DisputeInfo{
			ID:           d.ID,
			AmountMicros: usdMicros(d.Amount, d.Currency),
			Currency:     string(d.Currency),
			Reason:       string(d.Reason),
			Status:       string(d.Status),
		}
		if d.Charge != nil {
			info.ChargeID = d.Charge.ID
		}
		if d.PaymentIntent != nil {
			info.PaymentIntentID = d.PaymentIntent.ID
		}
		e.Dispute = info
	case "payment_intent":
		var pi stripego.PaymentIntent
		if err := json.Unmarshal(e.Object, &pi); err != nil {
			return err
		}
		e.PaymentIntent = paymentIntentFromStripe(&pi)
	}
	return nil
}

func chargeFromStripe(ch *stripego.Charge) *ChargeInfo {
	info := &ChargeInfo{
		ID:                   ch.ID,
		Status:               string(ch.Status),
		Currency:             string(ch.Currency),
		AmountMicros:         usdMicros(ch.Amount, ch.Currency),
		AmountRefundedMicros: usdMicros(ch.AmountRefunded, ch.Currency),
		Refunded:             ch.Refunded,
		Disputed:             ch.Disputed,
		ReceiptURL:           ch.ReceiptURL,
		Metadata:             ch.Metadata,
	}
	if ch.PaymentIntent != nil {
		info.PaymentIntentID = ch.PaymentIntent.ID
	}
	if ch.Customer != nil {
		info.CustomerID = ch.Customer.ID
	}
	if ch.Refunds != nil {
		for _, r := range ch.Refunds.Data {
			if r != nil {
				info.Refunds = append(info.Refunds, refundFromStripe(r))
			}
		}
	}
	return info
}

func paymentIntentFromStripe(pi *stripego.PaymentIntent) *PaymentIntentInfo {
	info := &PaymentIntentInfo{
		ID:                   pi.ID,
		Status:               string(pi.Status),
		AmountMicros:         usdMicros(pi.Amount, pi.Currency),
		AmountReceivedMicros: usdMicros(pi.AmountReceived, pi.Currency),
		Currency:             string(pi.Currency),
		AccountID:            pi.Metadata[MetaAccountID],
		Kind:                 pi.Metadata[MetaKind],
		Metadata:             pi.Metadata,
	}
	if pi.Customer != nil {
		info.CustomerID = pi.Customer.ID
	}
	if pi.PaymentMethod != nil {
		info.PaymentMethodID = pi.PaymentMethod.ID
	}
	if pi.LatestCharge != nil {
		info.LatestChargeID = pi.LatestCharge.ID
	}
	if le := pi.LastPaymentError; le != nil {
		info.LastErrorCode = string(le.Code)
		info.LastDeclineCode = string(le.DeclineCode)
		info.LastErrorMessage = le.Msg
	}
	return info
}
