package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/payments"
	"github.com/beaver-gateway/beaver/workflows"
)

// balanceEvents are the billing engine's and the ledger's events
// (billing.Events), turned into workflows: a charge that crosses an
// account's low-balance threshold starts (or signals) its alert, one that
// crosses its auto-recharge threshold starts AutoRechargeWorkflow, and a
// credit that brings the balance back tells a waiting alert at once.
// Temporal being down loses nothing that matters: the alert re-checks the
// balance periodically, and the next crossing tries the recharge again.
type balanceEvents struct {
	workflows *workflows.Starter
	recharge  *payments.RechargeTrigger
	log       *slog.Logger
}

var _ billing.Events = balanceEvents{}

// eventTimeout bounds each start or signal an event makes.
const eventTimeout = 10 * time.Second

func (e balanceEvents) LowBalance(accountID string, balance, threshold int64) {
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	if err := e.workflows.SignalLowBalance(ctx, accountID, balance, threshold); err != nil {
		e.log.Warn("low-balance alert not started", "account", accountID, "balance_micros", balance,
			"threshold_micros", threshold, "err", err)
	}
}

func (e balanceEvents) Charged(accountID string, before, after int64) {
	if !e.recharge.Due(accountID, before, after) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	// One per account at a time; a failure waits for the next crossing.
	if err := e.workflows.StartAutoRecharge(ctx, accountID); err != nil {
		e.log.Debug("auto-recharge not started", "account", accountID, "err", err)
	}
}

func (e balanceEvents) BalanceChanged(accountID string, balance, threshold int64) {
	if balance < threshold {
		return // still low: a running alert keeps waiting
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
		defer cancel()
		if err := e.workflows.SignalLowBalance(ctx, accountID, balance, threshold); err != nil {
			e.log.Debug("low-balance recovery signal not sent", "account", accountID, "err", err)
		}
	}()
}

// CommitFailed: the engine logs it; nothing to start.
func (balanceEvents) CommitFailed(error) {}
