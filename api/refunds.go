package api

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/workflows"
)

type adminRefundRequest struct {
	TopUpID   string     `json:"top_up_id"`
	AmountUSD *money.USD `json:"amount_usd"`
}

// adminRefund serves POST /admin/refunds {top_up_id, amount_usd}: it checks
// what it can up front (payments.CheckRefund: a clear 400/402/404 for the
// admin) and starts RefundWorkflow, which re-checks under lock and debits
// before refunding. Answers 202 {workflow_id}; the Idempotency-Key header
// names the workflow.
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
	case req.AmountUSD == nil:
		s.fail(c, apierr.Invalid("amount_usd must be more than 0"))
		return
	}
	ctx, amount := c.Request.Context(), req.AmountUSD.Micros()
	top, err := s.payments().CheckRefund(ctx, req.TopUpID, amount)
	if err != nil {
		s.fail(c, paymentError(err))
		return
	}
	key := c.GetHeader("Idempotency-Key")
	if key == "" {
		key = ids.New("rq")
	} else if !idempotencyKeyRE.MatchString(key) {
		s.fail(c, apierr.Invalid("Idempotency-Key must be 1 to 200 printable ASCII characters without spaces"))
		return
	}
	wid, err := s.Workflows.StartRefund(ctx, key, workflows.RefundInput{TopUpID: top.ID, AmountMicros: amount})
	if err != nil {
		s.log.Warn("refund not started", "top_up_id", top.ID, "err", err)
		s.fail(c, apierr.Unavailable("Temporal is not available; try again shortly"))
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"workflow_id": wid})
}

// cardRefunds lists an account's card refunds, newest first, for GET
// /account/billing ("card_refunds").
func (s *Server) cardRefunds(ctx context.Context, accountID string, limit int) ([]gin.H, error) {
	rows, err := s.payments().Refunds(ctx, accountID, limit)
	if err != nil {
		return nil, err
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
