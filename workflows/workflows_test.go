package workflows_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
	"github.com/beaver-gateway/beaver/worker"
	"github.com/beaver-gateway/beaver/workflows"
)

// a names activities for env.OnActivity, as in the workflows.
var a *activities.Activities

const argonHash = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5"

func newWorkflowEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := testenv.WorkflowEnv(&s)
	worker.Register(env, &activities.Activities{})
	env.SetStartTime(time.Date(2026, 12, 1, 0, 0, 3, 0, time.UTC))
	t.Cleanup(func() { env.AssertExpectations(t) })
	return env
}

// update sends UpdateConsume after delay and records how it ended.
type updateOutcome struct {
	accepted bool
	rejected error
	done     bool
	err      error
}

func sendUpdate(env *testsuite.TestWorkflowEnvironment, delay time.Duration, id string, arg any) *updateOutcome {
	o := &updateOutcome{}
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(workflows.UpdateConsume, id, &testsuite.TestUpdateCallback{
			OnAccept:   func() { o.accepted = true },
			OnReject:   func(err error) { o.rejected = err },
			OnComplete: func(_ any, err error) { o.done, o.err = true, err },
		}, arg)
	}, delay)
	return o
}

func TestRepricingWorkflow(t *testing.T) {
	env := newWorkflowEnv(t)
	env.OnActivity(a.Reprice, mock.Anything, activities.RepriceInput{Reason: "admin"}).
		Return(activities.RepriceResult{Version: 7}, nil).Once()
	env.ExecuteWorkflow(workflows.RepricingWorkflow, workflows.RepricingInput{Reason: "admin"})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res workflows.RepricingResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, int64(7), res.Version)
}

func TestRepricingRetriesTransientFailures(t *testing.T) {
	env := newWorkflowEnv(t)
	env.OnActivity(a.Reprice, mock.Anything, mock.Anything).Return(activities.RepriceResult{}, errors.New("database is locked")).Twice()
	env.OnActivity(a.Reprice, mock.Anything, mock.Anything).Return(activities.RepriceResult{Version: 3}, nil).Once()
	env.ExecuteWorkflow(workflows.RepricingWorkflow, workflows.RepricingInput{})
	require.NoError(t, env.GetWorkflowError())
}

func TestMonthlyUsageResetTakesTheMonthFromItsStart(t *testing.T) {
	env := newWorkflowEnv(t) // starts 2026-12-01 00:00:03 UTC, like the schedule's run
	env.OnActivity(a.ResetMonthlyUsage, mock.Anything, activities.ResetMonthlyUsageInput{Month: "2026-12"}).
		Return(activities.ResetMonthlyUsageResult{Accounts: 4}, nil).Once()
	env.ExecuteWorkflow(workflows.MonthlyUsageResetWorkflow, workflows.MonthlyUsageResetInput{})
	var res workflows.MonthlyUsageResetResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.MonthlyUsageResetResult{Month: "2026-12", Accounts: 4}, res)
}

func TestMonthlyUsageResetBadMonthIsNotRetried(t *testing.T) {
	env := newWorkflowEnv(t)
	env.OnActivity(a.ResetMonthlyUsage, mock.Anything, mock.Anything).
		Return(activities.ResetMonthlyUsageResult{}, temporal.NewNonRetryableApplicationError("month must be YYYY-MM", activities.ErrTypeBadInput, nil)).Once()
	env.ExecuteWorkflow(workflows.MonthlyUsageResetWorkflow, workflows.MonthlyUsageResetInput{Month: "12/2026"})
	require.Error(t, env.GetWorkflowError())
}

func TestLeaseSweepWorkflow(t *testing.T) {
	env := newWorkflowEnv(t)
	env.OnActivity(a.SweepLeases, mock.Anything, mock.Anything).Return(activities.SweepLeasesResult{Returned: 2}, nil).Once()
	env.OnActivity(a.PurgeStoredResponses, mock.Anything, mock.Anything).Return(activities.PurgeStoredResponsesResult{Deleted: 7}, nil).Once()
	env.OnActivity(a.PurgeExpiredFiles, mock.Anything, mock.Anything).Return(activities.PurgeExpiredFilesResult{Deleted: 3}, nil).Once()
	env.OnActivity(a.PurgeAuthChallenges, mock.Anything, mock.Anything).Return(activities.PurgeAuthChallengesResult{Deleted: 4}, nil).Once()
	env.ExecuteWorkflow(workflows.LeaseSweepWorkflow, workflows.LeaseSweepInput{})
	var res workflows.LeaseSweepResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, 2, res.Returned)
	require.Equal(t, int64(7), res.PurgedResponses)
	require.Equal(t, 3, res.PurgedFiles)
	require.Equal(t, int64(4), res.PurgedChallenges)
}

