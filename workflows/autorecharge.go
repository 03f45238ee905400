package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/beaver-gateway/beaver/activities"
)

// AutoRechargeWorkflowID names an account's auto-recharge; one runs at a
// time per account.
func AutoRechargeWorkflowID(accountID string) string { return "autorecharge:" + accountID }

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
