// Package billing moves money: the ledger (top-ups, refunds, adjustments)
// and the request engine (admission holds, balance leases, group-committed
// settlement). Every change to accounts.balance_micros goes through here,
// together with exactly one ledger entry, in one transaction.
package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/audit"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/models"
)

// Ledger posts balance changes that are not request charges: top-ups
// (admin and card), refunds and adjustments. Every credit and debit of an
// account outside request settlement goes through Post.
type Ledger struct {
	DB *db.DB
	// Events hears BalanceChanged after every committed entry (e.g. so that
	// a low-balance alert learns the balance recovered); nil = none.
	Events Events
	// Documents issues the invoice or credit note of an entry inside the
	// transaction that posts it (internal/invoices); nil = none.
	Documents Documents
}

// Documents issues what a ledger entry must carry (an invoice for a
// top-up, a credit note for a refund) in the entry's own transaction: if
// issuing fails the entry rolls back, and a replayed post (same reference)
// issues nothing, since its entry exists already.
type Documents interface {
	IssueFor(tx *gorm.DB, entry models.LedgerEntry, e Entry) error
}

// Ledger errors. Each also carries the API error it answers as (package
// apierr), so the HTTP layer renders it as it is.
var (
	// ErrInvalidEntry: a zero amount.
	ErrInvalidEntry = errors.New("billing: invalid ledger entry")
	// ErrAccountNotFound: no such account.
	ErrAccountNotFound = errors.New("billing: account not found")
	// ErrInsufficientBalance: a debit larger than the available balance
	// (balance − reserved).
	ErrInsufficientBalance = errors.New("billing: the available balance does not cover the debit")
	// ErrReferenceReused: the reference was posted before for another
	// account, amount or type.
	ErrReferenceReused = errors.New("billing: reference already used for a different entry")
)

// ledgerError joins a sentinel and the API error it answers as.
func ledgerError(sentinel error, answer *apierr.Error) error {
	return fmt.Errorf("%w: %w", sentinel, answer)
}

// Entry is a balance change to post.
type Entry struct {
	AccountID    string
	Type         string // models.EntryTopUp, EntryRefund, EntryAdjustment
	AmountMicros int64  // positive credits, negative debits
	Reference    string // unique: posting twice with it changes nothing
	Description  string
	// TopUpID names the card top-up (top_ups row) a top-up entry credits or
	// a refund entry debits; "" for admin top-ups. Documents use it.
	TopUpID string
	// CreditNoteFor is the refund whose credit note this debit issues now
	// (a refund already settled at Stripe); "" = none yet.
	CreditNoteFor string
}

// Post applies e atomically: the balance moves and exactly one ledger entry
// records it. Posting an already-used reference returns the original entry
// with created=false (idempotency), or 409 if it was for something else. A
// debit never takes the balance below what is reserved for requests in flight.
func (l *Ledger) Post(ctx context.Context, e Entry) (*models.LedgerEntry, bool, error) {
	if e.Reference == "" || e.AccountID == "" {
		return nil, false, errors.New("ledger: entry needs an account and a reference")
	}
	if e.AmountMicros == 0 {
		return nil, false, ledgerError(ErrInvalidEntry, apierr.Invalid("amount must not be zero"))
	}
	if e.Type == models.EntryCharge {
		return nil, false, errors.New("ledger: charges go through the billing engine")
	}
	if prev, err := l.byReference(ctx, e.Reference); err == nil {
		return l.same(prev, e)
	}
	var entry models.LedgerEntry
	var threshold int64
	err := l.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		bal, th, seq, err := adjustBalance(tx, e.AccountID, e.AmountMicros)
		if err != nil {
			return err
		}
		threshold = th
		entry = models.LedgerEntry{ID: ids.New("txn"), AccountID: e.AccountID, Type: e.Type,
			AmountMicros: e.AmountMicros, BalanceAfterMicros: bal, Reference: e.Reference,
			Description: e.Description, CreatedAt: time.Now().UTC(), Seq: seq}
		if err := tx.Create(&entry).Error; err != nil {
			return err
		}
		if l.Documents != nil {
			if err := l.Documents.IssueFor(tx, entry, e); err != nil {
				return err
			}
		}
		return recordPost(tx, entry)
	})
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		// A concurrent post with the same reference won; answer with its entry.
		prev, perr := l.byReference(ctx, e.Reference)
		if perr != nil {
			return nil, false, fmt.Errorf("ledger: load duplicate: %w", perr)
		}
		return l.same(prev, e)
	}
	if err != nil {
		if _, ok := apierr.As(err); ok {
			return nil, false, err
		}
		return nil, false, fmt.Errorf("ledger: post: %w", err)
	}
	eventsOrNone(l.Events).BalanceChanged(entry.AccountID, entry.BalanceAfterMicros, threshold)
	return &entry, true, nil
}