// ---- email verification ----

func issued(env *testsuite.TestWorkflowEnvironment, purpose string, ttl time.Duration) {
	env.OnActivity(a.SendTokenEmail, mock.Anything, activities.SendTokenEmailInput{AccountID: "acct_1", Purpose: purpose, TTL: ttl}).
		Return(func(_ context.Context, in activities.SendTokenEmailInput) (activities.SendTokenEmailResult, error) {
			return activities.SendTokenEmailResult{TokenHash: "good-hash", ExpiresAt: env.Now().Add(in.TTL)}, nil
		}).Once()
}

func TestEmailVerificationConsumesTheGoodToken(t *testing.T) {
	env := newWorkflowEnv(t)
	issued(env, models.PurposeVerifyEmail, workflows.DefaultVerifyTTL)
	env.OnActivity(a.ConsumeVerification, mock.Anything, activities.ConsumeVerificationInput{AccountID: "acct_1", TokenHash: "good-hash"}).
		Return(activities.ConsumeVerificationResult{Verified: true}, nil).Once()
	wrong := sendUpdate(env, time.Minute, "u1", workflows.VerifyEmailUpdate{TokenHash: "bad-hash"})
	good := sendUpdate(env, 2*time.Minute, "u2", workflows.VerifyEmailUpdate{TokenHash: "good-hash"})
	// A double click: the second update, sent while the first is being
	// applied, waits for it and then finds the token spent.
	again := sendUpdate(env, 2*time.Minute, "u3", workflows.VerifyEmailUpdate{TokenHash: "good-hash"})

	env.ExecuteWorkflow(workflows.EmailVerificationWorkflow, workflows.EmailVerificationInput{AccountID: "acct_1"})

	require.True(t, activities.IsInvalidToken(wrong.rejected), "wrong token: %v", wrong.rejected)
	require.True(t, good.accepted && good.done && good.err == nil, "%+v", good)
	require.True(t, activities.IsInvalidToken(again.rejected) || (again.done && activities.IsInvalidToken(again.err)),
		"spent token must be refused: %+v", again)
	var res workflows.EmailVerificationResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.OutcomeConsumed, res.Outcome)
}

func TestEmailVerificationExpires(t *testing.T) {
	env := newWorkflowEnv(t)
	issued(env, models.PurposeVerifyEmail, time.Hour)
	late := sendUpdate(env, 61*time.Minute, "late", workflows.VerifyEmailUpdate{TokenHash: "good-hash"})
	env.ExecuteWorkflow(workflows.EmailVerificationWorkflow, workflows.EmailVerificationInput{AccountID: "acct_1", TTL: time.Hour})
	var res workflows.EmailVerificationResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.OutcomeExpired, res.Outcome)
	// The update arrived after the workflow closed: never accepted.
	require.False(t, late.accepted)
	require.False(t, late.done && late.err == nil)
}

func TestEmailVerificationSkipsVerifiedAccounts(t *testing.T) {
	env := newWorkflowEnv(t)
	env.OnActivity(a.SendTokenEmail, mock.Anything, mock.Anything).
		Return(activities.SendTokenEmailResult{Skipped: true, Reason: "email already verified"}, nil).Once()
	env.ExecuteWorkflow(workflows.EmailVerificationWorkflow, workflows.EmailVerificationInput{AccountID: "acct_1"})
	var res workflows.EmailVerificationResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.EmailVerificationResult{Outcome: workflows.OutcomeSkipped, Reason: "email already verified"}, res)
}

func TestEmailVerificationMailRejectedFailsWithoutRetry(t *testing.T) {
	env := newWorkflowEnv(t)
	env.OnActivity(a.SendTokenEmail, mock.Anything, mock.Anything).
		Return(activities.SendTokenEmailResult{}, temporal.NewNonRetryableApplicationError("422 invalid to", activities.ErrTypeMailRejected, nil)).Once()
	env.ExecuteWorkflow(workflows.EmailVerificationWorkflow, workflows.EmailVerificationInput{AccountID: "acct_1"})
	err := env.GetWorkflowError()
	var ae *temporal.ApplicationError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, activities.ErrTypeMailRejected, ae.Type())
}

