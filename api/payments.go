package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm/clause"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/payments"
	"github.com/beaver-gateway/beaver/workflows"
)

// TopUpStarter starts (or nudges) the durable settlement of a top-up
// Checkout Session. workflows.TopUpStarter is the Temporal implementation.
// An error means the settlement was not taken: the webhook answers 503 so
// Stripe retries; a settlement already started or finished is success.
type TopUpStarter interface {
	StartTopUpSettlement(ctx context.Context, in workflows.TopUpSettlementInput) error
}

// maxWebhookBody caps a Stripe event payload (Stripe's are a few KiB).
const maxWebhookBody = 512 << 10

// startTimeout bounds how long a webhook waits for Temporal; Stripe wants
// an answer within seconds and retries a 503.
const startTimeout = 10 * time.Second

// stripeEvent is a row of stripe_events: an event already handled.
type stripeEvent struct {
	ID         string `gorm:"primaryKey"`
	Type       string
	ReceivedAt time.Time
}

func (stripeEvent) TableName() string { return "stripe_events" }

type topUpCheckoutRequest struct {
	AmountUSD *money.USD `json:"amount_usd"`
}

// topUpCheckout serves POST /account/top-up/checkout: it creates a Stripe
// Checkout Session for the amount and records a pending top-up. With an
// Idempotency-Key header, repeating the request returns the same session.
func (s *Server) topUpCheckout(c *gin.Context) {
	if !s.Payments.Enabled() {
		s.fail(c, apierr.Unavailable("top-up by card is not configured on this gateway (STRIPE_SECRET_KEY is unset)"))
		return
	}
	p := principal(c)
	if s.cfg.RequireVerifiedEmail && !p.Account.EmailVerified {
		s.fail(c, apierr.EmailNotVerified())
		return
	}
	var req topUpCheckoutRequest
	if err := bindJSON(c, &req, false); err != nil {
		s.fail(c, err)
		return
	}
	if req.AmountUSD == nil {
		s.fail(c, apierr.Invalid("amount_usd is required"))
		return
	}
	amount, err := s.cardAmount(*req.AmountUSD)
	if err != nil {
		s.fail(c, err)
		return
	}
	in := payments.TopUpCheckout{AccountID: p.Account.ID, Email: p.Account.Email, AmountMicros: amount}
	if p.Account.StripeCustomerID != nil {
		in.CustomerID = *p.Account.StripeCustomerID
	}
	if key := c.GetHeader("Idempotency-Key"); key != "" {
		if !idempotencyKeyRE.MatchString(key) {
			s.fail(c, apierr.Invalid("Idempotency-Key must be 1 to 200 printable ASCII characters without spaces"))
			return
		}
		// Scoped per account: two accounts can never share a session.
		in.IdempotencyKey = "topup-checkout:" + p.Account.ID + ":" + key
	}
	if base := s.cfg.PublicURL; base != "" {
		in.SuccessURL = base + "/billing?topup=success&session_id={CHECKOUT_SESSION_ID}"
		in.CancelURL = base + "/billing?topup=cancelled"
	}
	ctx := c.Request.Context()
	co, err := s.Payments.CreateTopUpCheckout(ctx, in)
	if err != nil {
		s.fail(c, paymentsError(err))
		return
	}
	now := time.Now().UTC()
	row := activities.TopUp{ID: ids.New("tu"), AccountID: p.Account.ID, CheckoutSessionID: co.ID,
		AmountMicros: amount, Status: activities.TopUpPending, CreatedAt: now, UpdatedAt: now}
	if err := s.DB.WithContext(ctx).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "checkout_session_id"}},
		DoNothing: true}).Create(&row).Error; err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"checkout_url": co.URL, "session_id": co.ID})
}

// paymentsError maps an error of package payments to the API's errors.
func paymentsError(err error) error {
	var ve *payments.ValidationError
	var ae *payments.APIError
	switch {
	case errors.Is(err, payments.ErrDisabled):
		return apierr.Unavailable("top-up by card is not configured on this gateway")
	case errors.As(err, &ve):
		return apierr.Invalid("%s", ve.Message)
	case errors.As(err, &ae) && ae.Type == "idempotency_error":
		return apierr.Conflict("this Idempotency-Key was already used for a different top-up")
	case errors.As(err, &ae) && ae.HTTPStatus == http.StatusBadRequest:
		return apierr.Invalid("the payment provider refused the request: %s", ae.Message)
	}
	return apierr.Unavailable("the payment provider is not reachable right now; try again shortly")
}

// topUpEvents are the events that start or nudge a settlement.
var topUpEvents = map[string]bool{
	payments.EventCheckoutSessionCompleted:      true,
	payments.EventCheckoutSessionAsyncSucceeded: true,
	payments.EventCheckoutSessionAsyncFailed:    true,
	payments.EventCheckoutSessionExpired:        true, // marks the pending row expired
}

