package stripe

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/beaver-gateway/beaver/internal/money"
	stripego "github.com/stripe/stripe-go/v82"
)

// OffSessionCharge charges a saved card without the customer present
// (auto-recharge).
type OffSessionCharge struct {
	AccountID       string
	CustomerID      string
	PaymentMethodID string
	// AmountMicros must be a whole number of cents within the top-up bounds.
	AmountMicros int64
	// IdempotencyKey should be stable per recharge attempt (e.g. the
	// workflow id) so a retried activity never charges twice.
	IdempotencyKey string
}

// PaymentResult is the outcome of an off-session charge.
type PaymentResult struct {
	PaymentIntentID string
	Status          string // succeeded | processing | requires_action | ...
	ChargeID        string
	ReceiptURL      string
	AmountMicros    int64
}

// RefundInput refunds (part of) a PaymentIntent's charge.
type RefundInput struct {
	PaymentIntentID string
	// AmountMicros must be whole cents; 0 refunds everything not yet
	// refunded.
	AmountMicros   int64
	IdempotencyKey string
	// Reason is optional: duplicate, fraudulent or requested_by_customer.
	Reason string
}

// Refund is a created refund. Status is pending, requires_action,
// succeeded, failed or canceled; card refunds usually succeed at once.
type Refund struct {
	ID              string
	Status          string
	AmountMicros    int64
	ChargeID        string
	PaymentIntentID string
	Reason          string
}

// ChargeOffSession creates and confirms an off-session PaymentIntent on a
// saved card. A card failure is a *DeclineError (authentication_required
// included: the customer must come back on-session); the PaymentResult is
// still filled when Stripe reported the failed PaymentIntent.
func (c *Client) ChargeOffSession(ctx context.Context, in OffSessionCharge) (PaymentResult, error) {
	if !c.Enabled() {
		return PaymentResult{}, ErrDisabled
	}
	switch {
	case strings.TrimSpace(in.AccountID) == "":
		return PaymentResult{}, &ValidationError{Field: "account_id", Message: "account id is required"}
	case in.CustomerID == "":
		return PaymentResult{}, &ValidationError{Field: "customer_id", Message: "customer id is required"}
	case in.PaymentMethodID == "":
		return PaymentResult{}, &ValidationError{Field: "payment_method_id", Message: "payment method id is required"}
	}
	if err := c.validateTopUpAmount(in.AmountMicros); err != nil {
		return PaymentResult{}, err
	}
	cents, _ := MicrosToCents(in.AmountMicros)

	params := &stripego.PaymentIntentCreateParams{
		Amount:        stripego.Int64(cents),
		Currency:      stripego.String(string(stripego.CurrencyUSD)),
		Customer:      stripego.String(in.CustomerID),
		PaymentMethod: stripego.String(in.PaymentMethodID),
		OffSession:    stripego.Bool(true),
		Confirm:       stripego.Bool(true),
		Description:   stripego.String(fmt.Sprintf("Beaver auto-recharge of %s USD", money.Format(in.AmountMicros))),
		Metadata: map[string]string{
			MetaAccountID:    in.AccountID,
			MetaAmountMicros: strconv.FormatInt(in.AmountMicros, 10),
			MetaKind:         KindAutoRecharge,
		},
	}
	params.AddExpand("latest_charge")
	if in.IdempotencyKey != "" {
		params.SetIdempotencyKey(in.IdempotencyKey)
	}
	pi, err := c.sc.V1PaymentIntents.Create(ctx, params)
	if err != nil {
		err = wrapStripeErr("create off-session payment intent", err)
		if d, ok := err.(*DeclineError); ok {
			return PaymentResult{PaymentIntentID: d.PaymentIntentID, Status: d.PaymentIntentStatus, ChargeID: d.ChargeID}, d
		}
		return PaymentResult{}, err
	}
	res := PaymentResult{
		PaymentIntentID: pi.ID,
		Status:          string(pi.Status),
		AmountMicros:    usdMicros(pi.Amount, pi.Currency),
	}
	if ch := pi.LatestCharge; ch != nil {
		res.ChargeID = ch.ID
		res.ReceiptURL = ch.ReceiptURL
	}
	switch pi.Status {
	case stripego.PaymentIntentStatusSucceeded, stripego.PaymentIntentStatusProcessing:
		return res, nil
	case stripego.PaymentIntentStatusRequiresAction:
		// Stripe normally answers off-session authentication with a card
		// error, but the status is the authority.
		return res, &DeclineError{Code: "authentication_required", Message: "the card requires authentication",
			PaymentIntentID: pi.ID, PaymentIntentStatus: string(pi.Status), ChargeID: res.ChargeID}
	default:
		d := &DeclineError{Code: "payment_failed", Message: "payment intent ended in status " + string(pi.Status),
			PaymentIntentID: pi.ID, PaymentIntentStatus: string(pi.Status), ChargeID: res.ChargeID}
		if le := pi.LastPaymentError; le != nil {
			if le.Code != "" {
				d.Code = string(le.Code)
			}
			if le.Msg != "" {
				d.Message = le.Msg
			}
			d.DeclineCode = string(le.DeclineCode)
		}
		d.Retryable = declineRetryable(d.Code, d.DeclineCode)
		return res, d
	}
}

