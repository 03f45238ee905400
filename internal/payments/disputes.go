package payments

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/beaver-gateway/beaver/internal/audit"
	"github.com/beaver-gateway/beaver/internal/mail"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/payments/stripe"
	"github.com/beaver-gateway/beaver/models"
)

// Dispute is a charge.dispute.created event.
type Dispute = stripe.DisputeInfo

// RecordDispute flags the top-up's account and emails the admin, both
// once per dispute (the email's idempotency key is the dispute id and the
// row remembers it was sent). A dispute on a charge that is not a Beaver
// top-up changes nothing; known is false then.
func (s *Service) RecordDispute(ctx context.Context, in Dispute) (known bool, err error) {
	var top models.TopUp
	if in.ID == "" || in.PaymentIntentID == "" {
		return false, nil
	}
	d := s.d.DB.WithContext(ctx)
	if err := d.Where("payment_intent_id = ?", in.PaymentIntentID).Take(&top).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return false, nil
		}
		return false, err
	}
	row := models.Dispute{ID: in.ID, AccountID: top.AccountID, TopUpID: top.ID, ChargeID: in.ChargeID,
		PaymentIntentID: in.PaymentIntentID, AmountMicros: in.AmountMicros, Reason: in.Reason, Status: in.Status,
		CreatedAt: time.Now().UTC()}
	err = d.Transaction(func(tx *gorm.DB) error {
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
		if res.Error != nil {
			return res.Error
		}
		if err := tx.Model(&models.Account{}).Where("id = ?", top.AccountID).
			Updates(map[string]any{"flagged": true, "updated_at": time.Now().UTC()}).Error; err != nil {
			return err
		}
		if res.RowsAffected == 0 {
			return nil // recorded by an earlier delivery
		}
		return audit.Record(tx, audit.Entry{Account: top.AccountID, Subject: audit.Subject(audit.KindDispute, in.ID),
			Action: audit.ActionDispute, Meta: audit.Meta{Actor: audit.ActorStripe}, Changes: audit.Changes{}.
				Set("status", nil, in.Status).Set("reason", nil, in.Reason).Set("amount_micros", nil, in.AmountMicros).
				Set("charge", nil, in.ChargeID).Set("top_up_id", nil, top.ID)})
	})
	if err != nil {
		return true, err
	}
	var cur models.Dispute
	if err := d.Where("id = ?", in.ID).Take(&cur).Error; err != nil {
		return true, err
	}
	if cur.AdminNotified || s.d.Mailer == nil || s.d.AdminEmail == "" {
		return true, nil
	}
	var acct models.Account
	_ = d.Select("id", "email").Where("id = ?", top.AccountID).Take(&acct).Error
	msg := mail.Message{To: s.d.AdminEmail, IdempotencyKey: "dispute:" + in.ID,
		Subject: "Beaver: dispute opened on a card top-up (" + acct.Email + ")",
		Text: fmt.Sprintf("A dispute was opened at Stripe.\n\nDispute: %s\nReason: %s\nAmount: %s USD\nAccount: %s (%s)\nTop-up: %s\nPayment intent: %s\n\nThe account has been flagged.\n",
			in.ID, in.Reason, money.Format(in.AmountMicros), acct.Email, top.AccountID, top.ID, in.PaymentIntentID)}
	if err := s.d.Mailer.Send(ctx, msg); err != nil {
		return true, err
	}
	return true, d.Model(&models.Dispute{}).Where("id = ?", in.ID).Update("admin_notified", true).Error
}