// stripeWebhook serves POST /webhooks/stripe. It verifies the signature,
// answers duplicates and ignored types at once, and hands top-up events to
// a durable settlement. The event id is recorded only after the settlement
// was taken, so a 503 (Temporal down) is retried by Stripe, not deduplicated.
func (s *Server) stripeWebhook(c *gin.Context) {
	if !s.Payments.WebhooksEnabled() {
		s.fail(c, apierr.Unavailable("Stripe webhooks are not configured on this gateway"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxWebhookBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(c, tooLarge(mbe.Limit))
			return
		}
		s.fail(c, apierr.Invalid("could not read the request body"))
		return
	}
	ev, err := s.Payments.ParseWebhook(body, c.GetHeader("Stripe-Signature"))
	switch {
	case errors.Is(err, payments.ErrWebhookNotConfigured):
		s.fail(c, apierr.Unavailable("Stripe webhooks are not configured on this gateway"))
		return
	case errors.Is(err, payments.ErrBadSignature):
		s.fail(c, apierr.Invalid("invalid Stripe signature"))
		return
	case err != nil:
		s.log.Warn("stripe webhook refused", "request_id", requestID(c), "err", err)
		s.fail(c, apierr.Invalid("invalid Stripe event"))
		return
	}
	ctx := c.Request.Context()
	var seen int64
	if err := s.DB.WithContext(ctx).Model(&stripeEvent{}).Where("id = ?", ev.ID).Count(&seen).Error; err != nil {
		s.fail(c, err)
		return
	}
	if seen > 0 {
		c.JSON(http.StatusOK, gin.H{"received": true, "duplicate": true})
		return
	}
	if topUpEvents[ev.Type] && isTopUpSession(ev.CheckoutSession) {
		if s.TopUps == nil {
			s.fail(c, apierr.Unavailable("Temporal is not available; Stripe will retry this event"))
			return
		}
		sctx, cancel := context.WithTimeout(ctx, startTimeout)
		err := s.TopUps.StartTopUpSettlement(sctx, workflows.TopUpSettlementInput{
			SessionID: ev.CheckoutSession.ID, EventType: ev.Type})
		cancel()
		if err != nil {
			s.log.Warn("top-up settlement not started; Stripe will retry", "event_id", ev.ID,
				"session_id", ev.CheckoutSession.ID, "err", err)
			s.fail(c, apierr.Unavailable("Temporal is not available; Stripe will retry this event"))
			return
		}
	}
	if err := s.handleBillingEvent(ctx, ev); err != nil {
		s.log.Warn("stripe event not handled; Stripe will retry", "event_id", ev.ID, "type", ev.Type, "err", err)
		s.fail(c, apierr.Unavailable("this Stripe event could not be handled now; Stripe will retry it"))
		return
	}
	rec := stripeEvent{ID: ev.ID, Type: ev.Type, ReceivedAt: time.Now().UTC()}
	if err := s.DB.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&rec).Error; err != nil {
		// Handling is idempotent: Stripe's retry is harmless.
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"received": true})
}

// isTopUpSession reports whether a Checkout Session event is a card
// top-up (setup-mode sessions save cards for auto-recharge).
func isTopUpSession(cs *payments.CheckoutSession) bool {
	return cs != nil && cs.ID != "" && cs.Mode == "payment" && (cs.Kind == "" || cs.Kind == payments.KindTopUp)
}

// cardTopUps lists an account's card top-ups, newest first, for GET
// /account/billing (add it to that response as "card_top_ups").
func (s *Server) cardTopUps(ctx context.Context, accountID string, limit int) ([]gin.H, error) {
	var rows []activities.TopUp
	if err := s.DB.WithContext(ctx).Where("account_id = ?", accountID).
		Order("created_at DESC, id DESC").Limit(limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("card top-ups: %w", err)
	}
	out := make([]gin.H, 0, len(rows))
	for _, r := range rows {
		out = append(out, gin.H{
			"id": r.ID, "session_id": r.CheckoutSessionID, "status": r.Status,
			"amount_micros": r.AmountMicros, "amount_usd": money.USD(r.AmountMicros),
			"refunded_micros": r.RefundedMicros, "refunded_usd": money.USD(r.RefundedMicros),
			"transaction_id": r.LedgerEntryID, "receipt_url": r.ReceiptURL, "invoice_url": r.InvoiceURL,
			"created_at": ts(r.CreatedAt), "updated_at": ts(r.UpdatedAt),
		})
	}
	return out, nil
}

// cardAmount checks an amount to charge a card: whole cents, within the
// configured top-up bounds.
func (s *Server) cardAmount(usd money.USD) (int64, error) {
	lo, hi := s.Payments.TopUpBounds()
	a := usd.Micros()
	switch {
	case a%payments.MicrosPerCent != 0:
		return 0, apierr.Invalid("amount_usd must be a whole number of cents (at most 2 decimals)")
	case a < lo || a > hi:
		return 0, apierr.Invalid("amount_usd must be between %s and %s", money.Format(lo), money.Format(hi))
	}
	return a, nil
}
