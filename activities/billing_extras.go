package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/mail"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/payments"
	"github.com/beaver-gateway/beaver/models"
)

// Refund statuses (refunds.status) and sources (refunds.source).
const (
	RefundPending   = "pending"   // debited from the ledger, Stripe not yet confirmed
	RefundSucceeded = "succeeded" // refunded at Stripe
	RefundFailed    = "failed"    // Stripe refused; the debit was credited back
	RefundRejected  = "rejected"  // never debited (not enough unspent balance)

	RefundSourceAdmin  = "admin"
	RefundSourceStripe = "stripe"
)

// Non-retryable error types of the refund activities.
const (
	// ErrTypeRefundTooLarge: more than the top-up minus what was refunded.
	ErrTypeRefundTooLarge = "RefundTooLarge"
	// ErrTypeRefundInsufficientBalance: more than the account has unspent.
	ErrTypeRefundInsufficientBalance = "RefundInsufficientBalance"
)

// MaxAutoRechargeFailures consecutive declines disable auto-recharge.
const MaxAutoRechargeFailures = 3

// RefundRow is a row of refunds.
type RefundRow struct {
	ID              string `gorm:"primaryKey"`
	RequestKey      string
	TopUpID         string
	AccountID       string
	StripeRefundID  *string
	AmountMicros    int64
	ShortfallMicros int64
	Source          string
	Status          string
	LedgerEntryID   string
	FailureReason   string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// TableName is refunds.
func (RefundRow) TableName() string { return "refunds" }

// AutoRecharge is a row of auto_recharge.
type AutoRecharge struct {
	AccountID           string `gorm:"primaryKey"`
	Enabled             bool
	ThresholdMicros     int64
	AmountMicros        int64
	StripeCustomerID    string
	PaymentMethodID     string
	ConsecutiveFailures int64
	LastAttemptKey      string
	LastError           string
	DisabledReason      string
	UpdatedAt           time.Time
}

// TableName is auto_recharge.
func (AutoRecharge) TableName() string { return "auto_recharge" }

// Dispute is a row of disputes.
type Dispute struct {
	ID              string `gorm:"primaryKey"`
	AccountID       string
	TopUpID         string
	ChargeID        string
	PaymentIntentID string
	AmountMicros    int64
	Reason          string
	Status          string
	AdminNotified   bool
	CreatedAt       time.Time
}

// TableName is disputes.
func (Dispute) TableName() string { return "disputes" }

// RefundLedgerReference is the ledger reference of a Beaver-made refund's
// debit; RefundReversalReference the compensating credit if Stripe refuses.
func RefundLedgerReference(refundID string) string { return "beaver:refund:" + refundID }
func RefundReversalReference(refundID string) string {
	return "beaver:refund:" + refundID + ":reversal"
}

// AutoRechargeLedgerReference is the credit of an off-session charge.
func AutoRechargeLedgerReference(paymentIntentID string) string {
	return "stripe:pi:" + paymentIntentID
}

// refundedSoFar is what counts against a top-up's refundable amount: every
// refund debited or in flight, plus shortfalls refunded at Stripe.
func refundedSoFar(tx *gorm.DB, topUpID string) (int64, error) {
	var sum int64
	err := tx.Raw(`SELECT COALESCE(SUM(amount_micros + shortfall_micros), 0) FROM refunds
		WHERE top_up_id = ? AND status IN (?, ?)`, topUpID, RefundPending, RefundSucceeded).Scan(&sum).Error
	return sum, err
}

// syncRefunded recomputes top_ups.refunded_micros from the succeeded
// refunds (never from increments, so webhooks and workflows cannot count a
// refund twice).
func syncRefunded(tx *gorm.DB, topUpID string) error {
	return tx.Exec(`UPDATE top_ups SET refunded_micros = (SELECT COALESCE(SUM(amount_micros + shortfall_micros), 0)
		FROM refunds WHERE top_up_id = ? AND status = ?), updated_at = ? WHERE id = ?`,
		topUpID, RefundSucceeded, time.Now().UTC(), topUpID).Error
}

// RefundableMicros is what may still be refunded of a paid top-up.
func RefundableMicros(ctx context.Context, d *gorm.DB, t TopUp) (int64, error) {
	done, err := refundedSoFar(d.WithContext(ctx), t.ID)
	if err != nil {
		return 0, err
	}
	if t.RefundedMicros > done {
		done = t.RefundedMicros
	}
	return t.AmountMicros - done, nil
}

// PrepareRefundInput asks to refund AmountMicros of a top-up; RequestKey
// (the workflow id) makes it idempotent.
type PrepareRefundInput struct {
	RequestKey   string
	TopUpID      string
	AmountMicros int64
}

// PrepareRefundResult is the debited refund, ready to send to Stripe.
type PrepareRefundResult struct {
	RefundID        string
	AccountID       string
	PaymentIntentID string
	AmountMicros    int64
	LedgerEntryID   string
}

// PrepareRefund records the refund (pending) and debits it from the ledger.
// It refuses (non-retryable) more than the top-up minus what was already
// refunded (ErrTypeRefundTooLarge) and more than the account has unspent
// (ErrTypeRefundInsufficientBalance: the ledger's conditional debit). Safe
// to retry: the row is keyed by RequestKey and the debit by the refund id.
func (p *PaymentActivities) PrepareRefund(ctx context.Context, in PrepareRefundInput) (PrepareRefundResult, error) {
	if in.RequestKey == "" || in.TopUpID == "" || in.AmountMicros <= 0 || in.AmountMicros%payments.MicrosPerCent != 0 {
		return PrepareRefundResult{}, temporal.NewNonRetryableApplicationError("refund needs a key, a top-up and a positive amount in whole cents", ErrTypeBadInput, nil)
	}
	var row RefundRow
	var top TopUp
	err := p.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Touch the top-up first: on PostgreSQL this locks its row, so two
		// refunds of one top-up check the refundable amount one at a time.
		if err := tx.Model(&TopUp{}).Where("id = ?", in.TopUpID).Update("updated_at", time.Now().UTC()).Error; err != nil {
			return err
		}
		if err := tx.Where("id = ?", in.TopUpID).Take(&top).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return temporal.NewNonRetryableApplicationError("top-up "+in.TopUpID+" not found", ErrTypeBadInput, nil)
			}
			return err
		}
		if e := tx.Where("request_key = ?", in.RequestKey).Take(&row).Error; e == nil {
			return nil // an earlier attempt recorded it
		} else if !errors.Is(e, gorm.ErrRecordNotFound) {
			return e
		}
		if top.Status != TopUpPaid || top.PaymentIntentID == "" {
			return temporal.NewNonRetryableApplicationError("top-up "+top.ID+" is not a paid card payment", ErrTypeBadInput, nil)
		}
		done, err := refundedSoFar(tx, top.ID)
		if err != nil {
			return err
		}
		if top.RefundedMicros > done {
			done = top.RefundedMicros
		}
		if in.AmountMicros > top.AmountMicros-done {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("refund of %s USD exceeds the %s USD still refundable on top-up %s",
				money.Format(in.AmountMicros), money.Format(top.AmountMicros-done), top.ID), ErrTypeRefundTooLarge, nil)
		}
		now := time.Now().UTC()
		row = RefundRow{ID: ids.New("rf"), RequestKey: in.RequestKey, TopUpID: top.ID, AccountID: top.AccountID,
			AmountMicros: in.AmountMicros, Source: RefundSourceAdmin, Status: RefundPending, CreatedAt: now, UpdatedAt: now}
		return tx.Create(&row).Error
	})
	if err != nil {
		return PrepareRefundResult{}, err
	}
	res := PrepareRefundResult{RefundID: row.ID, AccountID: row.AccountID, PaymentIntentID: top.PaymentIntentID,
		AmountMicros: row.AmountMicros, LedgerEntryID: row.LedgerEntryID}
	switch row.Status {
	case RefundRejected:
		return res, temporal.NewNonRetryableApplicationError(row.FailureReason, ErrTypeRefundInsufficientBalance, nil)
	case RefundFailed, RefundSucceeded:
		return res, nil // finished by an earlier run; the workflow finds out
	}
	if row.LedgerEntryID != "" {
		return res, nil
	}
	// The debit is conditional: it never takes balance below reserved, so
	// a user cannot be refunded money they already spent.
	entry, _, err := p.Ledger.Post(ctx, billing.Entry{AccountID: row.AccountID, Type: models.EntryRefund,
		AmountMicros: -row.AmountMicros, Reference: RefundLedgerReference(row.ID),
		Description: fmt.Sprintf("Refund of %s USD to card (top-up %s)", money.Format(row.AmountMicros), row.TopUpID)})
	if err != nil {
		if e, ok := apierr.As(err); ok && e.Status == 402 {
			reason := "the account's unspent balance does not cover the refund"
			if uerr := p.DB.WithContext(ctx).Model(&RefundRow{}).Where("id = ? AND status = ?", row.ID, RefundPending).
				Updates(map[string]any{"status": RefundRejected, "failure_reason": reason, "updated_at": time.Now().UTC()}).Error; uerr != nil {
				return res, uerr
			}
			return res, temporal.NewNonRetryableApplicationError(reason, ErrTypeRefundInsufficientBalance, nil)
		}
		return res, err
	}
	if err := p.DB.WithContext(ctx).Model(&RefundRow{}).Where("id = ?", row.ID).
		Updates(map[string]any{"ledger_entry_id": entry.ID, "updated_at": time.Now().UTC()}).Error; err != nil {
		return res, err
	}
	res.LedgerEntryID = entry.ID
	return res, nil
}

