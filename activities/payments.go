package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/temporal"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/mail"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/payments"
	"github.com/beaver-gateway/beaver/models"
)

// Top-up statuses (top_ups.status).
const (
	TopUpPending = "pending"
	TopUpPaid    = "paid"
	TopUpFailed  = "failed"
	TopUpExpired = "expired"
)

// ErrTypeTopUpMismatch: a Checkout Session cannot be credited as it is
// (another account's ledger reference, unknown account...). Not retried;
// an operator looks at it.
const ErrTypeTopUpMismatch = "TopUpMismatch"

// TopUp is a row of top_ups: one card top-up through one Checkout Session.
type TopUp struct {
	ID                string `gorm:"primaryKey"`
	AccountID         string
	CheckoutSessionID string
	PaymentIntentID   string
	AmountMicros      int64
	Status            string
	LedgerEntryID     string
	InvoiceURL        string
	ReceiptURL        string
	RefundedMicros    int64
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// TableName is top_ups.
func (TopUp) TableName() string { return "top_ups" }

// TopUpLedgerReference is the ledger reference of a Checkout Session's
// credit: posting it twice credits once.
func TopUpLedgerReference(sessionID string) string { return "stripe:checkout:" + sessionID }

// PaymentActivities are the side effects of card top-ups. Fields an
// activity does not use may be nil (tests).
type PaymentActivities struct {
	DB        *db.DB
	Ledger    *billing.Ledger
	Payments  *payments.Client
	Mailer    mail.Sender
	PublicURL string // base of the billing link in receipts
	Log       *slog.Logger
}

func (p *PaymentActivities) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.Default()
}

// GetCheckoutSessionInput names a Checkout Session.
type GetCheckoutSessionInput struct {
	SessionID string
}

// GetCheckoutSessionResult is what Stripe says about it now.
type GetCheckoutSessionResult struct {
	Session payments.CheckoutSession
}

// GetCheckoutSession reads the session from Stripe (the webhook payload is
// only a hint; the API is the authority on payment_status and amount).
func (p *PaymentActivities) GetCheckoutSession(ctx context.Context, in GetCheckoutSessionInput) (GetCheckoutSessionResult, error) {
	s, err := p.Payments.GetCheckoutSession(ctx, in.SessionID)
	if err != nil {
		var ve *payments.ValidationError
		var ae *payments.APIError
		switch {
		case errors.Is(err, payments.ErrDisabled), errors.As(err, &ve):
			return GetCheckoutSessionResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadInput, nil)
		case errors.As(err, &ae) && !ae.Retryable && ae.HTTPStatus == 404:
			return GetCheckoutSessionResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadInput, nil)
		}
		return GetCheckoutSessionResult{}, err
	}
	// Secrets never travel in a session object; metadata is ours.
	return GetCheckoutSessionResult{Session: s}, nil
}

// CreditTopUpInput is a paid session to credit.
type CreditTopUpInput struct {
	SessionID       string
	AccountID       string
	AmountMicros    int64
	PaymentIntentID string
	InvoiceURL      string
	ReceiptURL      string
}

// CreditTopUpResult is the ledger entry (new or the earlier one).
type CreditTopUpResult struct {
	EntryID            string
	BalanceAfterMicros int64
	// Created is false when an earlier attempt already credited.
	Created bool
}

// CreditTopUp credits the account once per session (ledger reference
// stripe:checkout:<session>) and marks the top_ups row paid. Safe to retry
// and to run concurrently.
func (p *PaymentActivities) CreditTopUp(ctx context.Context, in CreditTopUpInput) (CreditTopUpResult, error) {
	if in.SessionID == "" || in.AccountID == "" || in.AmountMicros <= 0 {
		return CreditTopUpResult{}, temporal.NewNonRetryableApplicationError("credit needs a session, an account and a positive amount", ErrTypeBadInput, nil)
	}
	entry, created, err := p.Ledger.Post(ctx, billing.Entry{
		AccountID:    in.AccountID,
		Type:         models.EntryTopUp,
		AmountMicros: in.AmountMicros,
		Reference:    TopUpLedgerReference(in.SessionID),
		Description:  fmt.Sprintf("Card top-up of %s USD (Stripe)", money.Format(in.AmountMicros)),
	})
	if err != nil {
		if e, ok := apierr.As(err); ok && (e.Status == 404 || e.Status == 409 || e.Status == 400) {
			return CreditTopUpResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeTopUpMismatch, nil)
		}
		return CreditTopUpResult{}, err
	}
	if err := p.upsertTopUp(ctx, TopUp{AccountID: in.AccountID, CheckoutSessionID: in.SessionID,
		PaymentIntentID: in.PaymentIntentID, AmountMicros: in.AmountMicros, Status: TopUpPaid,
		LedgerEntryID: entry.ID, InvoiceURL: in.InvoiceURL, ReceiptURL: in.ReceiptURL}); err != nil {
		return CreditTopUpResult{}, err
	}
	if created {
		p.log().Info("card top-up credited", "account_id", in.AccountID, "session_id", in.SessionID,
			"amount_micros", in.AmountMicros, "entry_id", entry.ID)
	}
	return CreditTopUpResult{EntryID: entry.ID, BalanceAfterMicros: entry.BalanceAfterMicros, Created: created}, nil
}

