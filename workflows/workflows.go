// Package workflows holds Beaver's Temporal workflows: their names (the
// contract's workflow types are the function names), their inputs and
// results (one struct each, so fields can be added without breaking
// histories), the workflow IDs built from business keys, and the task queue.
//
// Workflow code is deterministic: time comes from workflow.Now and timers,
// concurrency from workflow.Go and selectors; side effects live in package
// activities and are called through the typed nil pointer a.
package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/beaver-gateway/beaver/activities"
)

// TaskQueue is the contract's task queue (BEAVER_TASK_QUEUE overrides it).
const TaskQueue = "beaver"

// Message names.
const (
	// UpdateConsume is the update that spends an emailed token
	// (EmailVerificationWorkflow, PasswordResetWorkflow).
	UpdateConsume = "consume"
	// SignalBalance tells LowBalanceAlertWorkflow a new balance.
	SignalBalance = "balance"
)

// a is the typed nil pointer through which workflows name activities.
var a *activities.Activities

// Workflow IDs, from business keys.

// RepricingWorkflowID names a price computation requested with key (the API
// uses a random key: every request computes).
func RepricingWorkflowID(key string) string { return "repricing:" + key }

// UsageResetWorkflowID names the reset that starts month (YYYY-MM); one per
// month.
func UsageResetWorkflowID(month string) string { return "usage-reset:" + month }

// LowBalanceWorkflowID names an account's low-balance alert.
func LowBalanceWorkflowID(accountID string) string { return "low-balance:" + accountID }

// EmailVerificationWorkflowID names an account's pending email verification.
func EmailVerificationWorkflowID(accountID string) string { return "verify:" + accountID }

// PasswordResetWorkflowID names an account's pending password reset.
func PasswordResetWorkflowID(accountID string) string { return "pwreset:" + accountID }

// ModelDiscoveryWorkflowID names a model discovery requested with key (the
// API uses a random key: every request runs; the schedule's runs are named
// by Temporal from the action's id and the scheduled time).
func ModelDiscoveryWorkflowID(key string) string { return "model-discovery:" + key }

// Schedule IDs (CONTRACT.md "Temporal names").
const (
	ScheduleRepricing         = "beaver-repricing-daily"
	ScheduleUsageReset        = "beaver-usage-reset-monthly"
	ScheduleLeaseSweep        = "beaver-lease-sweep"
	ScheduleModelDiscovery    = "beaver-model-discovery-daily"
	ScheduleUsageLogRetention = "beaver-usage-log-retention-daily"
)

// retrying is the activity retry policy for work that must eventually
// happen: quick first retries, then at most once a minute.
var retrying = &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute}

func withActivity(ctx workflow.Context, startToClose, scheduleToClose time.Duration, attempts int32) workflow.Context {
	p := *retrying
	p.MaximumAttempts = attempts
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    startToClose,
		ScheduleToCloseTimeout: scheduleToClose,
		RetryPolicy:            &p,
	})
}