// StripeRefundInput is a debited refund to make at Stripe.
type StripeRefundInput struct {
	RefundID        string
	PaymentIntentID string
	AmountMicros    int64
}

// StripeRefundResult: Refused is true when Stripe will not refund (the
// caller must credit the debit back); otherwise StripeRefundID is set.
type StripeRefundResult struct {
	StripeRefundID string
	Status         string
	Refused        bool
	Reason         string
}

// StripeRefund refunds at Stripe with the idempotency key
// "beaver-refund:<refund id>", so a retried activity refunds once. Errors
// Stripe may heal (network, 5xx, 429) are returned for Temporal to retry;
// a definite refusal is a result, not an error.
func (p *PaymentActivities) StripeRefund(ctx context.Context, in StripeRefundInput) (StripeRefundResult, error) {
	r, err := p.Payments.Refund(ctx, payments.RefundInput{PaymentIntentID: in.PaymentIntentID, AmountMicros: in.AmountMicros,
		IdempotencyKey: "beaver-refund:" + in.RefundID, Reason: "requested_by_customer"})
	if err != nil {
		var ve *payments.ValidationError
		var ae *payments.APIError
		switch {
		case errors.As(err, &ve), errors.Is(err, payments.ErrDisabled):
			return StripeRefundResult{Refused: true, Reason: err.Error()}, nil
		case errors.As(err, &ae) && !ae.Retryable:
			return StripeRefundResult{Refused: true, Reason: ae.Message}, nil
		}
		return StripeRefundResult{}, err
	}
	if r.Status == "failed" || r.Status == "canceled" {
		return StripeRefundResult{StripeRefundID: r.ID, Status: r.Status, Refused: true, Reason: "refund " + r.Status + " at Stripe"}, nil
	}
	return StripeRefundResult{StripeRefundID: r.ID, Status: r.Status}, nil
}