// MarkTopUpInput moves a session's row to Status (failed or expired).
type MarkTopUpInput struct {
	SessionID       string
	AccountID       string
	AmountMicros    int64
	PaymentIntentID string
	Status          string
}

// MarkTopUpResult reports the row's status afterwards.
type MarkTopUpResult struct {
	Status string
}

// MarkTopUp records a session that will not be credited. A paid row is
// never downgraded.
func (p *PaymentActivities) MarkTopUp(ctx context.Context, in MarkTopUpInput) (MarkTopUpResult, error) {
	if in.SessionID == "" || in.AccountID == "" || (in.Status != TopUpFailed && in.Status != TopUpExpired) {
		return MarkTopUpResult{}, temporal.NewNonRetryableApplicationError("mark needs a session, an account and failed|expired", ErrTypeBadInput, nil)
	}
	if err := p.upsertTopUp(ctx, TopUp{AccountID: in.AccountID, CheckoutSessionID: in.SessionID,
		PaymentIntentID: in.PaymentIntentID, AmountMicros: in.AmountMicros, Status: in.Status}); err != nil {
		return MarkTopUpResult{}, err
	}
	var row TopUp
	if err := p.DB.WithContext(ctx).Where("checkout_session_id = ?", in.SessionID).Take(&row).Error; err != nil {
		return MarkTopUpResult{}, err
	}
	return MarkTopUpResult{Status: row.Status}, nil
}

// upsertTopUp inserts the session's row or updates it. A paid row keeps
// its status; empty strings never overwrite known values.
func (p *PaymentActivities) upsertTopUp(ctx context.Context, r TopUp) error {
	now := time.Now().UTC()
	r.ID, r.CreatedAt, r.UpdatedAt = ids.New("tu"), now, now
	return p.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "checkout_session_id"}}, DoNothing: true}).
			Create(&r).Error; err != nil {
			return err
		}
		set := map[string]any{"updated_at": now}
		if r.PaymentIntentID != "" {
			set["payment_intent_id"] = r.PaymentIntentID
		}
		if r.AmountMicros > 0 {
			set["amount_micros"] = r.AmountMicros
		}
		if r.LedgerEntryID != "" {
			set["ledger_entry_id"] = r.LedgerEntryID
		}
		if r.InvoiceURL != "" {
			set["invoice_url"] = r.InvoiceURL
		}
		if r.ReceiptURL != "" {
			set["receipt_url"] = r.ReceiptURL
		}
		q := tx.Model(&TopUp{}).Where("checkout_session_id = ?", r.CheckoutSessionID)
		if r.Status == TopUpPaid {
			set["status"] = TopUpPaid
		} else {
			// Only a pending row moves to failed/expired.
			if err := tx.Model(&TopUp{}).Where("checkout_session_id = ? AND status = ?", r.CheckoutSessionID, TopUpPending).
				Update("status", r.Status).Error; err != nil {
				return err
			}
		}
		return q.Updates(set).Error
	})
}

// SendTopUpReceiptInput is a credited top-up to confirm by email.
type SendTopUpReceiptInput struct {
	SessionID          string
	AccountID          string
	AmountMicros       int64
	BalanceAfterMicros int64
	EntryID            string
}

// SendTopUpReceiptResult has no fields yet.
type SendTopUpReceiptResult struct{}

// SendTopUpReceipt emails the receipt; its idempotency key is the session,
// so a retried send is dropped by the provider.
func (p *PaymentActivities) SendTopUpReceipt(ctx context.Context, in SendTopUpReceiptInput) (SendTopUpReceiptResult, error) {
	acct, err := p.account(ctx, in.AccountID)
	if err != nil {
		return SendTopUpReceiptResult{}, err
	}
	if p.Mailer == nil || acct.Email == "" {
		return SendTopUpReceiptResult{}, nil
	}
	msg := mail.TopUpReceipt(acct.Email, mail.Receipt{AmountMicros: in.AmountMicros, BalanceMicros: in.BalanceAfterMicros,
		Reference: in.EntryID, At: time.Now().UTC(), Link: p.PublicURL + "/billing"})
	msg.IdempotencyKey = "topup-receipt:" + in.SessionID
	if err := p.Mailer.Send(ctx, msg); err != nil {
		if mail.IsPermanent(err) {
			return SendTopUpReceiptResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeMailRejected, nil)
		}
		return SendTopUpReceiptResult{}, err
	}
	return SendTopUpReceiptResult{}, nil
}

// account loads an account's id and email; a missing account is a
// non-retryable error (retrying cannot make it appear).
func (p *PaymentActivities) account(ctx context.Context, id string) (*models.Account, error) {
	var acct models.Account
	if err := p.DB.WithContext(ctx).Select("id", "email").Where("id = ?", id).Take(&acct).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, temporal.NewNonRetryableApplicationError("account not found", ErrTypeBadInput, nil)
		}
		return nil, err
	}
	return &acct, nil
}
