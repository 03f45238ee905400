package payments

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/invoices"
	"github.com/beaver-gateway/beaver/internal/mail"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/payments/stripe"
	"github.com/beaver-gateway/beaver/models"
)

// Card top-ups: a Checkout Session is created for an amount (a pending
// top_ups row); Stripe's events start TopUpSettlementWorkflow, which reads
// the session back (CheckoutSession), credits a paid one once (CreditTopUp),
// marks a failed or expired one (MarkTopUp) and emails a receipt.

// CardAmount checks an amount to charge a card (a top-up, an auto-recharge):
// whole cents, within the configured top-up bounds.
func (s *Service) CardAmount(micros int64) (int64, error) {
	lo, hi := s.d.Stripe.TopUpBounds()
	switch {
	case micros%stripe.MicrosPerCent != 0:
		return 0, fail(ErrInvalid, "amount_usd must be a whole number of cents (at most 2 decimals)")
	case micros < lo || micros > hi:
		return 0, fail(ErrInvalid, fmt.Sprintf("amount_usd must be between %s and %s", money.Format(lo), money.Format(hi)))
	}
	return micros, nil
}

// TopUpRequest asks for a Checkout page that charges AmountMicros.
type TopUpRequest struct {
	Account      *models.Account
	AmountMicros int64
	// IdempotencyKey (optional, the caller's): the same key returns the same
	// session; scoped to the account.
	IdempotencyKey string
}

// Checkout is a created Checkout Session: send the user to URL.
type Checkout = stripe.Checkout

// CreateTopUpCheckout creates a Stripe Checkout Session for the amount and
// records a pending top-up. The account id goes into client_reference_id
// and metadata.account_id.
func (s *Service) CreateTopUpCheckout(ctx context.Context, r TopUpRequest) (Checkout, error) {
	if !s.Enabled() {
		return Checkout{}, ErrDisabled
	}
	amount, err := s.CardAmount(r.AmountMicros)
	if err != nil {
		return Checkout{}, err
	}
	acct := r.Account
	in := stripe.TopUpCheckout{AccountID: acct.ID, Email: acct.Email, AmountMicros: amount}
	if acct.StripeCustomerID != nil {
		in.CustomerID = *acct.StripeCustomerID
	}
	if r.IdempotencyKey != "" {
		// Scoped per account: two accounts can never share a session.
		in.IdempotencyKey = "topup-checkout:" + acct.ID + ":" + r.IdempotencyKey
	}
	if base := s.d.PublicURL; base != "" {
		in.SuccessURL = base + "/billing?topup=success&session_id={CHECKOUT_SESSION_ID}"
		in.CancelURL = base + "/billing?topup=cancelled"
	}
	co, err := s.d.Stripe.CreateTopUpCheckout(ctx, in)
	if err != nil {
		return Checkout{}, stripeError(err)
	}
	now := time.Now().UTC()
	row := models.TopUp{ID: ids.New("tu"), AccountID: acct.ID, CheckoutSessionID: co.ID,
		AmountMicros: amount, Status: models.TopUpPending, CreatedAt: now, UpdatedAt: now}
	if err := s.d.DB.WithContext(ctx).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "checkout_session_id"}},
		DoNothing: true}).Create(&row).Error; err != nil {
		return Checkout{}, fmt.Errorf("record top-up: %w", err)
	}
	return co, nil
}

// CheckoutSession is what Stripe says about a session now.
type CheckoutSession = stripe.CheckoutSession

// CheckoutSession reads a session from Stripe (a webhook payload is only a
// hint; the API is the authority on payment_status and amount). A session
// that cannot be read ever (payments disabled, a bad or unknown id) is
// ErrInvalid.
func (s *Service) CheckoutSession(ctx context.Context, sessionID string) (CheckoutSession, error) {
	cs, err := s.d.Stripe.GetCheckoutSession(ctx, sessionID)
	if err != nil {
		var ve *stripe.ValidationError
		var ae *stripe.APIError
		if errors.Is(err, stripe.ErrDisabled) || errors.As(err, &ve) ||
			(errors.As(err, &ae) && !ae.Retryable && ae.HTTPStatus == 404) {
			return CheckoutSession{}, failWith(ErrInvalid, err.Error(), err)
		}
		return CheckoutSession{}, err
	}
	return cs, nil
}

// PaidTopUp is a paid session to credit.
type PaidTopUp struct {
	SessionID       string
	AccountID       string
	AmountMicros    int64
	PaymentIntentID string
	InvoiceURL      string
	ReceiptURL      string
}

