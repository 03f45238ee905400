package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/payments"
	"github.com/beaver-gateway/beaver/models"
	"github.com/beaver-gateway/beaver/workflows"
)

// RefundStarter starts durable refunds; workflows.BillingStarter is the
// Temporal implementation. The same key returns the same workflow id.
type RefundStarter interface {
	StartRefund(ctx context.Context, key string, in workflows.RefundInput) (workflowID string, err error)
}

// maxAutoRechargeThreshold bounds the auto-recharge threshold (10,000 USD).
const maxAutoRechargeThreshold int64 = 10_000_000_000

func (s *Server) paymentActivities() *activities.PaymentActivities {
	return &activities.PaymentActivities{DB: s.DB, Ledger: s.Ledger, Payments: s.Payments, Mailer: s.Mailer,
		PublicURL: s.cfg.PublicURL, Log: s.log}
}

// autoRechargeView renders the settings as the dashboard reads them.
func autoRechargeView(r activities.AutoRecharge) gin.H {
	var card any
	if r.PaymentMethodID != "" {
		card = gin.H{"payment_method_id": r.PaymentMethodID, "customer_id": r.StripeCustomerID}
	}
	return gin.H{
		"enabled":          r.Enabled,
		"threshold_micros": r.ThresholdMicros, "threshold_usd": money.USD(r.ThresholdMicros),
		"amount_micros": r.AmountMicros, "amount_usd": money.USD(r.AmountMicros),
		"card":                 card,
		"consecutive_failures": r.ConsecutiveFailures,
		"disabled_reason":      r.DisabledReason,
	}
}

func (s *Server) loadAutoRecharge(ctx context.Context, accountID string) (activities.AutoRecharge, error) {
	var r activities.AutoRecharge
	err := s.DB.WithContext(ctx).Where("account_id = ?", accountID).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return activities.AutoRecharge{AccountID: accountID}, nil
	}
	return r, err
}

// getAutoRecharge serves GET /account/auto-recharge.
func (s *Server) getAutoRecharge(c *gin.Context) {
	r, err := s.loadAutoRecharge(c.Request.Context(), principal(c).Account.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, autoRechargeView(r))
}

type autoRechargeRequest struct {
	Enabled      *bool      `json:"enabled"`
	ThresholdUSD *money.USD `json:"threshold_usd"`
	AmountUSD    *money.USD `json:"amount_usd"`
}

// putAutoRecharge serves PUT /account/auto-recharge {enabled, threshold_usd,
// amount_usd}; omitted amounts keep their saved values. Enabling needs a
// saved card (POST /account/auto-recharge/setup) and an amount within the
// top-up bounds.
func (s *Server) putAutoRecharge(c *gin.Context) {
	var req autoRechargeRequest
	if err := bindJSON(c, &req, true); err != nil {
		s.fail(c, err)
		return
	}
	if req.Enabled == nil {
		s.fail(c, apierr.Invalid("enabled is required"))
		return
	}
	ctx, id := c.Request.Context(), principal(c).Account.ID
	r, err := s.loadAutoRecharge(ctx, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	if req.ThresholdUSD != nil {
		t := req.ThresholdUSD.Micros()
		if t < 0 || t > maxAutoRechargeThreshold || t%payments.MicrosPerCent != 0 {
			s.fail(c, apierr.Invalid("threshold_usd must be whole cents between 0 and %s", money.Format(maxAutoRechargeThreshold)))
			return
		}
		r.ThresholdMicros = t
	}
	lo, hi := s.Payments.TopUpBounds()
	if req.AmountUSD != nil {
		a, err := s.cardAmount(*req.AmountUSD)
		if err != nil {
			s.fail(c, err)
			return
		}
		r.AmountMicros = a
	}
	if *req.Enabled {
		switch {
		case !s.Payments.Enabled():
			s.fail(c, apierr.Unavailable("payment by card is not configured on this gateway (STRIPE_SECRET_KEY is unset)"))
			return
		case r.PaymentMethodID == "" || r.StripeCustomerID == "":
			s.fail(c, apierr.Invalid("save a card first (POST /account/auto-recharge/setup)"))
			return
		case r.AmountMicros < lo || r.AmountMicros > hi:
			s.fail(c, apierr.Invalid("amount_usd must be between %s and %s", money.Format(lo), money.Format(hi)))
			return
		}
		if !r.Enabled {
			// Turning it back on starts a fresh count.
			r.ConsecutiveFailures, r.DisabledReason = 0, ""
		}
	}
	r.Enabled, r.UpdatedAt = *req.Enabled, time.Now().UTC()
	if err := s.DB.WithContext(ctx).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "account_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"enabled", "threshold_micros", "amount_micros",
			"consecutive_failures", "disabled_reason", "updated_at"})}).Create(&r).Error; err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, autoRechargeView(r))
}

