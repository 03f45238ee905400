package api

import (
	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
)

// topUpCheckout serves POST /account/top-up/checkout.
func (s *Server) topUpCheckout(c *gin.Context) {
	s.fail(c, apierr.Unavailable("top-up by card is not configured on this gateway (STRIPE_SECRET_KEY is unset)"))
}

// stripeWebhook serves POST /webhooks/stripe.
func (s *Server) stripeWebhook(c *gin.Context) {
	s.fail(c, apierr.Unavailable("Stripe webhooks are not configured on this gateway"))
}
