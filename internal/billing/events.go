package billing

// Events is told what the engine and the ledger committed, so that the
// layers above can react (low-balance alerts, auto-recharge) without the
// billing package knowing them. It is given at construction
// (EngineOptions.Events, Ledger.Events); nil means NoEvents.
//
// The engine calls LowBalance and Charged on their own goroutines after a
// commit; CommitFailed and BalanceChanged run on the caller's goroutine, so
// they must not block.
type Events interface {
	// LowBalance: a charge took the account's balance from at or above its
	// low-balance threshold to below it.
	LowBalance(accountID string, balanceMicros, thresholdMicros int64)
	// Charged: a commit lowered the account's balance.
	Charged(accountID string, beforeMicros, afterMicros int64)
	// BalanceChanged: the ledger posted an entry (a top-up, refund or
	// adjustment) that left the balance at balanceMicros; thresholdMicros is
	// the account's low-balance threshold.
	BalanceChanged(accountID string, balanceMicros, thresholdMicros int64)
	// CommitFailed: a settlement could not be committed; the request was
	// not charged.
	CommitFailed(err error)
}

// NoEvents ignores every event.
type NoEvents struct{}

func (NoEvents) LowBalance(string, int64, int64)     {}
func (NoEvents) Charged(string, int64, int64)        {}
func (NoEvents) BalanceChanged(string, int64, int64) {}
func (NoEvents) CommitFailed(error)                  {}

func eventsOrNone(e Events) Events {
	if e == nil {
		return NoEvents{}
	}
	return e
}