// CreditTopUp credits the account once per session (ledger reference
// stripe:checkout:<session>) and marks the top_ups row paid.
func (s *Service) CreditTopUp(ctx context.Context, p PaidTopUp) (Credited, error) {
	if p.SessionID == "" || p.AccountID == "" || p.AmountMicros <= 0 {
		return Credited{}, fail(ErrInvalid, "credit needs a session, an account and a positive amount")
	}
	return s.credit(ctx, cardCredit{AccountID: p.AccountID, AmountMicros: p.AmountMicros,
		Reference: TopUpLedgerReference(p.SessionID), Description: fmt.Sprintf("Card top-up of %s USD (Stripe)", money.Format(p.AmountMicros)),
		SessionID: p.SessionID, PaymentIntentID: p.PaymentIntentID, InvoiceURL: p.InvoiceURL, ReceiptURL: p.ReceiptURL})
}

// ClosedTopUp is a session that will not be credited.
type ClosedTopUp struct {
	SessionID       string
	AccountID       string
	AmountMicros    int64
	PaymentIntentID string
	Status          string // models.TopUpFailed or models.TopUpExpired
}

// MarkTopUp records a session that will not be credited and returns the
// row's status afterwards: a paid row is never downgraded.
func (s *Service) MarkTopUp(ctx context.Context, c ClosedTopUp) (string, error) {
	if c.SessionID == "" || c.AccountID == "" || (c.Status != models.TopUpFailed && c.Status != models.TopUpExpired) {
		return "", fail(ErrInvalid, "mark needs a session, an account and failed|expired")
	}
	if err := s.upsertTopUp(ctx, models.TopUp{AccountID: c.AccountID, CheckoutSessionID: c.SessionID,
		PaymentIntentID: c.PaymentIntentID, AmountMicros: c.AmountMicros, Status: c.Status}); err != nil {
		return "", err
	}
	var row models.TopUp
	if err := s.d.DB.WithContext(ctx).Where("checkout_session_id = ?", c.SessionID).Take(&row).Error; err != nil {
		return "", err
	}
	return row.Status, nil
}

// TopUpReceipt is a credited top-up to confirm by email.
type TopUpReceipt struct {
	SessionID          string
	AccountID          string
	AmountMicros       int64
	BalanceAfterMicros int64
	EntryID            string
}

// SendTopUpReceipt emails the receipt; its idempotency key is the session,
// so a retried send is dropped by the provider. A refusal the mail
// provider will repeat is mail.IsPermanent.
func (s *Service) SendTopUpReceipt(ctx context.Context, r TopUpReceipt) error {
	acct, err := s.accountEmail(ctx, r.AccountID)
	if err != nil || s.d.Mailer == nil || acct.Email == "" {
		return err
	}
	msg := mail.TopUpReceipt(acct.Email, mail.Receipt{AmountMicros: r.AmountMicros, BalanceMicros: r.BalanceAfterMicros,
		Reference: r.EntryID, At: time.Now().UTC(), Link: s.d.PublicURL + "/billing"})
	msg.IdempotencyKey = "topup-receipt:" + r.SessionID
	if s.d.Invoices != nil && r.EntryID != "" {
		att, err := s.invoiceAttachment(ctx, r.EntryID)
		if err != nil {
			return err
		}
		msg.Attachments = append(msg.Attachments, att...)
	}
	return s.d.Mailer.Send(ctx, msg)
}

// invoiceAttachment renders the invoice the credit issued, as issued (a
// credit from before invoicing began has none: nothing to attach).
func (s *Service) invoiceAttachment(ctx context.Context, entryID string) ([]mail.Attachment, error) {
	inv, err := s.d.Invoices.ForLedgerEntry(ctx, entryID)
	if errors.Is(err, invoices.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	doc, err := s.d.Invoices.Load(ctx, inv)
	if err != nil {
		return nil, err
	}
	pdf, err := invoices.RenderPDF(doc, invoices.PDFOptions{Compress: true})
	if err != nil {
		return nil, err
	}
	return []mail.Attachment{{Filename: inv.Number + ".pdf", ContentType: "application/pdf", Content: pdf}}, nil
}

// TopUps lists an account's card top-ups, newest first.
func (s *Service) TopUps(ctx context.Context, accountID string, limit int) ([]models.TopUp, error) {
	var rows []models.TopUp
	if err := s.d.DB.WithContext(ctx).Where("account_id = ?", accountID).
		Order("created_at DESC, id DESC").Limit(limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("card top-ups: %w", err)
	}
	return rows, nil
}

// accountEmail loads an account's id and email; a missing account is
// ErrNotFound (retrying cannot make it appear).
func (s *Service) accountEmail(ctx context.Context, id string) (*models.Account, error) {
	var acct models.Account
	if err := s.d.DB.WithContext(ctx).Select("id", "email").Where("id = ?", id).Take(&acct).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, fail(ErrNotFound, "account not found")
		}
		return nil, err
	}
	return &acct, nil
}