// FinishRefundInput closes a refund: succeeded (StripeRefundID set) or, with
// Failed, credited back with a compensating adjustment.
type FinishRefundInput struct {
	RefundID       string
	StripeRefundID string
	Failed         bool
	Reason         string
}

// FinishRefundResult is the refund's final status.
type FinishRefundResult struct {
	Status string
}

// FinishRefund records the outcome. For a refused refund it credits the
// debit back (type adjustment, reference beaver:refund:<id>:reversal, so at
// most once) before marking the row failed. Safe to retry.
func (p *PaymentActivities) FinishRefund(ctx context.Context, in FinishRefundInput) (FinishRefundResult, error) {
	var row RefundRow
	if err := p.DB.WithContext(ctx).Where("id = ?", in.RefundID).Take(&row).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return FinishRefundResult{}, temporal.NewNonRetryableApplicationError("refund "+in.RefundID+" not found", ErrTypeBadInput, nil)
		}
		return FinishRefundResult{}, err
	}
	if row.Status != RefundPending {
		return FinishRefundResult{Status: row.Status}, nil
	}
	now := time.Now().UTC()
	if in.Failed {
		if row.LedgerEntryID != "" {
			if _, _, err := p.Ledger.Post(ctx, billing.Entry{AccountID: row.AccountID, Type: models.EntryAdjustment,
				AmountMicros: row.AmountMicros, Reference: RefundReversalReference(row.ID),
				Description: "Refund " + row.ID + " refused by Stripe; debit reversed"}); err != nil {
				return FinishRefundResult{}, err
			}
		}
		reason := in.Reason
		if reason == "" {
			reason = "refused by Stripe"
		}
		err := p.DB.WithContext(ctx).Model(&RefundRow{}).Where("id = ? AND status = ?", row.ID, RefundPending).
			Updates(map[string]any{"status": RefundFailed, "failure_reason": reason, "updated_at": now}).Error
		return FinishRefundResult{Status: RefundFailed}, err
	}
	err := p.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		set := map[string]any{"status": RefundSucceeded, "updated_at": now}
		if in.StripeRefundID != "" {
			set["stripe_refund_id"] = in.StripeRefundID
		}
		if err := tx.Model(&RefundRow{}).Where("id = ? AND status = ?", row.ID, RefundPending).Updates(set).Error; err != nil {
			return err
		}
		return syncRefunded(tx, row.TopUpID)
	})
	return FinishRefundResult{Status: RefundSucceeded}, err
}

