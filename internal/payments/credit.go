package payments

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/models"
)

// cardCredit is a card payment to credit: a paid Checkout Session or a
// succeeded auto-recharge.
type cardCredit struct {
	AccountID    string
	AmountMicros int64
	Reference    string // the ledger reference: credits once
	Description  string
	// The top_ups row that lists it.
	SessionID       string
	PaymentIntentID string
	InvoiceURL      string
	ReceiptURL      string
}

// Credited is the ledger entry of a card payment, new or from an earlier
// attempt.
type Credited struct {
	EntryID            string
	BalanceAfterMicros int64
	Created            bool // false: an earlier attempt already credited
}

// credit is the one way a card payment reaches an account: one ledger
// entry of type topup per reference, and the top_ups row marked paid.
// Safe to retry and to run concurrently.
func (s *Service) credit(ctx context.Context, c cardCredit) (Credited, error) {
	// The top_ups row exists before the credit, so the invoice the credit
	// issues (in the ledger's transaction) can name it.
	topUpID, err := s.topUpRow(ctx, c)
	if err != nil {
		return Credited{}, err
	}
	entry, created, err := s.d.Ledger.Post(ctx, billing.Entry{AccountID: c.AccountID, Type: models.EntryTopUp,
		AmountMicros: c.AmountMicros, Reference: c.Reference, Description: c.Description, TopUpID: topUpID})
	if err != nil {
		return Credited{}, ledgerError(err)
	}
	if err := s.upsertTopUp(ctx, models.TopUp{AccountID: c.AccountID, CheckoutSessionID: c.SessionID,
		PaymentIntentID: c.PaymentIntentID, AmountMicros: c.AmountMicros, Status: models.TopUpPaid,
		LedgerEntryID: entry.ID, InvoiceURL: c.InvoiceURL, ReceiptURL: c.ReceiptURL}); err != nil {
		return Credited{}, err
	}
	if created {
		s.d.Log.Info("card payment credited", "account_id", c.AccountID, "reference", c.Reference,
			"amount_micros", c.AmountMicros, "entry_id", entry.ID)
	}
	return Credited{EntryID: entry.ID, BalanceAfterMicros: entry.BalanceAfterMicros, Created: created}, nil
}

// topUpRow returns the id of the card payment's top_ups row, recording it
// as pending first when nothing listed it yet.
func (s *Service) topUpRow(ctx context.Context, c cardCredit) (string, error) {
	var row models.TopUp
	err := s.d.DB.WithContext(ctx).Select("id").Where("checkout_session_id = ?", c.SessionID).Take(&row).Error
	if err == nil {
		return row.ID, nil
	}
	if !errors.Is(err, gorm.ErrRecordNotFound) {
		return "", err
	}
	if err := s.upsertTopUp(ctx, models.TopUp{AccountID: c.AccountID, CheckoutSessionID: c.SessionID,
		PaymentIntentID: c.PaymentIntentID, AmountMicros: c.AmountMicros, Status: models.TopUpPending}); err != nil {
		return "", err
	}
	if err := s.d.DB.WithContext(ctx).Select("id").Where("checkout_session_id = ?", c.SessionID).Take(&row).Error; err != nil {
		return "", err
	}
	return row.ID, nil
}

// upsertTopUp inserts the session's row or updates it. A paid row keeps
// its status; empty strings never overwrite known values.
func (s *Service) upsertTopUp(ctx context.Context, r models.TopUp) error {
	now := time.Now().UTC()
	r.ID, r.CreatedAt, r.UpdatedAt = ids.New("tu"), now, now
	return s.d.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
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
		q := tx.Model(&models.TopUp{}).Where("checkout_session_id = ?", r.CheckoutSessionID)
		if r.Status == models.TopUpPaid {
			set["status"] = models.TopUpPaid
		} else {
			// Only a pending row moves to failed/expired.
			if err := tx.Model(&models.TopUp{}).Where("checkout_session_id = ? AND status = ?", r.CheckoutSessionID, models.TopUpPending).
				Update("status", r.Status).Error; err != nil {
				return err
			}
		}
		return q.Updates(set).Error
	})
}