func TestEmailVerificationRetriesTheMail(t *testing.T) {
	env := newWorkflowEnv(t)
	env.OnActivity(a.SendTokenEmail, mock.Anything, mock.Anything).
		Return(activities.SendTokenEmailResult{}, errors.New("resend: 503")).Times(3)
	issued(env, models.PurposeVerifyEmail, workflows.DefaultVerifyTTL)
	env.ExecuteWorkflow(workflows.EmailVerificationWorkflow, workflows.EmailVerificationInput{AccountID: "acct_1"})
	var res workflows.EmailVerificationResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.OutcomeExpired, res.Outcome)
}

func TestEmailVerificationUpdateWhileTheMailIsStillGoing(t *testing.T) {
	// A link clicked before the workflow has heard back from the email
	// activity: admitted, then compared once the hash is known.
	env := newWorkflowEnv(t)
	env.OnActivity(a.SendTokenEmail, mock.Anything, mock.Anything).After(10 * time.Minute).
		Return(func(_ context.Context, in activities.SendTokenEmailInput) (activities.SendTokenEmailResult, error) {
			return activities.SendTokenEmailResult{TokenHash: "good-hash", ExpiresAt: env.Now().Add(in.TTL)}, nil
		}).Once()
	env.OnActivity(a.ConsumeVerification, mock.Anything, mock.Anything).Return(activities.ConsumeVerificationResult{Verified: true}, nil).Once()
	early := sendUpdate(env, time.Minute, "early", workflows.VerifyEmailUpdate{TokenHash: "good-hash"})
	earlyBad := sendUpdate(env, 2*time.Minute, "early-bad", workflows.VerifyEmailUpdate{TokenHash: "bad-hash"})
	env.ExecuteWorkflow(workflows.EmailVerificationWorkflow, workflows.EmailVerificationInput{AccountID: "acct_1"})
	require.True(t, early.done && early.err == nil, "%+v", early)
	require.True(t, earlyBad.done && activities.IsInvalidToken(earlyBad.err), "%+v", earlyBad)
	var res workflows.EmailVerificationResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.OutcomeConsumed, res.Outcome)
}

// ---- password reset ----

func TestPasswordResetSetsTheHashedPassword(t *testing.T) {
	env := newWorkflowEnv(t)
	issued(env, models.PurposePasswordReset, workflows.DefaultResetTTL)
	env.OnActivity(a.ConsumePasswordReset, mock.Anything,
		activities.ConsumePasswordResetInput{AccountID: "acct_1", TokenHash: "good-hash", PasswordHash: argonHash}).
		Return(activities.ConsumePasswordResetResult{SessionsRevoked: true}, nil).Once()
	plain := sendUpdate(env, time.Minute, "plain", workflows.ResetPasswordUpdate{TokenHash: "good-hash", PasswordHash: "hunter2hunter2"})
	good := sendUpdate(env, 2*time.Minute, "good", workflows.ResetPasswordUpdate{TokenHash: "good-hash", PasswordHash: argonHash})
	env.ExecuteWorkflow(workflows.PasswordResetWorkflow, workflows.PasswordResetInput{AccountID: "acct_1"})
	require.Error(t, plain.rejected, "a plain password must be rejected by the validator")
	require.False(t, plain.accepted)
	require.True(t, good.done && good.err == nil, "%+v", good)
	var res workflows.PasswordResetResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.OutcomeConsumed, res.Outcome)
}

func TestPasswordResetTokenRefusedByTheDatabase(t *testing.T) {
	// The token was spent another way (the direct path): the update fails
	// with InvalidToken, and the workflow keeps waiting until it expires.
	env := newWorkflowEnv(t)
	issued(env, models.PurposePasswordReset, workflows.DefaultResetTTL)
	env.OnActivity(a.ConsumePasswordReset, mock.Anything, mock.Anything).
		Return(activities.ConsumePasswordResetResult{}, activities.InvalidTokenError()).Once()
	u := sendUpdate(env, time.Minute, "u", workflows.ResetPasswordUpdate{TokenHash: "good-hash", PasswordHash: argonHash})
	env.ExecuteWorkflow(workflows.PasswordResetWorkflow, workflows.PasswordResetInput{AccountID: "acct_1"})
	require.True(t, u.accepted && u.done && activities.IsInvalidToken(u.err), "%+v", u)
	var res workflows.PasswordResetResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.OutcomeExpired, res.Outcome)
}

// ---- low balance ----

func lowBalanceInput() workflows.LowBalanceAlertInput {
	return workflows.LowBalanceAlertInput{AccountID: "acct_1", BalanceMicros: 900_000, ThresholdMicros: 1_000_000}
}

func low(b int64) activities.CheckBalanceResult {
	return activities.CheckBalanceResult{Found: true, Active: true, BalanceMicros: b, ThresholdMicros: 1_000_000}
}

