package api

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/workflows"
)

// maxWebhookBody caps a Stripe event payload (Stripe's are a few KiB).
const maxWebhookBody = 512 << 10

// stripeWebhook serves POST /webhooks/stripe: payments.HandleWebhook checks
// the signature and applies the event once, handing top-up events to their
// settlement workflow. 200 for duplicates and ignored types; 503 when the
// event could not be applied now (Temporal down): Stripe retries.
func (s *Server) stripeWebhook(c *gin.Context) {
	pay := s.payments()
	if !pay.WebhooksEnabled() {
		s.fail(c, apierr.Unavailable("Stripe webhooks are not configured on this gateway"))
		return
	}
	body, err := readAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxWebhookBody))
	if err != nil {
		s.fail(c, err)
		return
	}
	settle := func(ctx context.Context, sessionID, eventType string) error {
		return s.Workflows.StartTopUpSettlement(ctx, workflows.TopUpSettlementInput{SessionID: sessionID, EventType: eventType})
	}
	dup, err := pay.HandleWebhook(c.Request.Context(), body, c.GetHeader("Stripe-Signature"), settle)
	if err != nil {
		s.fail(c, paymentError(err))
		return
	}
	if dup {
		c.JSON(http.StatusOK, gin.H{"received": true, "duplicate": true})
		return
	}
	c.JSON(http.StatusOK, gin.H{"received": true})
}