// DefaultPaymentMethod returns the card a completed setup saved: the
// SetupIntent's payment_method. It refuses a SetupIntent that has not
// succeeded or belongs to another Customer.
func (c *Client) DefaultPaymentMethod(ctx context.Context, customerID, setupIntentID string) (string, error) {
	if !c.Enabled() {
		return "", ErrDisabled
	}
	if setupIntentID == "" {
		return "", &ValidationError{Field: "setup_intent_id", Message: "setup intent id is required"}
	}
	si, err := c.sc.V1SetupIntents.Retrieve(ctx, setupIntentID, nil)
	if err != nil {
		return "", wrapStripeErr("retrieve setup intent "+setupIntentID, err)
	}
	if customerID != "" && si.Customer != nil && si.Customer.ID != "" && si.Customer.ID != customerID {
		return "", fmt.Errorf("payments: setup intent %s belongs to customer %s, not %s", si.ID, si.Customer.ID, customerID)
	}
	if si.Status != stripego.SetupIntentStatusSucceeded {
		return "", fmt.Errorf("payments: setup intent %s is %s, not succeeded", si.ID, si.Status)
	}
	if si.PaymentMethod == nil || si.PaymentMethod.ID == "" {
		return "", fmt.Errorf("payments: setup intent %s has no payment method", si.ID)
	}
	return si.PaymentMethod.ID, nil
}

// Refund refunds a PaymentIntent's charge. Stripe refuses more than the
// charge's unrefunded amount (APIError code amount_too_large or
// charge_already_refunded).
func (c *Client) Refund(ctx context.Context, in RefundInput) (Refund, error) {
	if !c.Enabled() {
		return Refund{}, ErrDisabled
	}
	if in.PaymentIntentID == "" {
		return Refund{}, &ValidationError{Field: "payment_intent_id", Message: "payment intent id is required"}
	}
	if in.AmountMicros < 0 {
		return Refund{}, &ValidationError{Field: "amount", Message: "refund amount must not be negative"}
	}
	params := &stripego.RefundCreateParams{PaymentIntent: stripego.String(in.PaymentIntentID)}
	if in.AmountMicros > 0 {
		cents, err := MicrosToCents(in.AmountMicros)
		if err != nil {
			return Refund{}, &ValidationError{Field: "amount", Message: "refund amount must be a whole number of cents"}
		}
		params.Amount = stripego.Int64(cents)
	}
	if in.Reason != "" {
		params.Reason = stripego.String(in.Reason)
	}
	if in.IdempotencyKey != "" {
		params.SetIdempotencyKey(in.IdempotencyKey)
	}
	r, err := c.sc.V1Refunds.Create(ctx, params)
	if err != nil {
		return Refund{}, wrapStripeErr("create refund for "+in.PaymentIntentID, err)
	}
	return refundFromStripe(r), nil
}

func refundFromStripe(r *stripego.Refund) Refund {
	out := Refund{
		ID:           r.ID,
		Status:       string(r.Status),
		AmountMicros: usdMicros(r.Amount, r.Currency),
		Reason:       string(r.Reason),
	}
	if r.Charge != nil {
		out.ChargeID = r.Charge.ID
	}
	if r.PaymentIntent != nil {
		out.PaymentIntentID = r.PaymentIntent.ID
	}
	return out
}
