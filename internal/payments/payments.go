// Package payments owns Beaver's card payments as rules: top-ups through
// Stripe Checkout, refunds, auto-recharge of a saved card, disputes, and
// the webhook events that drive them. Stripe itself is spoken to through
// the subpackage stripe; the ledger through billing.Ledger. Every amount is
// integer micro-USD.
//
// Money moves exactly once: each credit and debit carries a ledger
// reference that is stored data and never changes
// (stripe:checkout:<session>, stripe:pi:<payment intent>,
// beaver:refund:<id>, beaver:refund:<id>:reversal,
// stripe:charge:<charge>:refunded:<cumulative micros>), and every step is
// safe to retry.
//
// Failures are the sentinel errors of errors.go (errors.Is); the HTTP
// layer and the Temporal activities map them. Durable sequences (a
// settlement, a refund, a recharge) are workflows in package workflows
// that call these rules one step at a time through package activities.
package payments

import (
	"log/slog"

	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/invoices"
	"github.com/beaver-gateway/beaver/internal/mail"
	"github.com/beaver-gateway/beaver/internal/payments/stripe"
)

// Deps is what the payment rules need.
type Deps struct {
	DB     *db.DB
	Ledger *billing.Ledger
	// Stripe is the API client; nil = card payments disabled (ErrDisabled;
	// listing what exists still works).
	Stripe *stripe.Client
	Mailer mail.Sender // nil = no receipts or notices
	// Invoices issues credit notes when refunds succeed and renders the
	// invoice a receipt carries; nil = none (the ledger's Documents issue
	// the invoices themselves).
	Invoices *invoices.Service
	// PublicURL is the dashboard's origin, for Checkout return URLs and
	// the links in emails ("" = Stripe's configured URLs).
	PublicURL string
	// AdminEmail is told of disputes ("" = nobody).
	AdminEmail string
	Log        *slog.Logger
}

// Service applies the payment rules.
type Service struct {
	d Deps
}

// New returns the service.
func New(d Deps) *Service {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	return &Service{d: d}
}

// Enabled reports whether card payments are configured (false for nil).
func (s *Service) Enabled() bool { return s != nil && s.d.Stripe.Enabled() }

// WebhooksEnabled reports whether Stripe webhooks can be verified.
func (s *Service) WebhooksEnabled() bool { return s != nil && s.d.Stripe.WebhooksEnabled() }

// Ledger references (stored data: never change them).

// TopUpLedgerReference is the credit of a Checkout Session.
func TopUpLedgerReference(sessionID string) string { return "stripe:checkout:" + sessionID }

// AutoRechargeLedgerReference is the credit of an off-session charge.
func AutoRechargeLedgerReference(paymentIntentID string) string {
	return "stripe:pi:" + paymentIntentID
}

// RefundLedgerReference is the debit of a refund made by Beaver.
func RefundLedgerReference(refundID string) string { return "beaver:refund:" + refundID }

// RefundReversalReference is the credit that undoes a refund Stripe refused.
func RefundReversalReference(refundID string) string {
	return "beaver:refund:" + refundID + ":reversal"
}