// ReconcileChargeRefundedInput is a charge.refunded event.
type ReconcileChargeRefundedInput struct {
	ChargeID             string
	PaymentIntentID      string
	AmountRefundedMicros int64 // cumulative, from the charge
}

// ReconcileChargeRefundedResult says what the reconciliation debited.
type ReconcileChargeRefundedResult struct {
	AccountID       string
	DebitedMicros   int64
	ShortfallMicros int64
	Known           bool // the charge is not a Beaver top-up: nothing done
}

// ReconcileChargeRefunded makes the ledger follow refunds made outside
// Beaver (e.g. in the Stripe Dashboard). The charge's amount_refunded is
// cumulative; whatever exceeds the refunds Beaver knows (made, in flight or
// reconciled before) is debited once, keyed by charge + cumulative amount,
// capped at the available balance; the rest is recorded as a shortfall.
// Duplicate and out-of-order events change nothing.
func (p *PaymentActivities) ReconcileChargeRefunded(ctx context.Context, in ReconcileChargeRefundedInput) (ReconcileChargeRefundedResult, error) {
	var top TopUp
	if in.PaymentIntentID == "" {
		return ReconcileChargeRefundedResult{}, nil
	}
	if err := p.DB.WithContext(ctx).Where("payment_intent_id = ?", in.PaymentIntentID).Take(&top).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return ReconcileChargeRefundedResult{}, nil
		}
		return ReconcileChargeRefundedResult{}, err
	}
	res := ReconcileChargeRefundedResult{AccountID: top.AccountID, Known: true}
	key := fmt.Sprintf("stripe:charge:%s:refunded:%d", in.ChargeID, in.AmountRefundedMicros)
	var existing int64
	if err := p.DB.WithContext(ctx).Model(&RefundRow{}).Where("request_key = ?", key).Count(&existing).Error; err != nil {
		return res, err
	}
	if existing > 0 {
		return res, nil
	}
	done, err := refundedSoFar(p.DB.WithContext(ctx), top.ID)
	if err != nil {
		return res, err
	}
	unknown := in.AmountRefundedMicros - done
	if unknown <= 0 {
		return res, p.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return syncRefunded(tx, top.ID) })
	}
	var acct models.Account
	if err := p.DB.WithContext(ctx).Select("id", "balance_micros", "reserved_micros").Where("id = ?", top.AccountID).Take(&acct).Error; err != nil {
		return res, err
	}
	debit := unknown
	if avail := acct.BalanceMicros - acct.ReservedMicros; debit > avail {
		debit = max(avail, 0)
	}
	now := time.Now().UTC()
	row := RefundRow{ID: ids.New("rf"), RequestKey: key, TopUpID: top.ID, AccountID: top.AccountID,
		AmountMicros: debit, ShortfallMicros: unknown - debit, Source: RefundSourceStripe, Status: RefundSucceeded,
		CreatedAt: now, UpdatedAt: now}
	// The row (request_key unique) is inserted before the debit: a
	// concurrent duplicate loses the insert and never posts a debit.
	err = p.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		r := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "request_key"}}, DoNothing: true}).Create(&row)
		if r.Error != nil {
			return r.Error
		}
		if r.RowsAffected == 0 {
			debit = -1 // someone else reconciled it
			return nil
		}
		return syncRefunded(tx, top.ID)
	})
	if err != nil {
		return res, err
	}
	if debit <= 0 {
		if debit == 0 {
			res.ShortfallMicros = row.ShortfallMicros
			p.log().Warn("refund made at Stripe exceeds the unspent balance; not debited", "account_id", top.AccountID,
				"charge_id", in.ChargeID, "shortfall_micros", row.ShortfallMicros)
		}
		return res, nil
	}
	entry, _, err := p.Ledger.Post(ctx, billing.Entry{AccountID: top.AccountID, Type: models.EntryRefund, AmountMicros: -debit,
		Reference: key, Description: fmt.Sprintf("Refund of %s USD made at Stripe (top-up %s)", money.Format(debit), top.ID)})
	if err != nil {
		if e, ok := apierr.As(err); ok && e.Status == 402 {
			// Spent meanwhile: record it all as shortfall.
			err = p.DB.WithContext(ctx).Model(&RefundRow{}).Where("id = ?", row.ID).
				Updates(map[string]any{"amount_micros": 0, "shortfall_micros": unknown, "updated_at": time.Now().UTC()}).Error
			res.ShortfallMicros = unknown
			return res, err
		}
		// Undo the row so Stripe's retry reconciles again.
		_ = p.DB.WithContext(ctx).Where("id = ?", row.ID).Delete(&RefundRow{}).Error
		return res, err
	}
	if err := p.DB.WithContext(ctx).Model(&RefundRow{}).Where("id = ?", row.ID).
		Updates(map[string]any{"ledger_entry_id": entry.ID}).Error; err != nil {
		return res, err
	}
	res.DebitedMicros, res.ShortfallMicros = debit, row.ShortfallMicros
	if row.ShortfallMicros > 0 {
		p.log().Warn("refund made at Stripe partly exceeds the unspent balance", "account_id", top.AccountID,
			"charge_id", in.ChargeID, "shortfall_micros", row.ShortfallMicros)
	}
	return res, nil
}

