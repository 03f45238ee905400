package stripe

import (
	"errors"
	"fmt"
	"net/http"

	stripego "github.com/stripe/stripe-go/v82"
)

// ValidationError is bad input caught before calling Stripe (HTTP callers
// answer 400 invalid_request with Message).
type ValidationError struct {
	Field   string // the input at fault, e.g. "amount"
	Message string // safe to show to the user
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("payments: invalid %s: %s", e.Field, e.Message)
}

// DeclineError is a card error from Stripe (type card_error): the request
// was valid but the card was not charged.
type DeclineError struct {
	Code        string // e.g. card_declined, authentication_required, expired_card
	DeclineCode string // issuer's reason, e.g. insufficient_funds, generic_decline
	Message     string // Stripe's message, safe to show to the card holder
	// Retryable: charging the same card again later may succeed (soft
	// decline). False when the customer must act, e.g. authenticate
	// (authentication_required) or replace the card.
	Retryable bool

	PaymentIntentID     string // the failed PaymentIntent, when Stripe reports it
	PaymentIntentStatus string
	ChargeID            string
}

func (e *DeclineError) Error() string {
	msg := fmt.Sprintf("payments: card declined (code=%s", e.Code)
	if e.DeclineCode != "" {
		msg += ", decline_code=" + e.DeclineCode
	}
	msg += ")"
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// APIError is any other error answered by Stripe. It deliberately copies
// only safe fields: stripego.Error's own Error() serialises embedded objects,
// which can carry a PaymentIntent client_secret.
type APIError struct {
	Op         string // what we were doing, e.g. "create refund"
	HTTPStatus int
	Type       string // api_error, invalid_request_error, idempotency_error, ...
	Code       string // e.g. resource_missing, amount_too_large, charge_already_refunded
	Param      string
	Message    string
	RequestID  string
	// Retryable: the same request (same idempotency key) may succeed later:
	// rate limits, lock timeouts, Stripe 5xx.
	Retryable bool
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("payments: %s: stripe %d %s", e.Op, e.HTTPStatus, e.Type)
	if e.Code != "" {
		msg += "/" + e.Code
	}
	if e.Param != "" {
		msg += " (param " + e.Param + ")"
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RequestID != "" {
		msg += " [request " + e.RequestID + "]"
	}
	return msg
}

// softDeclineCodes are issuer decline codes after which charging the same
// card later may succeed. Everything else (generic_decline, do_not_honor,
// lost_card, fraudulent, ...) needs the customer to act.
var softDeclineCodes = map[string]bool{
	"insufficient_funds":              true,
	"try_again_later":                 true,
	"issuer_not_available":            true,
	"processing_error":                true,
	"reenter_transaction":             true,
	"approve_with_id":                 true,
	"card_velocity_exceeded":          true,
	"withdrawal_count_limit_exceeded": true,
}

// declineRetryable decides Retryable conservatively: card networks penalise
// repeated retries of declines, so only known soft declines qualify.
func declineRetryable(code, declineCode string) bool {
	switch code {
	case "authentication_required", "expired_card", "incorrect_cvc", "incorrect_number",
		"invalid_cvc", "invalid_expiry_month", "invalid_expiry_year", "invalid_number":
		return false
	case "processing_error":
		return true
	}
	if declineCode == "authentication_required" {
		return false
	}
	return softDeclineCodes[declineCode]
}

// wrapStripeErr turns what stripe-go returned into DeclineError, APIError
// or a wrapped transport error, always naming the operation.
func wrapStripeErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *stripego.Error
	if !errors.As(err, &se) {
		// Transport errors, context cancellation, undecodable bodies.
		return fmt.Errorf("payments: %s: %w", op, err)
	}
	if se.Type == stripego.ErrorTypeCard {
		d := &DeclineError{
			Code:        string(se.Code),
			DeclineCode: string(se.DeclineCode),
			Message:     se.Msg,
			ChargeID:    se.ChargeID,
		}
		if se.PaymentIntent != nil {
			d.PaymentIntentID = se.PaymentIntent.ID
			d.PaymentIntentStatus = string(se.PaymentIntent.Status)
		}
		d.Retryable = declineRetryable(d.Code, d.DeclineCode)
		return d
	}
	status := se.HTTPStatusCode
	return &APIError{
		Op:         op,
		HTTPStatus: status,
		Type:       string(se.Type),
		Code:       string(se.Code),
		Param:      se.Param,
		Message:    se.Msg,
		RequestID:  se.RequestID,
		Retryable: status >= 500 || status == http.StatusConflict ||
			status == http.StatusTooManyRequests || se.Code == stripego.ErrorCodeLockTimeout,
	}
}
