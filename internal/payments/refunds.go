package payments

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/payments/stripe"
	"github.com/beaver-gateway/beaver/models"
)

// Refunds: RefundWorkflow debits the ledger first (PrepareRefund, a
// conditional debit: money already spent cannot be refunded), then asks
// Stripe (RefundAtStripe, idempotent per refund), then records the outcome
// (FinishRefund credits the debit back if Stripe refused). Refunds made
// outside Beaver (the Stripe Dashboard) reach the ledger through
// charge.refunded events (ReconcileChargeRefunded).

// refundedSoFar is what counts against a top-up's refundable amount: every
// refund debited or in flight, plus shortfalls refunded at Stripe.
func refundedSoFar(tx *gorm.DB, topUpID string) (int64, error) {
	var sum int64
	err := tx.Raw(`SELECT COALESCE(SUM(amount_micros + shortfall_micros), 0) FROM refunds
		WHERE top_up_id = ? AND status IN (?, ?)`, topUpID, models.RefundPending, models.RefundSucceeded).Scan(&sum).Error
	return sum, err
}

// refundable is what may still be refunded of a paid top-up.
func refundable(tx *gorm.DB, t models.TopUp) (int64, error) {
	done, err := refundedSoFar(tx, t.ID)
	if err != nil {
		return 0, err
	}
	return t.AmountMicros - max(done, t.RefundedMicros), nil
}

// syncRefunded recomputes top_ups.refunded_micros from the succeeded
// refunds (never from increments, so webhooks and workflows cannot count a
// refund twice).
func syncRefunded(tx *gorm.DB, topUpID string) error {
	return tx.Exec(`UPDATE top_ups SET refunded_micros = (SELECT COALESCE(SUM(amount_micros + shortfall_micros), 0)
		FROM refunds WHERE top_up_id = ? AND status = ?), updated_at = ? WHERE id = ?`,
		topUpID, models.RefundSucceeded, time.Now().UTC(), topUpID).Error
}

// refundAmount checks the amount of a refund: positive whole cents.
func refundAmount(micros int64) error {
	switch {
	case micros <= 0:
		return fail(ErrInvalid, "amount_usd must be more than 0")
	case micros%stripe.MicrosPerCent != 0:
		return fail(ErrInvalid, "amount_usd must be a whole number of cents (at most 2 decimals)")
	}
	return nil
}

// CheckRefund says up front whether AmountMicros of the top-up can be
// refunded now: a paid card payment (ErrNotFound, ErrInvalid), no more than
// is still refundable (ErrRefundTooLarge) and no more than the account has
// unspent (ErrInsufficientBalance). RefundWorkflow checks again under lock.
func (s *Service) CheckRefund(ctx context.Context, topUpID string, amountMicros int64) (models.TopUp, error) {
	if err := refundAmount(amountMicros); err != nil {
		return models.TopUp{}, err
	}
	d := s.d.DB.WithContext(ctx)
	var top models.TopUp
	if err := d.Where("id = ?", topUpID).Take(&top).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return top, fail(ErrNotFound, fmt.Sprintf("top-up %s not found", topUpID))
		}
		return top, err
	}
	if top.Status != models.TopUpPaid || top.PaymentIntentID == "" {
		return top, fail(ErrInvalid, fmt.Sprintf("top-up %s is not a paid card payment", top.ID))
	}
	left, err := refundable(d, top)
	if err != nil {
		return top, err
	}
	if amountMicros > left {
		return top, fail(ErrRefundTooLarge, fmt.Sprintf("amount_usd exceeds the %s USD still refundable on this top-up", money.Format(left)))
	}
	var acct models.Account
	if err := d.Select("id", "balance_micros", "reserved_micros").Where("id = ?", top.AccountID).Take(&acct).Error; err != nil {
		return top, err
	}
	if avail := acct.BalanceMicros - acct.ReservedMicros; amountMicros > avail {
		return top, fail(ErrInsufficientBalance, fmt.Sprintf("the account has only %s USD unspent; a refund cannot exceed it",
			money.Format(max(avail, 0))))
	}
	return top, nil
}

// RefundRequest asks to refund AmountMicros of a top-up; RequestKey (the
// workflow id) makes it idempotent.
type RefundRequest struct {
	RequestKey   string
	TopUpID      string
	AmountMicros int64
}

// PreparedRefund is a debited refund, ready to send to Stripe.
type PreparedRefund struct {
	RefundID        string
	AccountID       string
	PaymentIntentID string
	AmountMicros    int64
	LedgerEntryID   string
}

