package workflows

import (
	"context"
	"errors"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/beaver-gateway/beaver/activities"
)

// RefundWorkflowID names an admin refund of a top-up; key is the request's
// Idempotency-Key (or a random one).
func RefundWorkflowID(topUpID, key string) string { return "refund:" + topUpID + ":" + key }

// AutoRechargeWorkflowID names an account's auto-recharge; one runs at a
// time per account.
func AutoRechargeWorkflowID(accountID string) string { return "autorecharge:" + accountID }

// RefundInput refunds AmountMicros (whole cents) of a card top-up.
type RefundInput struct {
	TopUpID      string
	AmountMicros int64
}

// Refund outcomes (RefundResult.Status).
const (
	RefundSucceeded = activities.RefundSucceeded
	RefundFailed    = activities.RefundFailed   // Stripe refused; debit credited back
	RefundRejected  = activities.RefundRejected // too large or not enough unspent balance
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

// AutoRechargeInput names the account to recharge.
type AutoRechargeInput struct {
	AccountID string
}

// Auto-recharge outcomes (AutoRechargeResult.Status).
const (
	AutoRechargeSkipped  = "skipped"  // disabled, no card, or balance not below the threshold
	AutoRechargeCharged  = "charged"  // card charged and balance credited
	AutoRechargePending  = "pending"  // Stripe is still processing; not credited
	AutoRechargeDeclined = "declined" // card declined (Disabled tells whether it was turned off)
)

// AutoRechargeResult is what the recharge did.
type AutoRechargeResult struct {
	Status              string
	PaymentIntentID     string
	AmountMicros        int64
	EntryID             string
	ConsecutiveFailures int64
	Disabled            bool
	Reason              string
}

// AutoRechargeWorkflow charges the account's saved card once when its
// available balance is below its auto-recharge threshold: credit on success
// (reference stripe:pi:<payment intent>), on a decline count the failure
// (auto-recharge is disabled after 3 in a row or when the card needs
// authentication) and email the user.
func AutoRechargeWorkflow(ctx workflow.Context, in AutoRechargeInput) (AutoRechargeResult, error) {
	info := workflow.GetInfo(ctx)
	attempt := info.WorkflowExecution.ID + ":" + info.WorkflowExecution.RunID
	dbCtx := withActivity(ctx, 30*time.Second, 24*time.Hour, 0)
	// The charge retries only transient errors and for a bounded time: a
	// recharge hours late is worse than the next one.
	stripeCtx := withActivity(ctx, 30*time.Second, 30*time.Minute, 0)

	var cur activities.GetAutoRechargeResult
	if err := workflow.ExecuteActivity(dbCtx, pa.GetAutoRecharge, activities.GetAutoRechargeInput{AccountID: in.AccountID}).Get(ctx, &cur); err != nil {
		return AutoRechargeResult{}, err
	}
	st := cur.Settings
	if !cur.Found || !st.Enabled || st.PaymentMethodID == "" || st.StripeCustomerID == "" || st.AmountMicros <= 0 ||
		cur.AvailableMicros >= st.ThresholdMicros {
		return AutoRechargeResult{Status: AutoRechargeSkipped}, nil
	}
	res := AutoRechargeResult{AmountMicros: st.AmountMicros}
	var ch activities.ChargeAutoRechargeResult
	if err := workflow.ExecuteActivity(stripeCtx, pa.ChargeAutoRecharge, activities.ChargeAutoRechargeInput{
		AccountID: in.AccountID, CustomerID: st.StripeCustomerID, PaymentMethodID: st.PaymentMethodID,
		AmountMicros: st.AmountMicros, IdempotencyKey: attempt}).Get(ctx, &ch); err != nil {
		return res, err
	}
	res.PaymentIntentID = ch.PaymentIntentID
	switch {
	case ch.Succeeded:
		amount := ch.AmountMicros
		if amount <= 0 {
			amount = st.AmountMicros
		}
		var cr activities.CreditAutoRechargeResult
		if err := workflow.ExecuteActivity(dbCtx, pa.CreditAutoRecharge, activities.CreditAutoRechargeInput{
			AccountID: in.AccountID, PaymentIntentID: ch.PaymentIntentID, AmountMicros: amount,
			ReceiptURL: ch.ReceiptURL}).Get(ctx, &cr); err != nil {
			return res, err
		}
		res.Status, res.EntryID, res.AmountMicros = AutoRechargeCharged, cr.EntryID, amount
		return res, nil
	case ch.Pending:
		res.Status = AutoRechargePending
		return res, nil
	}
	var fr activities.RecordAutoRechargeFailureResult
	if err := workflow.ExecuteActivity(dbCtx, pa.RecordAutoRechargeFailure, activities.RecordAutoRechargeFailureInput{
		AccountID: in.AccountID, AttemptKey: attempt, Code: ch.Code, Message: ch.Message,
		AuthenticationRequired: ch.AuthenticationRequired}).Get(ctx, &fr); err != nil {
		return res, err
	}
	res.Status, res.ConsecutiveFailures, res.Disabled, res.Reason = AutoRechargeDeclined, fr.ConsecutiveFailures, fr.Disabled, ch.Message
	mailCtx := withActivity(ctx, time.Minute, 6*time.Hour, 10)
	if err := workflow.ExecuteActivity(mailCtx, pa.SendAutoRechargeFailed, activities.SendAutoRechargeFailedInput{
		AccountID: in.AccountID, AttemptKey: attempt, AmountMicros: st.AmountMicros, Message: ch.Message,
		DisabledReason: fr.DisabledReason}).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("auto-recharge failure email not sent", "account_id", in.AccountID, "error", err)
	}
	return res, nil
}

// BillingStarter starts refunds and auto-recharges on Temporal.
type BillingStarter struct {
	Client    client.Client
	TaskQueue string // "" = TaskQueue
}

func (s BillingStarter) queue() string {
	if s.TaskQueue == "" {
		return TaskQueue
	}
	return s.TaskQueue
}

// StartRefund starts the refund under id RefundWorkflowID(in.TopUpID, key);
// the same key again returns the same workflow (never a second refund).
func (s BillingStarter) StartRefund(ctx context.Context, key string, in RefundInput) (string, error) {
	if s.Client == nil {
		return "", errors.New("temporal client not configured")
	}
	id := RefundWorkflowID(in.TopUpID, key)
	_, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: s.queue(),
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, RefundWorkflow, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if err != nil && !errors.As(err, &started) {
		return "", err
	}
	return id, nil
}

// StartAutoRecharge starts the account's recharge unless one is running
// (USE_EXISTING: one per account at a time; a finished one may run again).
func (s BillingStarter) StartAutoRecharge(ctx context.Context, accountID string) error {
	if s.Client == nil {
		return errors.New("temporal client not configured")
	}
	id := AutoRechargeWorkflowID(accountID)
	_, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: s.queue(),
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, AutoRechargeWorkflow, AutoRechargeInput{AccountID: accountID})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil
	}
	return err
}