// autoRechargeSetup serves POST /account/auto-recharge/setup: a setup-mode
// Checkout Session that saves a card (the webhook stores it).
func (s *Server) autoRechargeSetup(c *gin.Context) {
	if !s.Payments.Enabled() {
		s.fail(c, apierr.Unavailable("payment by card is not configured on this gateway (STRIPE_SECRET_KEY is unset)"))
		return
	}
	p := principal(c)
	ctx := c.Request.Context()
	in := payments.SetupCheckout{AccountID: p.Account.ID, Email: p.Account.Email}
	if p.Account.StripeCustomerID != nil {
		in.CustomerID = *p.Account.StripeCustomerID
	}
	if in.CustomerID == "" {
		if r, err := s.loadAutoRecharge(ctx, p.Account.ID); err == nil {
			in.CustomerID = r.StripeCustomerID
		}
	}
	if in.CustomerID == "" {
		// One Customer per account even if this request is repeated.
		in.IdempotencyKey = "setup-customer:" + p.Account.ID
	}
	if base := s.cfg.PublicURL; base != "" {
		in.SuccessURL = base + "/billing?setup=success&session_id={CHECKOUT_SESSION_ID}"
		in.CancelURL = base + "/billing?setup=cancelled"
	}
	co, err := s.Payments.CreateSetupCheckout(ctx, in)
	if co.CustomerID != "" && in.CustomerID == "" {
		if uerr := s.DB.WithContext(ctx).Model(&models.Account{}).
			Where("id = ? AND (stripe_customer_id IS NULL OR stripe_customer_id = '')", p.Account.ID).
			Update("stripe_customer_id", co.CustomerID).Error; uerr != nil {
			s.log.Warn("stripe customer id not saved", "account_id", p.Account.ID, "err", uerr)
		}
	}
	if err != nil {
		s.fail(c, paymentsError(err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"checkout_url": co.URL, "session_id": co.ID})
}

type adminRefundRequest struct {
	TopUpID   string     `json:"top_up_id"`
	AmountUSD *money.USD `json:"amount_usd"`
}

// adminRefund serves POST /admin/refunds {top_up_id, amount_usd}: it checks
// what it can up front (a clear 400/402/404 for the admin) and starts
// RefundWorkflow, which re-checks under lock and debits before refunding.
// Answers 202 {workflow_id}; the Idempotency-Key header names the workflow.
func (s *Server) adminRefund(c *gin.Context) {
	var req adminRefundRequest
	if err := bindJSON(c, &req, true); err != nil {
		s.fail(c, err)
		return
	}
	switch {
	case req.TopUpID == "":
		s.fail(c, apierr.Invalid("top_up_id is required"))
		return
	case req.AmountUSD == nil || req.AmountUSD.Micros() <= 0:
		s.fail(c, apierr.Invalid("amount_usd must be more than 0"))
		return
	case req.AmountUSD.Micros()%payments.MicrosPerCent != 0:
		s.fail(c, apierr.Invalid("amount_usd must be a whole number of cents (at most 2 decimals)"))
		return
	}
	amount := req.AmountUSD.Micros()
	ctx := c.Request.Context()
	var top activities.TopUp
	if err := s.DB.WithContext(ctx).Where("id = ?", req.TopUpID).Take(&top).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			s.fail(c, apierr.NotFound("top-up %s not found", req.TopUpID))
			return
		}
		s.fail(c, err)
		return
	}
	if top.Status != activities.TopUpPaid || top.PaymentIntentID == "" {
		s.fail(c, apierr.Invalid("top-up %s is not a paid card payment", top.ID))
		return
	}
	left, err := activities.RefundableMicros(ctx, s.DB.DB, top)
	if err != nil {
		s.fail(c, err)
		return
	}
	if amount > left {
		s.fail(c, apierr.Invalid("amount_usd exceeds the %s USD still refundable on this top-up", money.Format(left)))
		return
	}
	var acct models.Account
	if err := s.DB.WithContext(ctx).Select("id", "balance_micros", "reserved_micros").Where("id = ?", top.AccountID).Take(&acct).Error; err != nil {
		s.fail(c, err)
		return
	}
	if avail := acct.BalanceMicros - acct.ReservedMicros; amount > avail {
		s.fail(c, apierr.InsufficientBalance("the account has only %s USD unspent; a refund cannot exceed it", money.Format(max(avail, 0))))
		return
	}
	key := c.GetHeader("Idempotency-Key")
	if key == "" {
		key = ids.New("rq")
	} else if !idempotencyKeyRE.MatchString(key) {
		s.fail(c, apierr.Invalid("Idempotency-Key must be 1 to 200 printable ASCII characters without spaces"))
		return
	}
	if s.Refunds == nil {
		s.fail(c, apierr.Unavailable("Temporal is not available; try again shortly"))
		return
	}
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	wid, err := s.Refunds.StartRefund(sctx, key, workflows.RefundInput{TopUpID: top.ID, AmountMicros: amount})
	if err != nil {
		s.log.Warn("refund not started", "top_up_id", top.ID, "err", err)
		s.fail(c, apierr.Unavailable("Temporal is not available; try again shortly"))
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"workflow_id": wid})
}

