package api

import (
	"errors"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/payments"
)

// Card payments: top-ups (topups.go), refunds (refunds.go), auto-recharge
// (autorecharge.go) and Stripe's webhook (webhooks.go) are handlers of a
// few lines over package payments, which holds the rules; this file is
// where its failures get their status.

// payments is the card payment service (Deps.Payments). Without one
// (tests, a process without Stripe) the rules still list what exists and
// refuse what needs Stripe (503).
func (s *Server) payments() *payments.Service {
	if s.Payments != nil {
		return s.Payments
	}
	return payments.New(payments.Deps{DB: s.DB, Ledger: s.Ledger, Mailer: s.Mailer, PublicURL: s.cfg.PublicURL,
		AdminEmail: s.cfg.AdminEmail, Log: s.log, Invoices: s.Invoices})
}

// paymentError maps a failure of package payments to the contract's error
// shape; its message is already fit to show. Anything else stays an
// internal error (logged, 500).
func paymentError(err error) error {
	is := func(targets ...error) bool {
		for _, t := range targets {
			if errors.Is(err, t) {
				return true
			}
		}
		return false
	}
	msg := err.Error()
	switch {
	case is(payments.ErrDisabled):
		return apierr.Unavailable("payment by card is not configured on this gateway (STRIPE_SECRET_KEY is unset)")
	case is(payments.ErrWebhookNotConfigured):
		return apierr.Unavailable("Stripe webhooks are not configured on this gateway")
	case is(payments.ErrBadSignature):
		return apierr.Invalid("invalid Stripe signature")
	case is(payments.ErrBadEvent):
		return apierr.Invalid("invalid Stripe event")
	case is(payments.ErrInvalid, payments.ErrRefundTooLarge, payments.ErrProviderRefused):
		return apierr.Invalid("%s", msg)
	case is(payments.ErrNotFound):
		return apierr.NotFound("%s", msg)
	case is(payments.ErrInsufficientBalance):
		return apierr.InsufficientBalance("%s", msg)
	case is(payments.ErrIdempotencyReused):
		return apierr.Conflict("%s", msg)
	case is(payments.ErrProviderUnavailable, payments.ErrSettlementNotStarted, payments.ErrEventNotHandled):
		return apierr.Unavailable("%s", msg)
	}
	return err
}