// PrepareRefund records the refund (pending) and debits it from the ledger
// (reference beaver:refund:<id>). It refuses more than the top-up minus
// what was already refunded (ErrRefundTooLarge) and more than the account
// has unspent (ErrInsufficientBalance: the ledger's conditional debit; the
// row is then rejected for good). A refund an earlier run finished comes
// back as it is. Safe to retry: the row is keyed by RequestKey and the
// debit by the refund id.
func (s *Service) PrepareRefund(ctx context.Context, r RefundRequest) (PreparedRefund, error) {
	if r.RequestKey == "" || r.TopUpID == "" || r.AmountMicros <= 0 || r.AmountMicros%stripe.MicrosPerCent != 0 {
		return PreparedRefund{}, fail(ErrInvalid, "refund needs a key, a top-up and a positive amount in whole cents")
	}
	var row models.Refund
	var top models.TopUp
	err := s.d.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Touch the top-up first: on PostgreSQL this locks its row, so two
		// refunds of one top-up check the refundable amount one at a time.
		if err := tx.Model(&models.TopUp{}).Where("id = ?", r.TopUpID).Update("updated_at", time.Now().UTC()).Error; err != nil {
			return err
		}
		if err := tx.Where("id = ?", r.TopUpID).Take(&top).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return fail(ErrNotFound, "top-up "+r.TopUpID+" not found")
			}
			return err
		}
		if e := tx.Where("request_key = ?", r.RequestKey).Take(&row).Error; e == nil {
			return nil // an earlier attempt recorded it
		} else if !errors.Is(e, gorm.ErrRecordNotFound) {
			return e
		}
		if top.Status != models.TopUpPaid || top.PaymentIntentID == "" {
			return fail(ErrInvalid, "top-up "+top.ID+" is not a paid card payment")
		}
		left, err := refundable(tx, top)
		if err != nil {
			return err
		}
		if r.AmountMicros > left {
			return fail(ErrRefundTooLarge, fmt.Sprintf("refund of %s USD exceeds the %s USD still refundable on top-up %s",
				money.Format(r.AmountMicros), money.Format(left), top.ID))
		}
		now := time.Now().UTC()
		row = models.Refund{ID: ids.New("rf"), RequestKey: r.RequestKey, TopUpID: top.ID, AccountID: top.AccountID,
			AmountMicros: r.AmountMicros, Source: models.RefundSourceAdmin, Status: models.RefundPending, CreatedAt: now, UpdatedAt: now}
		return tx.Create(&row).Error
	})
	if err != nil {
		return PreparedRefund{}, err
	}
	res := PreparedRefund{RefundID: row.ID, AccountID: row.AccountID, PaymentIntentID: top.PaymentIntentID,
		AmountMicros: row.AmountMicros, LedgerEntryID: row.LedgerEntryID}
	switch row.Status {
	case models.RefundRejected:
		return res, fail(ErrInsufficientBalance, row.FailureReason)
	case models.RefundFailed, models.RefundSucceeded:
		return res, nil // finished by an earlier run; the workflow finds out
	}
	if row.LedgerEntryID != "" {
		return res, nil
	}
	// The debit is conditional: it never takes balance below reserved, so
	// a user cannot be refunded money they already spent.
	entry, _, err := s.d.Ledger.Post(ctx, billing.Entry{AccountID: row.AccountID, Type: models.EntryRefund,
		AmountMicros: -row.AmountMicros, Reference: RefundLedgerReference(row.ID), TopUpID: row.TopUpID,
		Description: fmt.Sprintf("Refund of %s USD to card (top-up %s)", money.Format(row.AmountMicros), row.TopUpID)})
	if err != nil {
		if errors.Is(err, billing.ErrInsufficientBalance) {
			reason := "the account's unspent balance does not cover the refund"
			if uerr := s.d.DB.WithContext(ctx).Model(&models.Refund{}).Where("id = ? AND status = ?", row.ID, models.RefundPending).
				Updates(map[string]any{"status": models.RefundRejected, "failure_reason": reason, "updated_at": time.Now().UTC()}).Error; uerr != nil {
				return res, uerr
			}
			return res, fail(ErrInsufficientBalance, reason)
		}
		return res, err
	}
	if err := s.d.DB.WithContext(ctx).Model(&models.Refund{}).Where("id = ?", row.ID).
		Updates(map[string]any{"ledger_entry_id": entry.ID, "updated_at": time.Now().UTC()}).Error; err != nil {
		return res, err
	}
	res.LedgerEntryID = entry.ID
	return res, nil
}