// handleBillingEvent handles the webhook events that are not top-up
// settlements: a saved card (setup-mode session), refunds made at Stripe
// and disputes. Each is idempotent; an error answers 503 so Stripe retries.
func (s *Server) handleBillingEvent(ctx context.Context, ev payments.Event) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	pa := s.paymentActivities()
	switch {
	case ev.Type == payments.EventCheckoutSessionCompleted && ev.CheckoutSession != nil &&
		ev.CheckoutSession.Mode == "setup" && ev.CheckoutSession.AccountID != "" &&
		(ev.CheckoutSession.Kind == "" || ev.CheckoutSession.Kind == payments.KindSetup):
		cs := ev.CheckoutSession
		if cs.SetupIntentID == "" {
			return nil
		}
		_, err := pa.SaveAutoRechargeCard(ctx, activities.SaveAutoRechargeCardInput{AccountID: cs.AccountID,
			CustomerID: cs.CustomerID, SetupIntentID: cs.SetupIntentID})
		if err != nil {
			return fmt.Errorf("save card of session %s: %w", cs.ID, err)
		}
	case ev.Type == payments.EventChargeRefunded && ev.Charge != nil && ev.Charge.Currency == "usd":
		ch := ev.Charge
		_, err := pa.ReconcileChargeRefunded(ctx, activities.ReconcileChargeRefundedInput{ChargeID: ch.ID,
			PaymentIntentID: ch.PaymentIntentID, AmountRefundedMicros: ch.AmountRefundedMicros})
		if err != nil {
			return fmt.Errorf("reconcile refunds of charge %s: %w", ch.ID, err)
		}
	case ev.Type == payments.EventChargeDisputeCreated && ev.Dispute != nil:
		d := ev.Dispute
		_, err := pa.RecordDispute(ctx, activities.RecordDisputeInput{DisputeID: d.ID, ChargeID: d.ChargeID,
			PaymentIntentID: d.PaymentIntentID, AmountMicros: d.AmountMicros, Reason: d.Reason, Status: d.Status,
			AdminEmail: s.cfg.AdminEmail})
		if err != nil {
			return fmt.Errorf("record dispute %s: %w", d.ID, err)
		}
	}
	return nil
}

// cardRefunds lists an account's card refunds, newest first, for GET
// /account/billing ("card_refunds").
func (s *Server) cardRefunds(ctx context.Context, accountID string, limit int) ([]gin.H, error) {
	var rows []activities.RefundRow
	if err := s.DB.WithContext(ctx).Where("account_id = ?", accountID).
		Order("created_at DESC, id DESC").Limit(limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("card refunds: %w", err)
	}
	out := make([]gin.H, 0, len(rows))
	for _, r := range rows {
		sid := ""
		if r.StripeRefundID != nil {
			sid = *r.StripeRefundID
		}
		out = append(out, gin.H{
			"id": r.ID, "top_up_id": r.TopUpID, "status": r.Status, "source": r.Source,
			"amount_micros": r.AmountMicros, "amount_usd": money.USD(r.AmountMicros),
			"shortfall_micros": r.ShortfallMicros, "shortfall_usd": money.USD(r.ShortfallMicros),
			"stripe_refund_id": sid, "transaction_id": r.LedgerEntryID, "failure_reason": r.FailureReason,
			"created_at": ts(r.CreatedAt), "updated_at": ts(r.UpdatedAt),
		})
	}
	return out, nil
}
