package stripe

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/beaver-gateway/beaver/internal/money"
	stripego "github.com/stripe/stripe-go/v82"
)

// TopUpCheckout asks for a hosted Checkout page that charges AmountMicros
// to the card and later credits the account.
type TopUpCheckout struct {
	AccountID string
	// Email prefills the Checkout form; ignored when CustomerID is set
	// (Stripe accepts only one of customer and customer_email).
	Email      string
	CustomerID string
	// AmountMicros must be a whole number of cents within the configured
	// bounds.
	AmountMicros int64
	// IdempotencyKey is sent as Stripe's Idempotency-Key: the same key
	// within 24 h returns the same session. Empty = stripe-go picks one
	// (which only protects its own network retries).
	IdempotencyKey string
	// SuccessURL and CancelURL override Config's for this session.
	SuccessURL, CancelURL string
}

// SetupCheckout asks for a hosted Checkout page in setup mode that saves a
// card for off-session auto-recharge.
type SetupCheckout struct {
	AccountID string
	Email     string
	// CustomerID is the account's Stripe Customer; empty = create one.
	CustomerID     string
	IdempotencyKey string
	// SuccessURL and CancelURL override Config's for this session.
	SuccessURL, CancelURL string
}

// Checkout is a created Checkout Session: send the user to URL.
type Checkout struct {
	ID         string
	URL        string
	CustomerID string // the Customer the session is for, if any
	ExpiresAt  time.Time
}

// CheckoutSession is what we read back from Stripe about a session, from
// the API or from a webhook event.
type CheckoutSession struct {
	ID            string
	Mode          string // payment | setup | subscription
	Status        string // open | complete | expired
	PaymentStatus string // paid | unpaid | no_payment_required
	// AmountTotalMicros is amount_total in micro-USD; 0 unless Currency is
	// "usd" (we never credit another currency by accident).
	AmountTotalMicros int64
	Currency          string
	// RequestedAmountMicros is metadata.amount_micros as we sent it (0 if
	// absent): what we asked for, to compare with what was paid.
	RequestedAmountMicros int64
	// AccountID is client_reference_id, else metadata.account_id.
	AccountID       string
	Kind            string // metadata.kind: "topup" or "setup"
	CustomerID      string
	CustomerEmail   string
	PaymentIntentID string
	SetupIntentID   string
	// PaymentMethodID is the saved card, when the SetupIntent was expanded.
	PaymentMethodID string
	InvoiceID       string
	// InvoiceURL is the hosted_invoice_url, when the invoice was expanded.
	InvoiceURL string
	// ReceiptURL is the charge's receipt, when the PaymentIntent's
	// latest_charge was expanded.
	ReceiptURL string
	Livemode   bool
	Metadata   map[string]string
}