// RecordDisputeInput is a charge.dispute.created event.
type RecordDisputeInput struct {
	DisputeID       string
	ChargeID        string
	PaymentIntentID string
	AmountMicros    int64
	Reason          string
	Status          string
	AdminEmail      string
}

// RecordDisputeResult: Known is false when the charge is not ours.
type RecordDisputeResult struct {
	AccountID string
	Known     bool
}

// RecordDispute flags the account and emails the admin, both once per
// dispute (the email's idempotency key is the dispute id and the row
// remembers it was sent).
func (p *PaymentActivities) RecordDispute(ctx context.Context, in RecordDisputeInput) (RecordDisputeResult, error) {
	var top TopUp
	if in.DisputeID == "" || in.PaymentIntentID == "" {
		return RecordDisputeResult{}, nil
	}
	if err := p.DB.WithContext(ctx).Where("payment_intent_id = ?", in.PaymentIntentID).Take(&top).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return RecordDisputeResult{}, nil
		}
		return RecordDisputeResult{}, err
	}
	row := Dispute{ID: in.DisputeID, AccountID: top.AccountID, TopUpID: top.ID, ChargeID: in.ChargeID,
		PaymentIntentID: in.PaymentIntentID, AmountMicros: in.AmountMicros, Reason: in.Reason, Status: in.Status,
		CreatedAt: time.Now().UTC()}
	err := p.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error; err != nil {
			return err
		}
		return tx.Model(&models.Account{}).Where("id = ?", top.AccountID).
			Updates(map[string]any{"flagged": true, "updated_at": time.Now().UTC()}).Error
	})
	if err != nil {
		return RecordDisputeResult{}, err
	}
	res := RecordDisputeResult{AccountID: top.AccountID, Known: true}
	var cur Dispute
	if err := p.DB.WithContext(ctx).Where("id = ?", in.DisputeID).Take(&cur).Error; err != nil {
		return res, err
	}
	if cur.AdminNotified || p.Mailer == nil || in.AdminEmail == "" {
		return res, nil
	}
	var acct models.Account
	_ = p.DB.WithContext(ctx).Select("id", "email").Where("id = ?", top.AccountID).Take(&acct).Error
	msg := mail.Message{To: in.AdminEmail, IdempotencyKey: "dispute:" + in.DisputeID,
		Subject: "Beaver: dispute opened on a card top-up (" + acct.Email + ")",
		Text: fmt.Sprintf("A dispute was opened at Stripe.\n\nDispute: %s\nReason: %s\nAmount: %s USD\nAccount: %s (%s)\nTop-up: %s\nPayment intent: %s\n\nThe account has been flagged.\n",
			in.DisputeID, in.Reason, money.Format(in.AmountMicros), acct.Email, top.AccountID, top.ID, in.PaymentIntentID)}
	if err := p.Mailer.Send(ctx, msg); err != nil {
		return res, err
	}
	return res, p.DB.WithContext(ctx).Model(&Dispute{}).Where("id = ?", in.DisputeID).Update("admin_notified", true).Error
}

