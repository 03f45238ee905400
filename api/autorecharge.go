package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/payments"
	"github.com/beaver-gateway/beaver/models"
)

// autoRechargeView renders the settings as the dashboard reads them.
func autoRechargeView(r models.AutoRecharge) gin.H {
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

// getAutoRecharge serves GET /account/auto-recharge.
func (s *Server) getAutoRecharge(c *gin.Context) {
	r, err := s.payments().AutoRecharge(c.Request.Context(), principal(c).Account.ID)
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
// top-up bounds (payments.SetAutoRecharge).
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
	change := payments.AutoRechargeChange{Enabled: *req.Enabled}
	if req.ThresholdUSD != nil {
		t := req.ThresholdUSD.Micros()
		change.ThresholdMicros = &t
	}
	if req.AmountUSD != nil {
		a := req.AmountUSD.Micros()
		change.AmountMicros = &a
	}
	r, err := s.payments().SetAutoRecharge(c.Request.Context(), principal(c).Account.ID, change)
	if err != nil {
		s.fail(c, paymentError(err))
		return
	}
	c.JSON(http.StatusOK, autoRechargeView(r))
}

// autoRechargeSetup serves POST /account/auto-recharge/setup: a setup-mode
// Checkout Session that saves a card (the webhook stores it).
func (s *Server) autoRechargeSetup(c *gin.Context) {
	co, err := s.payments().StartCardSetup(c.Request.Context(), &principal(c).Account)
	if err != nil {
		s.fail(c, paymentError(err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"checkout_url": co.URL, "session_id": co.ID})
}