// ledgerActions names the audit action of each ledger entry type.
var ledgerActions = map[string]string{
	models.EntryTopUp:      audit.ActionTopUp,
	models.EntryRefund:     audit.ActionRefund,
	models.EntryAdjustment: audit.ActionAdjustment,
}

// recordPost writes the audit entry of a ledger post in its transaction:
// the balance change and its entry commit or roll back together. Who did
// it comes from the context (an admin's request), else "system" (a
// workflow crediting a card payment).
func recordPost(tx *gorm.DB, e models.LedgerEntry) error {
	action, ok := ledgerActions[e.Type]
	if !ok {
		action = audit.ActionAdjustment
	}
	err := audit.Record(tx, audit.Entry{Account: e.AccountID, Subject: audit.Subject(audit.KindAccount, e.AccountID),
		Action: action, At: e.CreatedAt, Changes: audit.Changes{}.
			Set("balance_micros", e.BalanceAfterMicros-e.AmountMicros, e.BalanceAfterMicros).
			Set("amount_micros", nil, e.AmountMicros).Set("type", nil, e.Type).
			Set("reference", nil, e.Reference).Set("description", nil, e.Description).
			Set("ledger_entry_id", nil, e.ID)})
	if err != nil {
		return fmt.Errorf("ledger: audit: %w", err)
	}
	return nil
}

func (l *Ledger) same(prev *models.LedgerEntry, e Entry) (*models.LedgerEntry, bool, error) {
	if prev.AccountID != e.AccountID || prev.AmountMicros != e.AmountMicros || prev.Type != e.Type {
		return nil, false, ledgerError(ErrReferenceReused, apierr.Conflict("this idempotency key was already used for a different request"))
	}
	return prev, false, nil
}

func (l *Ledger) byReference(ctx context.Context, ref string) (*models.LedgerEntry, error) {
	var prev models.LedgerEntry
	if err := l.DB.WithContext(ctx).Where("reference = ?", ref).Take(&prev).Error; err != nil {
		return nil, err
	}
	return &prev, nil
}

// adjustBalance moves an account's balance by delta inside tx and returns
// the new balance, the account's low-balance threshold and the seq of the
// entry that records the move. Debits are conditional: balance − reserved
// must cover them.
func adjustBalance(tx *gorm.DB, accountID string, delta int64) (balance, threshold, seq int64, err error) {
	var rows []struct {
		BalanceMicros             int64
		LowBalanceThresholdMicros int64
		LedgerSeq                 int64
	}
	err = tx.Raw(`UPDATE accounts SET balance_micros = balance_micros + ?, ledger_seq = ledger_seq + 1, updated_at = ?
		WHERE id = ? AND balance_micros - reserved_micros + ? >= 0 RETURNING balance_micros, low_balance_threshold_micros, ledger_seq`,
		delta, time.Now().UTC(), accountID, delta).Scan(&rows).Error
	if err != nil {
		return 0, 0, 0, err
	}
	if len(rows) == 1 {
		return rows[0].BalanceMicros, rows[0].LowBalanceThresholdMicros, rows[0].LedgerSeq, nil
	}
	var n int64
	if err := tx.Model(&models.Account{}).Where("id = ?", accountID).Count(&n).Error; err != nil {
		return 0, 0, 0, err
	}
	if n == 0 {
		return 0, 0, 0, ledgerError(ErrAccountNotFound, apierr.NotFound("account %s not found", accountID))
	}
	return 0, 0, 0, ledgerError(ErrInsufficientBalance,
		apierr.InsufficientBalance("the available balance does not cover a debit of $%s", money.Format(-delta)))
}