// GetAutoRechargeInput names an account.
type GetAutoRechargeInput struct {
	AccountID string
}

// GetAutoRechargeResult is the account's settings and balance now.
type GetAutoRechargeResult struct {
	Settings        AutoRecharge
	Found           bool
	AvailableMicros int64
	BalanceMicros   int64
}

// GetAutoRecharge reads the settings and the balance.
func (p *PaymentActivities) GetAutoRecharge(ctx context.Context, in GetAutoRechargeInput) (GetAutoRechargeResult, error) {
	var res GetAutoRechargeResult
	err := p.DB.WithContext(ctx).Where("account_id = ?", in.AccountID).Take(&res.Settings).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return res, nil
	case err != nil:
		return res, err
	}
	res.Found = true
	var acct models.Account
	if err := p.DB.WithContext(ctx).Select("id", "balance_micros", "reserved_micros").Where("id = ?", in.AccountID).Take(&acct).Error; err != nil {
		return res, err
	}
	res.BalanceMicros, res.AvailableMicros = acct.BalanceMicros, acct.BalanceMicros-acct.ReservedMicros
	return res, nil
}

// ChargeAutoRechargeInput is one off-session charge attempt.
type ChargeAutoRechargeInput struct {
	AccountID       string
	CustomerID      string
	PaymentMethodID string
	AmountMicros    int64
	IdempotencyKey  string
}

// ChargeAutoRechargeResult: Succeeded, or Declined with the card's reason.
type ChargeAutoRechargeResult struct {
	Succeeded              bool
	Pending                bool // processing: not credited now
	Declined               bool
	AuthenticationRequired bool
	PaymentIntentID        string
	ReceiptURL             string
	AmountMicros           int64
	Code                   string
	Message                string
}

// ChargeAutoRecharge charges the saved card off-session. The idempotency
// key (workflow id + run id) makes a retried activity charge once. A card
// decline is a result; transport and Stripe 5xx errors are retried.
func (p *PaymentActivities) ChargeAutoRecharge(ctx context.Context, in ChargeAutoRechargeInput) (ChargeAutoRechargeResult, error) {
	r, err := p.Payments.ChargeOffSession(ctx, payments.OffSessionCharge{AccountID: in.AccountID, CustomerID: in.CustomerID,
		PaymentMethodID: in.PaymentMethodID, AmountMicros: in.AmountMicros, IdempotencyKey: in.IdempotencyKey})
	res := ChargeAutoRechargeResult{PaymentIntentID: r.PaymentIntentID, ReceiptURL: r.ReceiptURL, AmountMicros: r.AmountMicros}
	if err != nil {
		var d *payments.DeclineError
		var ve *payments.ValidationError
		var ae *payments.APIError
		switch {
		case errors.As(err, &d):
			res.Declined, res.Code, res.Message = true, d.Code, d.Message
			res.AuthenticationRequired = d.Code == "authentication_required" || d.DeclineCode == "authentication_required"
			return res, nil
		case errors.As(err, &ve), errors.Is(err, payments.ErrDisabled):
			return res, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadInput, nil)
		case errors.As(err, &ae) && !ae.Retryable:
			res.Declined, res.Code, res.Message = true, firstNonEmpty(ae.Code, ae.Type), ae.Message
			return res, nil
		}
		return res, err
	}
	switch r.Status {
	case "succeeded":
		res.Succeeded = true
	default:
		res.Pending = true
	}
	return res, nil
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// CreditAutoRechargeInput is a succeeded off-session charge.
type CreditAutoRechargeInput struct {
	AccountID       string
	PaymentIntentID string
	AmountMicros    int64
	ReceiptURL      string
}

