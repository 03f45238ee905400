package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/activity"
	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/mail"
	"github.com/beaver-gateway/beaver/models"
)

// CheckBalanceInput names the account.
type CheckBalanceInput struct {
	AccountID string
}

// CheckBalanceResult is the account's balance and alert threshold now.
type CheckBalanceResult struct {
	Found           bool
	Active          bool
	BalanceMicros   int64
	ThresholdMicros int64
}

// Low reports whether the balance is below the alert threshold.
func (r CheckBalanceResult) Low() bool {
	return r.Found && r.Active && r.BalanceMicros < r.ThresholdMicros
}

// CheckBalance reads the balance and the alert threshold.
func (a *Activities) CheckBalance(ctx context.Context, in CheckBalanceInput) (CheckBalanceResult, error) {
	var acct models.Account
	err := a.DB.WithContext(ctx).Select("active", "balance_micros", "low_balance_threshold_micros").
		Where("id = ?", in.AccountID).Take(&acct).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return CheckBalanceResult{}, nil
	}
	if err != nil {
		return CheckBalanceResult{}, fmt.Errorf("load balance: %w", err)
	}
	return CheckBalanceResult{Found: true, Active: acct.Active, BalanceMicros: acct.BalanceMicros,
		ThresholdMicros: acct.LowBalanceThresholdMicros}, nil
}

// SendLowBalanceAlertInput names the account.
type SendLowBalanceAlertInput struct {
	AccountID string
}

// SendLowBalanceAlertResult says whether the email went out; when the
// balance was already back above the threshold (or the account is gone or
// disabled) nothing is sent.
type SendLowBalanceAlertResult struct {
	Sent    bool
	Balance CheckBalanceResult
}

// SendLowBalanceAlert emails the low-balance alert if the balance is still
// below the threshold. Its idempotency key is the workflow run's, so the
// alert goes out once per run however often the activity is retried.
func (a *Activities) SendLowBalanceAlert(ctx context.Context, in SendLowBalanceAlertInput) (SendLowBalanceAlertResult, error) {
	var acct models.Account
	err := a.DB.WithContext(ctx).Where("id = ?", in.AccountID).Take(&acct).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return SendLowBalanceAlertResult{}, nil
	}
	if err != nil {
		return SendLowBalanceAlertResult{}, fmt.Errorf("load account: %w", err)
	}
	b := CheckBalanceResult{Found: true, Active: acct.Active, BalanceMicros: acct.BalanceMicros,
		ThresholdMicros: acct.LowBalanceThresholdMicros}
	if !b.Low() {
		return SendLowBalanceAlertResult{Balance: b}, nil
	}
	m := mail.LowBalance(acct.Email, acct.BalanceMicros, acct.LowBalanceThresholdMicros, a.PublicURL+"/billing")
	run := activity.GetInfo(ctx).WorkflowExecution
	m.IdempotencyKey = "low-balance:" + run.ID + ":" + run.RunID
	if err := a.send(ctx, m); err != nil {
		return SendLowBalanceAlertResult{}, err
	}
	return SendLowBalanceAlertResult{Sent: true, Balance: b}, nil
}
