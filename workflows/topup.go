package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/internal/payments/stripe"
	"github.com/beaver-gateway/beaver/models"
)

// pa is the typed nil pointer through which workflows name the payment
// activities.
var pa *activities.PaymentActivities

// SignalTopUpEvent tells a running TopUpSettlementWorkflow that Stripe sent
// another event for its session (payload: the event type).
const SignalTopUpEvent = "topup-event"

// TopUpWorkflowID names the settlement of a Checkout Session; one per
// session, ever.
func TopUpWorkflowID(sessionID string) string { return "topup:" + sessionID }

// Default waits of a settlement whose payment is still pending (delayed
// methods such as bank debits take days).
const (
	DefaultTopUpPollInterval = 6 * time.Hour
	DefaultTopUpMaxWait      = 14 * 24 * time.Hour
)

// TopUpSettlementInput names the session and the event that started the
// settlement.
type TopUpSettlementInput struct {
	SessionID string
	EventType string // checkout.session.completed | .async_payment_succeeded | .async_payment_failed
	// PollInterval and MaxWait bound the wait for a pending payment; zero
	// means DefaultTopUpPollInterval and DefaultTopUpMaxWait.
	PollInterval time.Duration
	MaxWait      time.Duration
}

// Settlement outcomes (TopUpSettlementResult.Status).
const (
	SettlementPaid    = models.TopUpPaid
	SettlementFailed  = models.TopUpFailed
	SettlementExpired = models.TopUpExpired
	// SettlementPending: still unpaid after MaxWait; nothing was changed.
	SettlementPending = models.TopUpPending
	// SettlementIgnored: not a top-up we can credit (setup mode, another
	// currency, no account).
	SettlementIgnored = "ignored"
)

// TopUpSettlementResult is what the settlement did.
type TopUpSettlementResult struct {
	Status       string
	AccountID    string
	AmountMicros int64
	EntryID      string
	// Credited is true when this run's credit created the ledger entry.
	Credited bool
}

// TopUpSettlementWorkflow settles a top-up Checkout Session: it reads the
// session from Stripe (the webhook is only a hint), credits the account
// exactly once when it is paid in USD (ledger reference
// stripe:checkout:<session>), marks a failed or expired one, and emails a
// receipt. An unpaid session (delayed payment method) waits for the next
// Stripe event (SignalTopUpEvent) or re-checks every PollInterval.
func TopUpSettlementWorkflow(ctx workflow.Context, in TopUpSettlementInput) (TopUpSettlementResult, error) {
	log := workflow.GetLogger(ctx)
	poll, maxWait := in.PollInterval, in.MaxWait
	if poll <= 0 {
		poll = DefaultTopUpPollInterval
	}
	if maxWait <= 0 {
		maxWait = DefaultTopUpMaxWait
	}
	deadline := workflow.Now(ctx).Add(maxWait)
	events := workflow.GetSignalChannel(ctx, SignalTopUpEvent)
	event := in.EventType

	stripeCtx := withActivity(ctx, 30*time.Second, 24*time.Hour, 0)
	dbCtx := withActivity(ctx, 30*time.Second, 24*time.Hour, 0)
	for {
		var got activities.GetCheckoutSessionResult
		if err := workflow.ExecuteActivity(stripeCtx, pa.GetCheckoutSession,
			activities.GetCheckoutSessionInput{SessionID: in.SessionID}).Get(ctx, &got); err != nil {
			return TopUpSettlementResult{}, err
		}
		s := got.Session
		res := TopUpSettlementResult{AccountID: s.AccountID, AmountMicros: s.AmountTotalMicros}
		if s.Mode != "payment" || (s.Kind != "" && s.Kind != stripe.KindTopUp) || s.AccountID == "" {
			log.Warn("checkout session is not a card top-up; ignored", "session_id", s.ID, "mode", s.Mode, "kind", s.Kind)
			res.Status = SettlementIgnored
			return res, nil
		}
		switch {
		case s.PaymentStatus == "paid":
			if s.Currency != "usd" || s.AmountTotalMicros <= 0 {
				log.Error("paid checkout session is not in USD; not credited", "session_id", s.ID, "currency", s.Currency)
				res.Status = SettlementIgnored
				return res, nil
			}
			var cr activities.CreditTopUpResult
			if err := workflow.ExecuteActivity(dbCtx, pa.CreditTopUp, activities.CreditTopUpInput{
				SessionID: s.ID, AccountID: s.AccountID, AmountMicros: s.AmountTotalMicros,
				PaymentIntentID: s.PaymentIntentID, InvoiceURL: s.InvoiceURL, ReceiptURL: s.ReceiptURL,
			}).Get(ctx, &cr); err != nil {
				return res, err
			}
			res.Status, res.EntryID, res.Credited = SettlementPaid, cr.EntryID, cr.Created
			// The receipt is best effort: a mail outage must not undo or
			// block the credit. Its idempotency key is the session.
			mailCtx := withActivity(ctx, time.Minute, 6*time.Hour, 10)
			if err := workflow.ExecuteActivity(mailCtx, pa.SendTopUpReceipt, activities.SendTopUpReceiptInput{
				SessionID: s.ID, AccountID: s.AccountID, AmountMicros: s.AmountTotalMicros,
				BalanceAfterMicros: cr.BalanceAfterMicros, EntryID: cr.EntryID,
			}).Get(ctx, nil); err != nil {
				log.Error("top-up receipt not sent", "session_id", s.ID, "error", err)
			}
			return res, nil
		case event == stripe.EventCheckoutSessionAsyncFailed || s.Status == "expired":
			status := SettlementFailed
			if s.Status == "expired" {
				status = SettlementExpired
			}
			if err := workflow.ExecuteActivity(dbCtx, pa.MarkTopUp, activities.MarkTopUpInput{
				SessionID: s.ID, AccountID: s.AccountID, AmountMicros: s.AmountTotalMicros,
				PaymentIntentID: s.PaymentIntentID, Status: status,
			}).Get(ctx, nil); err != nil {
				return res, err
			}
			res.Status = status
			return res, nil
		}

		// Unpaid: wait for Stripe's next event, or re-check now and then.
		now := workflow.Now(ctx)
		if !now.Before(deadline) {
			res.Status = SettlementPending
			return res, nil
		}
		wait := poll
		if left := deadline.Sub(now); left < wait {
			wait = left
		}
		timerCtx, cancel := workflow.WithCancel(ctx)
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(events, func(c workflow.ReceiveChannel, _ bool) {
			var ev string
			c.Receive(ctx, &ev)
			if ev != "" {
				event = ev
			}
		})
		sel.AddFuture(workflow.NewTimer(timerCtx, wait), func(workflow.Future) {})
		sel.Select(ctx)
		cancel()
	}
}