// CreditAutoRechargeResult is the ledger entry.
type CreditAutoRechargeResult struct {
	EntryID            string
	BalanceAfterMicros int64
	Created            bool
}

// CreditAutoRecharge credits once per PaymentIntent (reference
// stripe:pi:<id>), lists it with the card top-ups (session id
// "autorecharge:<pi>"), and resets the failure count.
func (p *PaymentActivities) CreditAutoRecharge(ctx context.Context, in CreditAutoRechargeInput) (CreditAutoRechargeResult, error) {
	if in.AccountID == "" || in.PaymentIntentID == "" || in.AmountMicros <= 0 {
		return CreditAutoRechargeResult{}, temporal.NewNonRetryableApplicationError("credit needs an account, a payment intent and a positive amount", ErrTypeBadInput, nil)
	}
	entry, created, err := p.Ledger.Post(ctx, billing.Entry{AccountID: in.AccountID, Type: models.EntryTopUp,
		AmountMicros: in.AmountMicros, Reference: AutoRechargeLedgerReference(in.PaymentIntentID),
		Description: fmt.Sprintf("Auto-recharge of %s USD (card)", money.Format(in.AmountMicros))})
	if err != nil {
		if e, ok := apierr.As(err); ok && (e.Status == 404 || e.Status == 409 || e.Status == 400) {
			return CreditAutoRechargeResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeTopUpMismatch, nil)
		}
		return CreditAutoRechargeResult{}, err
	}
	if err := p.upsertTopUp(ctx, TopUp{AccountID: in.AccountID, CheckoutSessionID: "autorecharge:" + in.PaymentIntentID,
		PaymentIntentID: in.PaymentIntentID, AmountMicros: in.AmountMicros, Status: TopUpPaid, LedgerEntryID: entry.ID,
		ReceiptURL: in.ReceiptURL}); err != nil {
		return CreditAutoRechargeResult{}, err
	}
	if err := p.DB.WithContext(ctx).Model(&AutoRecharge{}).Where("account_id = ?", in.AccountID).
		Updates(map[string]any{"consecutive_failures": 0, "last_error": "", "updated_at": time.Now().UTC()}).Error; err != nil {
		return CreditAutoRechargeResult{}, err
	}
	return CreditAutoRechargeResult{EntryID: entry.ID, BalanceAfterMicros: entry.BalanceAfterMicros, Created: created}, nil
}

// RecordAutoRechargeFailureInput is a declined attempt.
type RecordAutoRechargeFailureInput struct {
	AccountID              string
	AttemptKey             string // counted once per key
	Code                   string
	Message                string
	AuthenticationRequired bool
}

// RecordAutoRechargeFailureResult: Disabled when this failure turned
// auto-recharge off.
type RecordAutoRechargeFailureResult struct {
	ConsecutiveFailures int64
	Disabled            bool
	DisabledReason      string
}

// RecordAutoRechargeFailure counts a decline once per attempt and disables
// auto-recharge after MaxAutoRechargeFailures in a row, or at once when the
// card needs authentication (the customer must come back on-session).
func (p *PaymentActivities) RecordAutoRechargeFailure(ctx context.Context, in RecordAutoRechargeFailureInput) (RecordAutoRechargeFailureResult, error) {
	now := time.Now().UTC()
	lastErr := strings.TrimSpace(in.Code + ": " + in.Message)
	if err := p.DB.WithContext(ctx).Exec(`UPDATE auto_recharge SET consecutive_failures = consecutive_failures + 1,
		last_attempt_key = ?, last_error = ?, updated_at = ? WHERE account_id = ? AND last_attempt_key <> ?`,
		in.AttemptKey, lastErr, now, in.AccountID, in.AttemptKey).Error; err != nil {
		return RecordAutoRechargeFailureResult{}, err
	}
	var row AutoRecharge
	if err := p.DB.WithContext(ctx).Where("account_id = ?", in.AccountID).Take(&row).Error; err != nil {
		return RecordAutoRechargeFailureResult{}, err
	}
	res := RecordAutoRechargeFailureResult{ConsecutiveFailures: row.ConsecutiveFailures}
	reason := ""
	switch {
	case in.AuthenticationRequired:
		reason = "the card requires authentication; save it again"
	case row.ConsecutiveFailures >= MaxAutoRechargeFailures:
		reason = fmt.Sprintf("the card was declined %d times in a row (%s)", row.ConsecutiveFailures, lastErr)
	}
	if reason != "" && row.Enabled {
		if err := p.DB.WithContext(ctx).Model(&AutoRecharge{}).Where("account_id = ?", in.AccountID).
			Updates(map[string]any{"enabled": false, "disabled_reason": reason, "updated_at": now}).Error; err != nil {
			return res, err
		}
		res.Disabled, res.DisabledReason = true, reason
	} else if reason != "" {
		res.DisabledReason = row.DisabledReason
	}
	return res, nil
}

