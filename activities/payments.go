package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/beaver-gateway/beaver/internal/payments"
	"github.com/beaver-gateway/beaver/models"
)

// PaymentActivities are the steps of the money workflows (top-up
// settlement, refund, auto-recharge): each calls one rule of package
// payments and maps its failures for Temporal (paymentError). Registered by
// method name: renaming a method renames an activity type in histories.
type PaymentActivities struct {
	Payments *payments.Service
}

// Non-retryable application error types of the payment activities.
const (
	// ErrTypeTopUpMismatch: a payment cannot be credited as it is (another
	// entry's ledger reference, unknown account...). An operator looks at it.
	ErrTypeTopUpMismatch = "TopUpMismatch"
	// ErrTypeRefundTooLarge: more than the top-up minus what was refunded.
	ErrTypeRefundTooLarge = "RefundTooLarge"
	// ErrTypeRefundInsufficientBalance: more than the account has unspent.
	ErrTypeRefundInsufficientBalance = "RefundInsufficientBalance"
)

// paymentError maps a failure of the payment rules: what retrying cannot
// fix is a non-retryable application error of the type the workflows
// recognize; anything else (the database, Stripe's 5xx) is retried.
func paymentError(err error) error {
	nonRetryable := func(typ string) error { return temporal.NewNonRetryableApplicationError(err.Error(), typ, nil) }
	switch {
	case err == nil:
		return nil
	case errors.Is(err, payments.ErrRefundTooLarge):
		return nonRetryable(ErrTypeRefundTooLarge)
	case errors.Is(err, payments.ErrInsufficientBalance):
		return nonRetryable(ErrTypeRefundInsufficientBalance)
	case errors.Is(err, payments.ErrMismatch):
		return nonRetryable(ErrTypeTopUpMismatch)
	case errors.Is(err, payments.ErrInvalid), errors.Is(err, payments.ErrNotFound), errors.Is(err, payments.ErrDisabled):
		return nonRetryable(ErrTypeBadInput)
	}
	return mailError(err)
}

// ---- TopUpSettlementWorkflow ----

// GetCheckoutSessionInput names a Checkout Session.
type GetCheckoutSessionInput struct {
	SessionID string
}

// GetCheckoutSessionResult is what Stripe says about it now.
type GetCheckoutSessionResult struct {
	Session payments.CheckoutSession
}

// GetCheckoutSession reads the session from Stripe.
func (p *PaymentActivities) GetCheckoutSession(ctx context.Context, in GetCheckoutSessionInput) (GetCheckoutSessionResult, error) {
	s, err := p.Payments.CheckoutSession(ctx, in.SessionID)
	if err != nil {
		return GetCheckoutSessionResult{}, paymentError(err)
	}
	return GetCheckoutSessionResult{Session: s}, nil
}

// CreditTopUpInput is a paid session to credit.
type CreditTopUpInput struct {
	SessionID       string
	AccountID       string
	AmountMicros    int64
	PaymentIntentID string
	InvoiceURL      string
	ReceiptURL      string
}

// CreditTopUpResult is the ledger entry (new or the earlier one).
type CreditTopUpResult struct {
	EntryID            string
	BalanceAfterMicros int64
	// Created is false when an earlier attempt already credited.
	Created bool
}

// CreditTopUp credits the account once per session (payments.CreditTopUp).
func (p *PaymentActivities) CreditTopUp(ctx context.Context, in CreditTopUpInput) (CreditTopUpResult, error) {
	c, err := p.Payments.CreditTopUp(ctx, payments.PaidTopUp{SessionID: in.SessionID, AccountID: in.AccountID,
		AmountMicros: in.AmountMicros, PaymentIntentID: in.PaymentIntentID, InvoiceURL: in.InvoiceURL, ReceiptURL: in.ReceiptURL})
	if err != nil {
		return CreditTopUpResult{}, paymentError(err)
	}
	return CreditTopUpResult{EntryID: c.EntryID, BalanceAfterMicros: c.BalanceAfterMicros, Created: c.Created}, nil
}

// MarkTopUpInput moves a session's row to Status (failed or expired).
type MarkTopUpInput struct {
	SessionID       string
	AccountID       string
	AmountMicros    int64
	PaymentIntentID string
	Status          string
}

// MarkTopUpResult reports the row's status afterwards.
type MarkTopUpResult struct {
	Status string
}

// MarkTopUp records a session that will not be credited.
func (p *PaymentActivities) MarkTopUp(ctx context.Context, in MarkTopUpInput) (MarkTopUpResult, error) {
	st, err := p.Payments.MarkTopUp(ctx, payments.ClosedTopUp{SessionID: in.SessionID, AccountID: in.AccountID,
		AmountMicros: in.AmountMicros, PaymentIntentID: in.PaymentIntentID, Status: in.Status})
	if err != nil {
		return MarkTopUpResult{}, paymentError(err)
	}
	return MarkTopUpResult{Status: st}, nil
}