// validateTopUpAmount enforces whole cents and the configured bounds.
func (c *Client) validateTopUpAmount(micros int64) error {
	if micros <= 0 {
		return &ValidationError{Field: "amount", Message: "amount must be positive"}
	}
	if micros%MicrosPerCent != 0 {
		return &ValidationError{Field: "amount", Message: "amount must be a whole number of cents (at most 2 decimals)"}
	}
	if micros < c.minMicros || micros > c.maxMicros {
		return &ValidationError{Field: "amount", Message: fmt.Sprintf("amount must be between %s and %s USD",
			money.Format(c.minMicros), money.Format(c.maxMicros))}
	}
	return nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// CreateTopUpCheckout creates a payment-mode Checkout Session for a top-up.
// The account id goes into client_reference_id and metadata (also on the
// PaymentIntent and the invoice) so every later event can be attributed.
func (c *Client) CreateTopUpCheckout(ctx context.Context, in TopUpCheckout) (Checkout, error) {
	if !c.Enabled() {
		return Checkout{}, ErrDisabled
	}
	if strings.TrimSpace(in.AccountID) == "" {
		return Checkout{}, &ValidationError{Field: "account_id", Message: "account id is required"}
	}
	if err := c.validateTopUpAmount(in.AmountMicros); err != nil {
		return Checkout{}, err
	}
	cents, _ := MicrosToCents(in.AmountMicros) // whole cents: validated above

	meta := map[string]string{
		MetaAccountID:    in.AccountID,
		MetaAmountMicros: strconv.FormatInt(in.AmountMicros, 10),
		MetaKind:         KindTopUp,
	}
	desc := fmt.Sprintf("Beaver balance top-up of %s USD", money.Format(in.AmountMicros))
	params := &stripego.CheckoutSessionCreateParams{
		Mode:              stripego.String(string(stripego.CheckoutSessionModePayment)),
		ClientReferenceID: stripego.String(in.AccountID),
		LineItems: []*stripego.CheckoutSessionCreateLineItemParams{{
			Quantity: stripego.Int64(1),
			PriceData: &stripego.CheckoutSessionCreateLineItemPriceDataParams{
				Currency:   stripego.String(string(stripego.CurrencyUSD)),
				UnitAmount: stripego.Int64(cents),
				ProductData: &stripego.CheckoutSessionCreateLineItemPriceDataProductDataParams{
					Name: stripego.String(TopUpProductName),
				},
			},
		}},
		Metadata: meta,
		PaymentIntentData: &stripego.CheckoutSessionCreatePaymentIntentDataParams{
			Description: stripego.String(desc),
			Metadata:    meta,
		},
		InvoiceCreation: &stripego.CheckoutSessionCreateInvoiceCreationParams{
			Enabled: stripego.Bool(true),
			InvoiceData: &stripego.CheckoutSessionCreateInvoiceCreationInvoiceDataParams{
				Description: stripego.String(desc),
				Metadata:    meta,
			},
		},
		// Adaptive Pricing would let the customer pay (and amount_total be)
		// in a local currency; balances are USD, so keep the session in USD.
		AdaptivePricing: &stripego.CheckoutSessionCreateAdaptivePricingParams{Enabled: stripego.Bool(false)},
	}
	if in.CustomerID != "" {
		params.Customer = stripego.String(in.CustomerID)
	} else if in.Email != "" {
		params.CustomerEmail = stripego.String(in.Email)
	}
	c.setReturnURLs(params, in.SuccessURL, in.CancelURL)
	if in.IdempotencyKey != "" {
		params.SetIdempotencyKey(in.IdempotencyKey)
	}
	s, err := c.sc.V1CheckoutSessions.Create(ctx, params)
	if err != nil {
		return Checkout{}, wrapStripeErr("create top-up checkout session", err)
	}
	return checkoutFromStripe(s, in.CustomerID), nil
}

// CreateSetupCheckout creates a setup-mode Checkout Session that saves a
// card on the account's Customer for off-session auto-recharge, creating
// the Customer first when in.CustomerID is empty. If the Customer was
// created but the session failed, the returned Checkout still carries
// CustomerID so the caller can keep it.
func (c *Client) CreateSetupCheckout(ctx context.Context, in SetupCheckout) (Checkout, error) {
	if !c.Enabled() {
		return Checkout{}, ErrDisabled
	}
	if strings.TrimSpace(in.AccountID) == "" {
		return Checkout{}, &ValidationError{Field: "account_id", Message: "account id is required"}
	}
	customerID := in.CustomerID
	if customerID == "" {
		cp := &stripego.CustomerCreateParams{
			Metadata: map[string]string{MetaAccountID: in.AccountID},
		}
		if in.Email != "" {
			cp.Email = stripego.String(in.Email)
		}
		if in.IdempotencyKey != "" {
			// A derived key: a retried setup reuses the same Customer.
			cp.SetIdempotencyKey(in.IdempotencyKey + "/customer")
		}
		cust, err := c.sc.V1Customers.Create(ctx, cp)
		if err != nil {
			return Checkout{}, wrapStripeErr("create customer", err)
		}
		customerID = cust.ID
	}

	meta := map[string]string{
		MetaAccountID: in.AccountID,
		MetaKind:      KindSetup,
	}
	params := &stripego.CheckoutSessionCreateParams{
		Mode:              stripego.String(string(stripego.CheckoutSessionModeSetup)),
		Customer:          stripego.String(customerID),
		ClientReferenceID: stripego.String(in.AccountID),
		// Off-session recharge charges cards; other methods would need
		// their own mandates and async flows.
		PaymentMethodTypes: stripego.StringSlice([]string{"card"}),
		Currency:           stripego.String(string(stripego.CurrencyUSD)),
		Metadata:           meta,
		SetupIntentData: &stripego.CheckoutSessionCreateSetupIntentDataParams{
			Description: stripego.String("Beaver auto-recharge card"),
			Metadata:    meta,
		},
	}
	c.setReturnURLs(params, in.SuccessURL, in.CancelURL)
	if in.IdempotencyKey != "" {
		params.SetIdempotencyKey(in.IdempotencyKey)
	}
	s, err := c.sc.V1CheckoutSessions.Create(ctx, params)
	if err != nil {
		return Checkout{CustomerID: customerID}, wrapStripeErr("create setup checkout session", err)
	}
	return checkoutFromStripe(s, customerID), nil
}

func (c *Client) setReturnURLs(p *stripego.CheckoutSessionCreateParams, success, cancel string) {
	if u := firstNonEmpty(success, c.successURL); u != "" {
		p.SuccessURL = stripego.String(u)
	}
	if u := firstNonEmpty(cancel, c.cancelURL); u != "" {
		p.CancelURL = stripego.String(u)
	}
}

func checkoutFromStripe(s *stripego.CheckoutSession, customerID string) Checkout {
	out := Checkout{ID: s.ID, URL: s.URL, CustomerID: customerID}
	if s.Customer != nil && s.Customer.ID != "" {
		out.CustomerID = s.Customer.ID
	}
	if s.ExpiresAt > 0 {
		out.ExpiresAt = time.Unix(s.ExpiresAt, 0).UTC()
	}
	return out
}

// GetCheckoutSession reads a session with its invoice, SetupIntent and the
// PaymentIntent's latest charge expanded (for the invoice and receipt URLs
// and the saved card).
func (c *Client) GetCheckoutSession(ctx context.Context, id string) (CheckoutSession, error) {
	if !c.Enabled() {
		return CheckoutSession{}, ErrDisabled
	}
	if id == "" {
		return CheckoutSession{}, &ValidationError{Field: "session_id", Message: "checkout session id is required"}
	}
	params := &stripego.CheckoutSessionRetrieveParams{}
	params.AddExpand("invoice")
	params.AddExpand("setup_intent")
	params.AddExpand("payment_intent.latest_charge")
	s, err := c.sc.V1CheckoutSessions.Retrieve(ctx, id, params)
	if err != nil {
		return CheckoutSession{}, wrapStripeErr("retrieve checkout session "+id, err)
	}
	return sessionFromStripe(s), nil
}

// sessionFromStripe flattens a session; expanded objects fill the URL
// fields, bare ids only the ID fields.
func sessionFromStripe(s *stripego.CheckoutSession) CheckoutSession {
	out := CheckoutSession{
		ID:            s.ID,
		Mode:          string(s.Mode),
		Status:        string(s.Status),
		PaymentStatus: string(s.PaymentStatus),
		Currency:      string(s.Currency),
		AccountID:     firstNonEmpty(s.ClientReferenceID, s.Metadata[MetaAccountID]),
		Kind:          s.Metadata[MetaKind],
		CustomerEmail: s.CustomerEmail,
		Livemode:      s.Livemode,
		Metadata:      s.Metadata,
	}
	out.AmountTotalMicros = usdMicros(s.AmountTotal, s.Currency)
	if cc := s.CurrencyConversion; cc != nil && cc.SourceCurrency == stripego.CurrencyUSD {
		// Adaptive Pricing charged a local currency; the USD amount we
		// priced is the source amount.
		out.Currency = string(cc.SourceCurrency)
		out.AmountTotalMicros = CentsToMicros(cc.AmountTotal)
	}
	if v, err := strconv.ParseInt(s.Metadata[MetaAmountMicros], 10, 64); err == nil && v > 0 {
		out.RequestedAmountMicros = v
	}
	if s.CustomerDetails != nil && s.CustomerDetails.Email != "" {
		out.CustomerEmail = s.CustomerDetails.Email
	}
	if s.Customer != nil {
		out.CustomerID = s.Customer.ID
	}
	if pi := s.PaymentIntent; pi != nil {
		out.PaymentIntentID = pi.ID
		if pi.LatestCharge != nil {
			out.ReceiptURL = pi.LatestCharge.ReceiptURL
		}
	}
	if si := s.SetupIntent; si != nil {
		out.SetupIntentID = si.ID
		if si.PaymentMethod != nil {
			out.PaymentMethodID = si.PaymentMethod.ID
		}
	}
	if inv := s.Invoice; inv != nil {
		out.InvoiceID = inv.ID
		out.InvoiceURL = inv.HostedInvoiceURL
	}
	return out
}