// SendAutoRechargeFailedInput is a decline to tell the user about.
type SendAutoRechargeFailedInput struct {
	AccountID      string
	AttemptKey     string
	AmountMicros   int64
	Message        string
	DisabledReason string // non-empty: auto-recharge was turned off
}

// SendAutoRechargeFailedResult has no fields yet.
type SendAutoRechargeFailedResult struct{}

// SendAutoRechargeFailed emails the user that the recharge failed.
func (p *PaymentActivities) SendAutoRechargeFailed(ctx context.Context, in SendAutoRechargeFailedInput) (SendAutoRechargeFailedResult, error) {
	acct, err := p.account(ctx, in.AccountID)
	if err != nil {
		return SendAutoRechargeFailedResult{}, err
	}
	if p.Mailer == nil || acct.Email == "" {
		return SendAutoRechargeFailedResult{}, nil
	}
	text := fmt.Sprintf("We could not charge your saved card %s USD to recharge your Beaver balance: %s\n", money.Format(in.AmountMicros), in.Message)
	if in.DisabledReason != "" {
		text += "\nAuto-recharge is now turned off: " + in.DisabledReason + ".\n"
	}
	text += "\nManage billing: " + p.PublicURL + "/billing\n"
	msg := mail.Message{To: acct.Email, Subject: "Beaver: auto-recharge failed", Text: text,
		IdempotencyKey: "autorecharge-failed:" + in.AttemptKey}
	if err := p.Mailer.Send(ctx, msg); err != nil {
		if mail.IsPermanent(err) {
			return SendAutoRechargeFailedResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeMailRejected, nil)
		}
		return SendAutoRechargeFailedResult{}, err
	}
	return SendAutoRechargeFailedResult{}, nil
}

// SaveAutoRechargeCardInput is a completed setup-mode Checkout Session.
type SaveAutoRechargeCardInput struct {
	AccountID     string
	CustomerID    string
	SetupIntentID string
}

// SaveAutoRechargeCardResult is the saved card.
type SaveAutoRechargeCardResult struct {
	PaymentMethodID string
}

// SaveAutoRechargeCard reads the card the SetupIntent saved and stores it
// with the Customer (on the account too); a new card clears the failure
// count and a card-related disabled reason. Idempotent.
func (p *PaymentActivities) SaveAutoRechargeCard(ctx context.Context, in SaveAutoRechargeCardInput) (SaveAutoRechargeCardResult, error) {
	pm, err := p.Payments.DefaultPaymentMethod(ctx, in.CustomerID, in.SetupIntentID)
	if err != nil {
		return SaveAutoRechargeCardResult{}, err
	}
	now := time.Now().UTC()
	row := AutoRecharge{AccountID: in.AccountID, StripeCustomerID: in.CustomerID, PaymentMethodID: pm, UpdatedAt: now}
	err = p.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "account_id"}},
			DoUpdates: clause.Assignments(map[string]any{"stripe_customer_id": in.CustomerID, "payment_method_id": pm,
				"consecutive_failures": 0, "disabled_reason": "", "last_error": "", "updated_at": now})}).Create(&row).Error; err != nil {
			return err
		}
		if in.CustomerID == "" {
			return nil
		}
		return tx.Model(&models.Account{}).Where("id = ? AND (stripe_customer_id IS NULL OR stripe_customer_id = '')", in.AccountID).
			Update("stripe_customer_id", in.CustomerID).Error
	})
	return SaveAutoRechargeCardResult{PaymentMethodID: pm}, err
}