// SendTopUpReceiptInput is a credited top-up to confirm by email.
type SendTopUpReceiptInput struct {
	SessionID          string
	AccountID          string
	AmountMicros       int64
	BalanceAfterMicros int64
	EntryID            string
}

// SendTopUpReceiptResult has no fields yet.
type SendTopUpReceiptResult struct{}

// SendTopUpReceipt emails the receipt (idempotency key: the session).
func (p *PaymentActivities) SendTopUpReceipt(ctx context.Context, in SendTopUpReceiptInput) (SendTopUpReceiptResult, error) {
	err := p.Payments.SendTopUpReceipt(ctx, payments.TopUpReceipt{SessionID: in.SessionID, AccountID: in.AccountID,
		AmountMicros: in.AmountMicros, BalanceAfterMicros: in.BalanceAfterMicros, EntryID: in.EntryID})
	return SendTopUpReceiptResult{}, paymentError(err)
}

// ---- RefundWorkflow ----

// PrepareRefundInput asks to refund AmountMicros of a top-up; RequestKey
// (the workflow id) makes it idempotent.
type PrepareRefundInput struct {
	RequestKey   string
	TopUpID      string
	AmountMicros int64
}

// PrepareRefundResult is the debited refund, ready to send to Stripe.
type PrepareRefundResult struct {
	RefundID        string
	AccountID       string
	PaymentIntentID string
	AmountMicros    int64
	LedgerEntryID   string
}

// PrepareRefund records the refund and debits it (payments.PrepareRefund);
// too large or not covered by the unspent balance is non-retryable
// (ErrTypeRefundTooLarge, ErrTypeRefundInsufficientBalance).
func (p *PaymentActivities) PrepareRefund(ctx context.Context, in PrepareRefundInput) (PrepareRefundResult, error) {
	r, err := p.Payments.PrepareRefund(ctx, payments.RefundRequest{RequestKey: in.RequestKey, TopUpID: in.TopUpID,
		AmountMicros: in.AmountMicros})
	return PrepareRefundResult{RefundID: r.RefundID, AccountID: r.AccountID, PaymentIntentID: r.PaymentIntentID,
		AmountMicros: r.AmountMicros, LedgerEntryID: r.LedgerEntryID}, paymentError(err)
}

// StripeRefundInput is a debited refund to make at Stripe.
type StripeRefundInput struct {
	RefundID        string
	PaymentIntentID string
	AmountMicros    int64
}

// StripeRefundResult: Refused is true when Stripe will not refund (the
// caller must credit the debit back); otherwise StripeRefundID is set.
type StripeRefundResult struct {
	StripeRefundID string
	Status         string
	Refused        bool
	Reason         string
}

// StripeRefund refunds at Stripe, once per refund (payments.RefundAtStripe).
func (p *PaymentActivities) StripeRefund(ctx context.Context, in StripeRefundInput) (StripeRefundResult, error) {
	r, err := p.Payments.RefundAtStripe(ctx, in.RefundID, in.PaymentIntentID, in.AmountMicros)
	if err != nil {
		return StripeRefundResult{}, paymentError(err)
	}
	return StripeRefundResult{StripeRefundID: r.ID, Status: r.Status, Refused: r.Refused, Reason: r.Reason}, nil
}

// FinishRefundInput closes a refund: succeeded (StripeRefundID set) or, with
// Failed, credited back with a compensating adjustment.
type FinishRefundInput struct {
	RefundID       string
	StripeRefundID string
	Failed         bool
	Reason         string
}

// FinishRefundResult is the refund's final status.
type FinishRefundResult struct {
	Status string
}

// FinishRefund records the outcome (payments.FinishRefund).
func (p *PaymentActivities) FinishRefund(ctx context.Context, in FinishRefundInput) (FinishRefundResult, error) {
	st, err := p.Payments.FinishRefund(ctx, payments.RefundOutcome{RefundID: in.RefundID, StripeRefundID: in.StripeRefundID,
		Failed: in.Failed, Reason: in.Reason})
	if err != nil {
		return FinishRefundResult{}, paymentError(err)
	}
	return FinishRefundResult{Status: st}, nil
}

// ---- AutoRechargeWorkflow ----

// GetAutoRechargeInput names an account.
type GetAutoRechargeInput struct {
	AccountID string
}

// GetAutoRechargeResult is the account's settings and balance now.
type GetAutoRechargeResult struct {
	Settings        models.AutoRecharge
	Found           bool
	AvailableMicros int64
	BalanceMicros   int64
}

