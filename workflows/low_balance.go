package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/beaver-gateway/beaver/activities"
)

// Low-balance alert tuning.
const (
	// DefaultBalanceCheck is how often a waiting alert re-reads the balance
	// (a top-up that sends no signal is noticed within this time).
	DefaultBalanceCheck = 6 * time.Hour
	// DefaultAlertWatch is how long an alert watches for the balance to come
	// back before it stops (dormant accounts do not keep workflows forever;
	// the next alert needs the balance to recover and drop again anyway).
	DefaultAlertWatch = 30 * 24 * time.Hour
	// waitsPerRun bounds one run's history; then the workflow continues as
	// new with its state in the input.
	waitsPerRun = 200
)

// More outcomes of LowBalanceAlertWorkflow.
const (
	OutcomeRecovered = "recovered" // the balance is back at or above the threshold
	OutcomeGaveUp    = "gave_up"   // still low after the watch period
)

// LowBalanceAlertInput starts (or continues) an account's alert. The billing
// hook starts it with SignalWithStart, so the workflow also finds the same
// balance as its first signal.
type LowBalanceAlertInput struct {
	AccountID       string
	BalanceMicros   int64 // as the charge that crossed the threshold left it
	ThresholdMicros int64
	// CheckEvery overrides DefaultBalanceCheck; WatchFor overrides
	// DefaultAlertWatch (tests).
	CheckEvery time.Duration
	WatchFor   time.Duration
	// Carried over by continue-as-new.
	Emailed bool
	Until   time.Time
}

// LowBalanceAlertResult is how the alert ended.
type LowBalanceAlertResult struct {
	Outcome       string
	Emailed       bool
	BalanceMicros int64
}

// BalanceSignal is the SignalBalance payload: an account's balance and
// threshold after a change (a charge crossing below, or a top-up).
type BalanceSignal struct {
	BalanceMicros   int64
	ThresholdMicros int64
}

// LowBalanceAlertWorkflow emails one alert when a balance falls below the
// account's threshold, then waits until the balance is back above it (a
// balance signal, or the periodic check), and completes. Signals that arrive
// while it waits (more charges crossing below after small top-ups) send no
// more email: one email per episode, no storms.
func LowBalanceAlertWorkflow(ctx workflow.Context, in LowBalanceAlertInput) (LowBalanceAlertResult, error) {
	every := in.CheckEvery
	if every <= 0 {
		every = DefaultBalanceCheck
	}
	if in.Until.IsZero() {
		watch := in.WatchFor
		if watch <= 0 {
			watch = DefaultAlertWatch
		}
		in.Until = workflow.Now(ctx).Add(watch)
	}
	res := LowBalanceAlertResult{Emailed: in.Emailed, BalanceMicros: in.BalanceMicros}
	signals := workflow.GetSignalChannel(ctx, SignalBalance)

	if !in.Emailed {
		var sent activities.SendLowBalanceAlertResult
		err := workflow.ExecuteActivity(withActivity(ctx, 30*time.Second, 6*time.Hour, 0), a.SendLowBalanceAlert,
			activities.SendLowBalanceAlertInput{AccountID: in.AccountID}).Get(ctx, &sent)
		if err != nil {
			return res, err
		}
		res.BalanceMicros = sent.Balance.BalanceMicros
		if !sent.Sent {
			res.Outcome = OutcomeRecovered
			if !sent.Balance.Found || !sent.Balance.Active {
				res.Outcome = OutcomeSkipped
			}
			return res, nil
		}
		res.Emailed = true
	}

	log := workflow.GetLogger(ctx)
	for waits := 0; ; waits++ {
		recovered, timedOut := false, false
		wait := min(every, in.Until.Sub(workflow.Now(ctx)))
		if wait <= 0 {
			res.Outcome = OutcomeGaveUp
			return res, nil
		}
		tctx, cancelTimer := workflow.WithCancel(ctx)
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(signals, func(c workflow.ReceiveChannel, _ bool) {
			var s BalanceSignal
			c.Receive(ctx, &s)
			res.BalanceMicros = s.BalanceMicros
			recovered = s.BalanceMicros >= s.ThresholdMicros
		})
		sel.AddFuture(workflow.NewTimer(tctx, wait), func(workflow.Future) { timedOut = true })
		sel.Select(ctx)
		cancelTimer()
		if timedOut {
			var b activities.CheckBalanceResult
			err := workflow.ExecuteActivity(withActivity(ctx, 30*time.Second, 10*time.Minute, 0), a.CheckBalance,
				activities.CheckBalanceInput{AccountID: in.AccountID}).Get(ctx, &b)
			if err != nil {
				log.Warn("balance check failed; trying again at the next check", "account", in.AccountID, "error", err)
			} else {
				res.BalanceMicros = b.BalanceMicros
				recovered = !b.Low()
			}
		}
		if recovered {
			res.Outcome = OutcomeRecovered
			return res, nil
		}
		if waits+1 >= waitsPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			// Take the signals already delivered to this run along.
			var s BalanceSignal
			for signals.ReceiveAsync(&s) {
				res.BalanceMicros = s.BalanceMicros
				if s.BalanceMicros >= s.ThresholdMicros {
					res.Outcome = OutcomeRecovered
					return res, nil
				}
			}
			next := in
			next.Emailed, next.BalanceMicros = true, res.BalanceMicros
			return res, workflow.NewContinueAsNewError(ctx, LowBalanceAlertWorkflow, next)
		}
	}
}
