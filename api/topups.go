package api

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/payments"
)

type topUpCheckoutRequest struct {
	AmountUSD *money.USD `json:"amount_usd"`
}

// topUpCheckout serves POST /account/top-up/checkout: a Stripe Checkout
// Session for the amount (payments.CreateTopUpCheckout). With an
// Idempotency-Key header, repeating the request returns the same session.
func (s *Server) topUpCheckout(c *gin.Context) {
	pay := s.payments()
	if !pay.Enabled() {
		s.fail(c, paymentError(payments.ErrDisabled))
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
	key := c.GetHeader("Idempotency-Key")
	if key != "" && !idempotencyKeyRE.MatchString(key) {
		s.fail(c, apierr.Invalid("Idempotency-Key must be 1 to 200 printable ASCII characters without spaces"))
		return
	}
	co, err := pay.CreateTopUpCheckout(c.Request.Context(), payments.TopUpRequest{Account: &p.Account,
		AmountMicros: req.AmountUSD.Micros(), IdempotencyKey: key})
	if err != nil {
		s.fail(c, paymentError(err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"checkout_url": co.URL, "session_id": co.ID})
}

// cardTopUps lists an account's card top-ups, newest first, for GET
// /account/billing ("card_top_ups").
func (s *Server) cardTopUps(ctx context.Context, accountID string, limit int) ([]gin.H, error) {
	rows, err := s.payments().TopUps(ctx, accountID, limit)
	if err != nil {
		return nil, err
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