// StripeRefund is Stripe's answer to a refund: Refused when Stripe will not
// refund (the debit must be credited back), else ID is set.
type StripeRefund struct {
	ID      string
	Status  string
	Refused bool
	Reason  string
}

// RefundAtStripe refunds at Stripe with the idempotency key
// "beaver-refund:<refund id>", so a retry refunds once. Errors Stripe may
// heal (network, 5xx, 429) are returned, to retry with the same key; a
// definite refusal is a result, not an error.
func (s *Service) RefundAtStripe(ctx context.Context, refundID, paymentIntentID string, amountMicros int64) (StripeRefund, error) {
	r, err := s.d.Stripe.Refund(ctx, stripe.RefundInput{PaymentIntentID: paymentIntentID, AmountMicros: amountMicros,
		IdempotencyKey: "beaver-refund:" + refundID, Reason: "requested_by_customer"})
	if err != nil {
		var ve *stripe.ValidationError
		var ae *stripe.APIError
		switch {
		case errors.As(err, &ve), errors.Is(err, stripe.ErrDisabled):
			return StripeRefund{Refused: true, Reason: err.Error()}, nil
		case errors.As(err, &ae) && !ae.Retryable:
			return StripeRefund{Refused: true, Reason: ae.Message}, nil
		}
		return StripeRefund{}, err
	}
	if r.Status == "failed" || r.Status == "canceled" {
		return StripeRefund{ID: r.ID, Status: r.Status, Refused: true, Reason: "refund " + r.Status + " at Stripe"}, nil
	}
	return StripeRefund{ID: r.ID, Status: r.Status}, nil
}

// RefundOutcome closes a refund: succeeded (StripeRefundID set) or, with
// Failed, credited back.
type RefundOutcome struct {
	RefundID       string
	StripeRefundID string
	Failed         bool
	Reason         string
}

// FinishRefund records the outcome and returns the refund's final status.
// For a refused refund it credits the debit back (type adjustment,
// reference beaver:refund:<id>:reversal, so at most once) before marking
// the row failed. Safe to retry.
func (s *Service) FinishRefund(ctx context.Context, o RefundOutcome) (string, error) {
	var row models.Refund
	if err := s.d.DB.WithContext(ctx).Where("id = ?", o.RefundID).Take(&row).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return "", fail(ErrNotFound, "refund "+o.RefundID+" not found")
		}
		return "", err
	}
	if row.Status != models.RefundPending {
		return row.Status, nil
	}
	now := time.Now().UTC()
	if o.Failed {
		if row.LedgerEntryID != "" {
			if _, _, err := s.d.Ledger.Post(ctx, billing.Entry{AccountID: row.AccountID, Type: models.EntryAdjustment,
				AmountMicros: row.AmountMicros, Reference: RefundReversalReference(row.ID),
				Description: "Refund " + row.ID + " refused by Stripe; debit reversed"}); err != nil {
				return "", err
			}
		}
		reason := o.Reason
		if reason == "" {
			reason = "refused by Stripe"
		}
		err := s.d.DB.WithContext(ctx).Model(&models.Refund{}).Where("id = ? AND status = ?", row.ID, models.RefundPending).
			Updates(map[string]any{"status": models.RefundFailed, "failure_reason": reason, "updated_at": now}).Error
		return models.RefundFailed, err
	}
	err := s.d.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		set := map[string]any{"status": models.RefundSucceeded, "updated_at": now}
		if o.StripeRefundID != "" {
			set["stripe_refund_id"] = o.StripeRefundID
		}
		res := tx.Model(&models.Refund{}).Where("id = ? AND status = ?", row.ID, models.RefundPending).Updates(set)
		if res.Error != nil {
			return res.Error
		}
		// The credit note commits with the refund's success, once: a
		// retry finds the row succeeded and issues nothing.
		if res.RowsAffected == 1 && s.d.Invoices != nil {
			if _, err := s.d.Invoices.IssueCreditNote(tx, row); err != nil {
				return err
			}
		}
		return syncRefunded(tx, row.TopUpID)
	})
	return models.RefundSucceeded, err
}

// ChargeRefunded is a charge.refunded event.
type ChargeRefunded struct {
	ChargeID             string
	PaymentIntentID      string
	AmountRefundedMicros int64 // cumulative, from the charge
}

// Reconciled says what a reconciliation debited.
type Reconciled struct {
	AccountID       string
	DebitedMicros   int64
	ShortfallMicros int64
	Known           bool // false: the charge is not a Beaver top-up, nothing done
}

