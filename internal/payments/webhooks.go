package payments

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm/clause"

	"github.com/beaver-gateway/beaver/internal/payments/stripe"
	"github.com/beaver-gateway/beaver/models"
)

// Event is a verified Stripe event.
type Event = stripe.Event

// Settle hands a top-up Checkout Session event to its durable settlement
// (TopUpSettlementWorkflow: started, or signalled when it runs). An error
// means it was not taken.
type Settle func(ctx context.Context, sessionID, eventType string) error

// eventTimeout bounds each step of handling an event: Stripe wants an
// answer within seconds, and retries.
const eventTimeout = 10 * time.Second

// topUpEvents are the events that start or nudge a settlement.
var topUpEvents = map[string]bool{
	stripe.EventCheckoutSessionCompleted:      true,
	stripe.EventCheckoutSessionAsyncSucceeded: true,
	stripe.EventCheckoutSessionAsyncFailed:    true,
	stripe.EventCheckoutSessionExpired:        true, // marks the pending row expired
}

// IsTopUpSession reports whether a Checkout Session is a card top-up
// (setup-mode sessions save cards for auto-recharge).
func IsTopUpSession(cs *CheckoutSession) bool {
	return cs != nil && cs.ID != "" && cs.Mode == "payment" && (cs.Kind == "" || cs.Kind == stripe.KindTopUp)
}

// HandleWebhook verifies a Stripe webhook (ErrWebhookNotConfigured,
// ErrBadSignature, ErrBadEvent) and applies it once: a duplicate (an event
// id already handled) changes nothing and reports duplicate; a top-up
// event goes to settle (ErrSettlementNotStarted if it is not taken); a
// saved card, a refund made at Stripe and a dispute are applied here
// (ErrEventNotHandled if that fails now); other types are ignored. The
// event id is recorded only once all of that succeeded, so Stripe's retry
// of a failed delivery is handled again, not deduplicated; every step is
// idempotent.
func (s *Service) HandleWebhook(ctx context.Context, payload []byte, signature string, settle Settle) (duplicate bool, err error) {
	if !s.WebhooksEnabled() {
		return false, ErrWebhookNotConfigured
	}
	ev, err := s.d.Stripe.ParseWebhook(payload, signature)
	switch {
	case errors.Is(err, stripe.ErrWebhookNotConfigured), errors.Is(err, stripe.ErrBadSignature):
		return false, err
	case err != nil:
		s.d.Log.Warn("stripe webhook refused", "err", err)
		return false, failWith(ErrBadEvent, "invalid Stripe event", err)
	}
	var seen int64
	if err := s.d.DB.WithContext(ctx).Model(&models.StripeEvent{}).Where("id = ?", ev.ID).Count(&seen).Error; err != nil {
		return false, fmt.Errorf("stripe events: %w", err)
	}
	if seen > 0 {
		return true, nil
	}
	if topUpEvents[ev.Type] && IsTopUpSession(ev.CheckoutSession) {
		sctx, cancel := context.WithTimeout(ctx, eventTimeout)
		err := settle(sctx, ev.CheckoutSession.ID, ev.Type)
		cancel()
		if err != nil {
			s.d.Log.Warn("top-up settlement not started; Stripe will retry", "event_id", ev.ID,
				"session_id", ev.CheckoutSession.ID, "err", err)
			return false, failWith(ErrSettlementNotStarted, "Temporal is not available; Stripe will retry this event", err)
		}
	}
	if err := s.applyEvent(ctx, ev); err != nil {
		s.d.Log.Warn("stripe event not handled; Stripe will retry", "event_id", ev.ID, "type", ev.Type, "err", err)
		return false, failWith(ErrEventNotHandled, "this Stripe event could not be handled now; Stripe will retry it", err)
	}
	rec := models.StripeEvent{ID: ev.ID, Type: ev.Type, ReceivedAt: time.Now().UTC()}
	if err := s.d.DB.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&rec).Error; err != nil {
		// Handling is idempotent: Stripe's retry is harmless.
		return false, fmt.Errorf("record stripe event: %w", err)
	}
	return false, nil
}

// applyEvent handles the events that are not top-up settlements: a saved
// card (setup-mode session), refunds made at Stripe and disputes.
func (s *Service) applyEvent(ctx context.Context, ev Event) error {
	ctx, cancel := context.WithTimeout(ctx, eventTimeout)
	defer cancel()
	switch {
	case ev.Type == stripe.EventCheckoutSessionCompleted && ev.CheckoutSession != nil &&
		ev.CheckoutSession.Mode == "setup" && ev.CheckoutSession.AccountID != "" &&
		(ev.CheckoutSession.Kind == "" || ev.CheckoutSession.Kind == stripe.KindSetup):
		cs := ev.CheckoutSession
		if cs.SetupIntentID == "" {
			return nil
		}
		if _, err := s.SaveCard(ctx, cs.AccountID, cs.CustomerID, cs.SetupIntentID); err != nil {
			return fmt.Errorf("save card of session %s: %w", cs.ID, err)
		}
	case ev.Type == stripe.EventChargeRefunded && ev.Charge != nil && ev.Charge.Currency == "usd":
		ch := ev.Charge
		if _, err := s.ReconcileChargeRefunded(ctx, ChargeRefunded{ChargeID: ch.ID, PaymentIntentID: ch.PaymentIntentID,
			AmountRefundedMicros: ch.AmountRefundedMicros}); err != nil {
			return fmt.Errorf("reconcile refunds of charge %s: %w", ch.ID, err)
		}
	case ev.Type == stripe.EventChargeDisputeCreated && ev.Dispute != nil:
		if _, err := s.RecordDispute(ctx, *ev.Dispute); err != nil {
			return fmt.Errorf("record dispute %s: %w", ev.Dispute.ID, err)
		}
	}
	return nil
}