func TestLowBalanceEmailsOnceThenWaitsForRecovery(t *testing.T) {
	env := newWorkflowEnv(t)
	env.OnActivity(a.SendLowBalanceAlert, mock.Anything, activities.SendLowBalanceAlertInput{AccountID: "acct_1"}).
		Return(activities.SendLowBalanceAlertResult{Sent: true, Balance: low(900_000)}, nil).Once()
	// More charges cross below after small top-ups: no more email.
	for i, d := range []time.Duration{time.Minute, time.Hour, 2 * time.Hour} {
		b := int64(800_000 - i*100_000)
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(workflows.SignalBalance, workflows.BalanceSignal{BalanceMicros: b, ThresholdMicros: 1_000_000})
		}, d)
	}
	// A top-up brings it back.
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(workflows.SignalBalance, workflows.BalanceSignal{BalanceMicros: 5_000_000, ThresholdMicros: 1_000_000})
	}, 3*time.Hour)
	env.ExecuteWorkflow(workflows.LowBalanceAlertWorkflow, lowBalanceInput())
	var res workflows.LowBalanceAlertResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.LowBalanceAlertResult{Outcome: workflows.OutcomeRecovered, Emailed: true, BalanceMicros: 5_000_000}, res)
}

func TestLowBalancePeriodicCheckNoticesRecovery(t *testing.T) {
	env := newWorkflowEnv(t)
	env.OnActivity(a.SendLowBalanceAlert, mock.Anything, mock.Anything).
		Return(activities.SendLowBalanceAlertResult{Sent: true, Balance: low(900_000)}, nil).Once()
	env.OnActivity(a.CheckBalance, mock.Anything, mock.Anything).Return(low(900_000), nil).Once()
	env.OnActivity(a.CheckBalance, mock.Anything, mock.Anything).Return(activities.CheckBalanceResult{}, errors.New("db down")).Times(4)
	env.OnActivity(a.CheckBalance, mock.Anything, mock.Anything).Return(low(2_000_000), nil).Once()
	start := env.Now()
	env.ExecuteWorkflow(workflows.LowBalanceAlertWorkflow, lowBalanceInput())
	var res workflows.LowBalanceAlertResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.OutcomeRecovered, res.Outcome)
	require.GreaterOrEqual(t, env.Now().Sub(start), 2*workflows.DefaultBalanceCheck)
}

func TestLowBalanceAlreadyRecoveredSendsNothing(t *testing.T) {
	env := newWorkflowEnv(t)
	env.OnActivity(a.SendLowBalanceAlert, mock.Anything, mock.Anything).
		Return(activities.SendLowBalanceAlertResult{Balance: low(3_000_000)}, nil).Once()
	env.ExecuteWorkflow(workflows.LowBalanceAlertWorkflow, lowBalanceInput())
	var res workflows.LowBalanceAlertResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.OutcomeRecovered, res.Outcome)
	require.False(t, res.Emailed)
}

func TestLowBalanceGivesUpAfterTheWatchPeriod(t *testing.T) {
	env := newWorkflowEnv(t)
	env.OnActivity(a.SendLowBalanceAlert, mock.Anything, mock.Anything).
		Return(activities.SendLowBalanceAlertResult{Sent: true, Balance: low(0)}, nil).Once()
	env.OnActivity(a.CheckBalance, mock.Anything, mock.Anything).Return(low(0), nil)
	in := lowBalanceInput()
	in.WatchFor = 24 * time.Hour
	env.ExecuteWorkflow(workflows.LowBalanceAlertWorkflow, in)
	var res workflows.LowBalanceAlertResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.OutcomeGaveUp, res.Outcome)
}

func TestLowBalanceContinuesAsNewWithoutEmailingAgain(t *testing.T) {
	env := newWorkflowEnv(t)
	env.OnActivity(a.SendLowBalanceAlert, mock.Anything, mock.Anything).
		Return(activities.SendLowBalanceAlertResult{Sent: true, Balance: low(500_000)}, nil).Once()
	env.OnActivity(a.CheckBalance, mock.Anything, mock.Anything).Return(low(500_000), nil)
	in := lowBalanceInput()
	in.CheckEvery = time.Minute
	env.ExecuteWorkflow(workflows.LowBalanceAlertWorkflow, in)
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, env.GetWorkflowError(), &can)
	require.Equal(t, "LowBalanceAlertWorkflow", can.WorkflowType.Name)
	// The next run starts with Emailed set: it will not email again.
	var next workflows.LowBalanceAlertInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.True(t, next.Emailed)
	require.False(t, next.Until.IsZero())
}