// ReconcileChargeRefunded makes the ledger follow refunds made outside
// Beaver (e.g. in the Stripe Dashboard). The charge's amount_refunded is
// cumulative; whatever exceeds the refunds Beaver knows (made, in flight or
// reconciled before) is debited once, keyed by charge + cumulative amount
// (reference stripe:charge:<id>:refunded:<micros>), capped at the
// available balance; the rest is recorded as a shortfall. Duplicate and
// out-of-order events change nothing.
func (s *Service) ReconcileChargeRefunded(ctx context.Context, in ChargeRefunded) (Reconciled, error) {
	var top models.TopUp
	if in.PaymentIntentID == "" {
		return Reconciled{}, nil
	}
	d := s.d.DB.WithContext(ctx)
	if err := d.Where("payment_intent_id = ?", in.PaymentIntentID).Take(&top).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return Reconciled{}, nil
		}
		return Reconciled{}, err
	}
	res := Reconciled{AccountID: top.AccountID, Known: true}
	key := fmt.Sprintf("stripe:charge:%s:refunded:%d", in.ChargeID, in.AmountRefundedMicros)
	var existing int64
	if err := d.Model(&models.Refund{}).Where("request_key = ?", key).Count(&existing).Error; err != nil {
		return res, err
	}
	if existing > 0 {
		return res, nil
	}
	done, err := refundedSoFar(d, top.ID)
	if err != nil {
		return res, err
	}
	unknown := in.AmountRefundedMicros - done
	if unknown <= 0 {
		return res, d.Transaction(func(tx *gorm.DB) error { return syncRefunded(tx, top.ID) })
	}
	var acct models.Account
	if err := d.Select("id", "balance_micros", "reserved_micros").Where("id = ?", top.AccountID).Take(&acct).Error; err != nil {
		return res, err
	}
	debit := unknown
	if avail := acct.BalanceMicros - acct.ReservedMicros; debit > avail {
		debit = max(avail, 0)
	}
	now := time.Now().UTC()
	row := models.Refund{ID: ids.New("rf"), RequestKey: key, TopUpID: top.ID, AccountID: top.AccountID,
		AmountMicros: debit, ShortfallMicros: unknown - debit, Source: models.RefundSourceStripe, Status: models.RefundSucceeded,
		CreatedAt: now, UpdatedAt: now}
	// The row (request_key unique) is inserted before the debit: a
	// concurrent duplicate loses the insert and never posts a debit.
	err = d.Transaction(func(tx *gorm.DB) error {
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
			s.d.Log.Warn("refund made at Stripe exceeds the unspent balance; not debited", "account_id", top.AccountID,
				"charge_id", in.ChargeID, "shortfall_micros", row.ShortfallMicros)
		}
		return res, nil
	}
	// Already refunded at Stripe: the debit issues its credit note.
	entry, _, err := s.d.Ledger.Post(ctx, billing.Entry{AccountID: top.AccountID, Type: models.EntryRefund, AmountMicros: -debit,
		Reference: key, TopUpID: top.ID, CreditNoteFor: row.ID, Description: fmt.Sprintf("Refund of %s USD made at Stripe (top-up %s)", money.Format(debit), top.ID)})
	if err != nil {
		if errors.Is(err, billing.ErrInsufficientBalance) {
			// Spent meanwhile: record it all as shortfall.
			err = d.Model(&models.Refund{}).Where("id = ?", row.ID).
				Updates(map[string]any{"amount_micros": 0, "shortfall_micros": unknown, "updated_at": time.Now().UTC()}).Error
			res.ShortfallMicros = unknown
			return res, err
		}
		// Undo the row so Stripe's retry reconciles again.
		_ = d.Where("id = ?", row.ID).Delete(&models.Refund{}).Error
		return res, err
	}
	if err := d.Model(&models.Refund{}).Where("id = ?", row.ID).
		Updates(map[string]any{"ledger_entry_id": entry.ID}).Error; err != nil {
		return res, err
	}
	res.DebitedMicros, res.ShortfallMicros = debit, row.ShortfallMicros
	if row.ShortfallMicros > 0 {
		s.d.Log.Warn("refund made at Stripe partly exceeds the unspent balance", "account_id", top.AccountID,
			"charge_id", in.ChargeID, "shortfall_micros", row.ShortfallMicros)
	}
	return res, nil
}

// Refunds lists an account's card refunds, newest first.
func (s *Service) Refunds(ctx context.Context, accountID string, limit int) ([]models.Refund, error) {
	var rows []models.Refund
	if err := s.d.DB.WithContext(ctx).Where("account_id = ?", accountID).
		Order("created_at DESC, id DESC").Limit(limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("card refunds: %w", err)
	}
	return rows, nil
}