// GetAutoRecharge reads the settings and the balance.
func (p *PaymentActivities) GetAutoRecharge(ctx context.Context, in GetAutoRechargeInput) (GetAutoRechargeResult, error) {
	st, err := p.Payments.RechargeState(ctx, in.AccountID)
	return GetAutoRechargeResult{Settings: st.Settings, Found: st.Found, AvailableMicros: st.AvailableMicros,
		BalanceMicros: st.BalanceMicros}, paymentError(err)
}

// ChargeAutoRechargeInput is one off-session charge attempt, and
// ChargeAutoRechargeResult its outcome: Succeeded, Pending (processing: not
// credited now), or Declined with the card's reason. They are the payments
// types themselves (same fields, so the same history payloads).
type (
	ChargeAutoRechargeInput  = payments.RechargeCharge
	ChargeAutoRechargeResult = payments.RechargeCharged
)

// ChargeAutoRecharge charges the saved card off-session; the idempotency
// key (workflow id + run id) makes a retry charge once. A decline is a
// result (payments.ChargeCard).
func (p *PaymentActivities) ChargeAutoRecharge(ctx context.Context, in ChargeAutoRechargeInput) (ChargeAutoRechargeResult, error) {
	r, err := p.Payments.ChargeCard(ctx, in)
	return r, paymentError(err)
}

// CreditAutoRechargeInput is a succeeded off-session charge.
type CreditAutoRechargeInput struct {
	AccountID       string
	PaymentIntentID string
	AmountMicros    int64
	ReceiptURL      string
}

// CreditAutoRechargeResult is the ledger entry.
type CreditAutoRechargeResult struct {
	EntryID            string
	BalanceAfterMicros int64
	Created            bool
}

// CreditAutoRecharge credits once per PaymentIntent (payments.CreditRecharge).
func (p *PaymentActivities) CreditAutoRecharge(ctx context.Context, in CreditAutoRechargeInput) (CreditAutoRechargeResult, error) {
	c, err := p.Payments.CreditRecharge(ctx, payments.RechargePaid{AccountID: in.AccountID, PaymentIntentID: in.PaymentIntentID,
		AmountMicros: in.AmountMicros, ReceiptURL: in.ReceiptURL})
	if err != nil {
		return CreditAutoRechargeResult{}, paymentError(err)
	}
	return CreditAutoRechargeResult{EntryID: c.EntryID, BalanceAfterMicros: c.BalanceAfterMicros, Created: c.Created}, nil
}

// RecordAutoRechargeFailureInput is a declined attempt.
type RecordAutoRechargeFailureInput struct {
	AccountID              string
	AttemptKey             string // counted once per key
	Code                   string
	Message                string
	AuthenticationRequired bool
}

// RecordAutoRechargeFailureResult: Disabled when this failure turned
// auto-recharge off.
type RecordAutoRechargeFailureResult struct {
	ConsecutiveFailures int64
	Disabled            bool
	DisabledReason      string
}

// RecordAutoRechargeFailure counts a decline once per attempt
// (payments.RecordDecline).
func (p *PaymentActivities) RecordAutoRechargeFailure(ctx context.Context, in RecordAutoRechargeFailureInput) (RecordAutoRechargeFailureResult, error) {
	c, err := p.Payments.RecordDecline(ctx, payments.RechargeDeclined{AccountID: in.AccountID, AttemptKey: in.AttemptKey,
		Code: in.Code, Message: in.Message, AuthenticationRequired: in.AuthenticationRequired})
	return RecordAutoRechargeFailureResult{ConsecutiveFailures: c.ConsecutiveFailures, Disabled: c.Disabled,
		DisabledReason: c.DisabledReason}, paymentError(err)
}

// SendAutoRechargeFailedInput is a decline to tell the user about.
type SendAutoRechargeFailedInput struct {
	AccountID      string
	AttemptKey     string
	AmountMicros   int64
	Message        string
	DisabledReason string // non-empty: auto-recharge was turned off
}

// SendAutoRechargeFailedResult has no fields yet.
type SendAutoRechargeFailedResult struct{}

// SendAutoRechargeFailed emails the user that the recharge failed.
func (p *PaymentActivities) SendAutoRechargeFailed(ctx context.Context, in SendAutoRechargeFailedInput) (SendAutoRechargeFailedResult, error) {
	err := p.Payments.SendDeclineNotice(ctx, payments.DeclineNotice{AccountID: in.AccountID, AttemptKey: in.AttemptKey,
		AmountMicros: in.AmountMicros, Message: in.Message, DisabledReason: in.DisabledReason})
	return SendAutoRechargeFailedResult{}, paymentError(err)
}
