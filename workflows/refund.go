package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/models"
)

// RefundWorkflowID names an admin refund of a top-up; key is the request's
// Idempotency-Key (or a random one).
func RefundWorkflowID(topUpID, key string) string { return "refund:" + topUpID + ":" + key }

// RefundInput refunds AmountMicros (whole cents) of a card top-up.
type RefundInput struct {
	TopUpID      string
	AmountMicros int64
}

// Refund outcomes (RefundResult.Status).
const (
	RefundSucceeded = models.RefundSucceeded
	RefundFailed    = models.RefundFailed   // Stripe refused; debit credited back
	RefundRejected  = models.RefundRejected // too large or not enough unspent balance
)

// RefundResult is what the refund did.
type RefundResult struct {
	Status         string
	RefundID       string
	AccountID      string
	AmountMicros   int64
	StripeRefundID string
	Reason         string
}

// RefundWorkflow refunds part of a card top-up.
//
// Ordering: the ledger is debited FIRST (PrepareRefund, a conditional debit
// that fails when the user has already spent the money or the top-up has no
// refundable amount left), and only then is Stripe asked to refund, with an
// idempotency key derived from the refund id. The other order would let a
// user be refunded money they have already spent (or spend it while the
// refund is in flight), and money sent back by Stripe cannot be taken back.
// If Stripe definitively refuses, FinishRefund credits the debit back with a
// compensating "adjustment" entry (reference beaver:refund:<id>:reversal);
// transient Stripe errors are retried with the same idempotency key.
func RefundWorkflow(ctx workflow.Context, in RefundInput) (RefundResult, error) {
	key := workflow.GetInfo(ctx).WorkflowExecution.ID
	dbCtx := withActivity(ctx, 30*time.Second, 24*time.Hour, 0)
	stripeCtx := withActivity(ctx, 30*time.Second, 24*time.Hour, 0)

	var prep activities.PrepareRefundResult
	if err := workflow.ExecuteActivity(dbCtx, pa.PrepareRefund, activities.PrepareRefundInput{
		RequestKey: key, TopUpID: in.TopUpID, AmountMicros: in.AmountMicros}).Get(ctx, &prep); err != nil {
		var ae *temporal.ApplicationError
		if errors.As(err, &ae) && (ae.Type() == activities.ErrTypeRefundTooLarge ||
			ae.Type() == activities.ErrTypeRefundInsufficientBalance || ae.Type() == activities.ErrTypeBadInput) {
			return RefundResult{Status: RefundRejected, RefundID: prep.RefundID, AccountID: prep.AccountID,
				AmountMicros: in.AmountMicros, Reason: ae.Error()}, nil
		}
		return RefundResult{}, err
	}
	res := RefundResult{RefundID: prep.RefundID, AccountID: prep.AccountID, AmountMicros: prep.AmountMicros}

	var sr activities.StripeRefundResult
	if err := workflow.ExecuteActivity(stripeCtx, pa.StripeRefund, activities.StripeRefundInput{
		RefundID: prep.RefundID, PaymentIntentID: prep.PaymentIntentID, AmountMicros: prep.AmountMicros}).Get(ctx, &sr); err != nil {
		// Retries exhausted (a day of Stripe errors): we cannot know whether
		// Stripe refunded, so the refund stays pending and debited (never
		// credit back money that may have left) for an operator to settle;
		// a later charge.refunded webhook counts it as known.
		workflow.GetLogger(ctx).Error("refund left pending: Stripe did not answer", "refund_id", prep.RefundID, "error", err)
		return res, err
	}
	var fin activities.FinishRefundResult
	if err := workflow.ExecuteActivity(dbCtx, pa.FinishRefund, activities.FinishRefundInput{
		RefundID: prep.RefundID, StripeRefundID: sr.StripeRefundID, Failed: sr.Refused, Reason: sr.Reason}).Get(ctx, &fin); err != nil {
		return res, err
	}
	res.Status, res.StripeRefundID, res.Reason = fin.Status, sr.StripeRefundID, sr.Reason
	return res, nil
}
