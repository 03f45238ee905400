package payments

import (
	"errors"

	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/payments/stripe"
)

// The failures of the payment rules, for errors.Is. The error's own
// message (Error()) is safe to show to whoever asked.
var (
	// ErrDisabled: card payments are not configured (STRIPE_SECRET_KEY).
	ErrDisabled = stripe.ErrDisabled
	// ErrWebhookNotConfigured: STRIPE_WEBHOOK_SECRET is unset.
	ErrWebhookNotConfigured = stripe.ErrWebhookNotConfigured
	// ErrBadSignature: a webhook whose signature does not verify (or is
	// too old); ErrBadEvent: one that is signed but unusable.
	ErrBadSignature = stripe.ErrBadSignature
	ErrBadEvent     = errors.New("payments: invalid Stripe event")

	// ErrInvalid: the request can never succeed as it is (an amount that
	// is not whole cents or out of bounds, a top-up that is not a paid
	// card payment, no saved card, ...).
	ErrInvalid = errors.New("payments: invalid request")
	// ErrNotFound: no such top-up or refund.
	ErrNotFound = errors.New("payments: not found")
	// ErrRefundTooLarge: more than the top-up minus what was refunded.
	ErrRefundTooLarge = errors.New("payments: refund exceeds what is still refundable")
	// ErrInsufficientBalance: more than the account has unspent.
	ErrInsufficientBalance = errors.New("payments: not enough unspent balance")
	// ErrMismatch: a payment that cannot be credited as it is (its ledger
	// reference belongs to another entry, the account is gone). Retrying
	// cannot help; an operator looks at it.
	ErrMismatch = errors.New("payments: payment cannot be credited as it is")

	// ErrIdempotencyReused: Stripe saw the Idempotency-Key with other
	// parameters.
	ErrIdempotencyReused = errors.New("payments: idempotency key already used for another request")
	// ErrProviderRefused: Stripe refused the request (HTTP 400).
	ErrProviderRefused = errors.New("payments: refused by Stripe")
	// ErrProviderUnavailable: Stripe did not answer usefully; try later.
	ErrProviderUnavailable = errors.New("payments: Stripe is not reachable")

	// ErrSettlementNotStarted: a top-up event could not be handed to its
	// settlement (Temporal down); ErrEventNotHandled: another event could
	// not be applied now. Stripe retries both.
	ErrSettlementNotStarted = errors.New("payments: top-up settlement not started")
	ErrEventNotHandled      = errors.New("payments: webhook event not handled")
)

// failure is a sentinel with a message for people and, optionally, the
// error that caused it.
type failure struct {
	kind  error
	msg   string
	cause error
}

func (f *failure) Error() string { return f.msg }

func (f *failure) Unwrap() []error {
	if f.cause == nil {
		return []error{f.kind}
	}
	return []error{f.kind, f.cause}
}

func fail(kind error, msg string) error { return &failure{kind: kind, msg: msg} }

func failWith(kind error, msg string, cause error) error {
	return &failure{kind: kind, msg: msg, cause: cause}
}

// stripeError says what a Stripe client error means for a request made on
// someone's behalf (a Checkout page, a card setup).
func stripeError(err error) error {
	var ve *stripe.ValidationError
	var ae *stripe.APIError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, stripe.ErrDisabled):
		return err
	case errors.As(err, &ve):
		return failWith(ErrInvalid, ve.Message, err)
	case errors.As(err, &ae) && ae.Type == "idempotency_error":
		return failWith(ErrIdempotencyReused, "this Idempotency-Key was already used for a different top-up", err)
	case errors.As(err, &ae) && ae.HTTPStatus == 400:
		return failWith(ErrProviderRefused, "the payment provider refused the request: "+ae.Message, err)
	}
	return failWith(ErrProviderUnavailable, "the payment provider is not reachable right now; try again shortly", err)
}

// ledgerError says what a failed ledger post means for a card payment:
// an entry that can never be posted is ErrMismatch; anything else (the
// database) stays as it is, to be retried.
func ledgerError(err error) error {
	if errors.Is(err, billing.ErrAccountNotFound) || errors.Is(err, billing.ErrReferenceReused) ||
		errors.Is(err, billing.ErrInvalidEntry) {
		return failWith(ErrMismatch, err.Error(), err)
	}
	return err
}
