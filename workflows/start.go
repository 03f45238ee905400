package workflows

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/temporalx"
	"github.com/beaver-gateway/beaver/models"
)

// StarterOptions configure the Starter.
type StarterOptions struct {
	// Conn is the Temporal connection, which may be down (nil = never up).
	Conn *temporalx.Conn
	// Auth hashes emailed tokens and, for a token no running workflow owns,
	// spends it directly.
	Auth      *auth.Service
	TaskQueue string // "" = TaskQueue
	Log       *slog.Logger
	// Registerer gets beaver_workflow_requests_total and
	// beaver_temporal_available; nil = none.
	Registerer prometheus.Registerer
	// Link lifetimes; 0 = auth.VerifyEmailTTL / auth.PasswordResetTTL
	// (tests shorten them).
	VerifyTTL time.Duration
	ResetTTL  time.Duration
	// CallTimeout bounds starts and signals (default 10s); UpdateTimeout
	// bounds a token update, which waits for its activity (default 20s).
	CallTimeout   time.Duration
	UpdateTimeout time.Duration
	// LowBalanceCheckEvery overrides the alert's periodic balance check
	// (tests).
	LowBalanceCheckEvery time.Duration
	// FineTuningPollEvery overrides how often a fine-tuning job is polled
	// (0 = DefaultFineTuningPollEvery; tests).
	FineTuningPollEvery time.Duration
}

// Starter is the one way into Beaver's workflows from outside a worker:
// it builds the workflow IDs, knows whether Temporal answers, and makes
// every start, signal and update (the API's Workflows, the billing events'
// low-balance alerts and auto-recharges). While Temporal is unreachable
// every method answers apierr 503 at once and changes nothing.
type Starter struct {
	o        StarterOptions
	requests *prometheus.CounterVec
}

// NewStarter returns the starter.
func NewStarter(o StarterOptions) *Starter {
	if o.TaskQueue == "" {
		o.TaskQueue = TaskQueue
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.VerifyTTL <= 0 {
		o.VerifyTTL = auth.VerifyEmailTTL
	}
	if o.ResetTTL <= 0 {
		o.ResetTTL = auth.PasswordResetTTL
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	if o.UpdateTimeout <= 0 {
		o.UpdateTimeout = 20 * time.Second
	}
	s := &Starter{o: o, requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "beaver_workflow_requests_total",
		Help: "Requests from the API to Temporal by operation and outcome (ok, rejected, unavailable, error)."},
		[]string{"op", "outcome"})}
	if o.Registerer != nil {
		_ = o.Registerer.Register(s.requests)
		_ = o.Registerer.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "beaver_temporal_available",
			Help: "1 when the API can reach Temporal."}, func() float64 {
			if s.Available() {
				return 1
			}
			return 0
		}))
	}
	return s
}

// Available reports whether Temporal answers.
func (s *Starter) Available() bool { return s.o.Conn != nil && s.o.Conn.Available() }

// ---- maintenance ----

// StartRepricing starts RepricingWorkflow and returns its id.
func (s *Starter) StartRepricing(ctx context.Context, reason string) (string, error) {
	id := RepricingWorkflowID(strings.TrimPrefix(ids.New("r"), "r_"))
	err := s.start(ctx, "repricing", client.StartWorkflowOptions{ID: id, WorkflowExecutionTimeout: time.Hour},
		RepricingWorkflow, RepricingInput{Reason: reason})
	if err != nil {
		return "", err
	}
	return id, nil
}

// StartModelDiscovery starts ModelDiscoveryWorkflow and returns its id.
func (s *Starter) StartModelDiscovery(ctx context.Context, reason string) (string, error) {
	id := ModelDiscoveryWorkflowID(strings.TrimPrefix(ids.New("d"), "d_"))
	err := s.start(ctx, "model_discovery", client.StartWorkflowOptions{ID: id, WorkflowExecutionTimeout: time.Hour},
		ModelDiscoveryWorkflow, ModelDiscoveryInput{Reason: reason})
	if err != nil {
		return "", err
	}
	return id, nil
}

// ---- emailed tokens ----

// StartEmailVerification starts (or replaces) the account's verification.
func (s *Starter) StartEmailVerification(ctx context.Context, accountID string) error {
	return s.start(ctx, "start_verification", client.StartWorkflowOptions{
		ID:                       EmailVerificationWorkflowID(accountID),
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionTimeout: s.o.VerifyTTL + 2*time.Hour,
	}, EmailVerificationWorkflow, EmailVerificationInput{AccountID: accountID, TTL: s.o.VerifyTTL})
}

// StartPasswordReset starts (or replaces) the account's password reset.
func (s *Starter) StartPasswordReset(ctx context.Context, accountID string) error {
	return s.start(ctx, "start_password_reset", client.StartWorkflowOptions{
		ID:                       PasswordResetWorkflowID(accountID),
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionTimeout: s.o.ResetTTL + 2*time.Hour,
	}, PasswordResetWorkflow, PasswordResetInput{AccountID: accountID, TTL: s.o.ResetTTL})
}

// CompleteEmailVerification sends the "consume" update with the token's
// keyed hash. A token no running workflow owns (issued while Temporal was
// down, or its workflow ended) is spent directly (auth): auth_tokens is the
// one authority on whether a token can be used.
func (s *Starter) CompleteEmailVerification(ctx context.Context, accountID, token string) error {
	const op = "complete_verification"
	c, err := s.client(op)
	if err != nil {
		return err
	}
	hash, accountID, err := s.tokenTarget(ctx, models.PurposeVerifyEmail, accountID, token)
	if err != nil {
		return s.done(op, err)
	}
	err = s.update(ctx, c, EmailVerificationWorkflowID(accountID), VerifyEmailUpdate{TokenHash: hash})
	if isNotFound(err) {
		_, err = s.o.Auth.ConsumeVerification(ctx, accountID, hash, false)
	}
	return s.done(op, err)
}

// CompletePasswordReset sends the "consume" update with the token's keyed
// hash and the new password's argon2id hash; like verification, a token no
// running workflow owns is spent directly.
func (s *Starter) CompletePasswordReset(ctx context.Context, accountID, token, newPasswordHash string) error {
	const op = "complete_password_reset"
	if !activities.IsPasswordHash(newPasswordHash) {
		// A programming error, and the one that would put a password into a
		// workflow history: refuse before anything leaves the process.
		return s.done(op, errors.New("workflows: CompletePasswordReset needs an argon2id hash (auth.Hasher.Hash), not a password"))
	}
	c, err := s.client(op)
	if err != nil {
		return err
	}
	hash, accountID, err := s.tokenTarget(ctx, models.PurposePasswordReset, accountID, token)
	if err != nil {
		return s.done(op, err)
	}
	err = s.update(ctx, c, PasswordResetWorkflowID(accountID), ResetPasswordUpdate{TokenHash: hash, PasswordHash: newPasswordHash})
	if isNotFound(err) {
		_, err = s.o.Auth.ConsumePasswordReset(ctx, accountID, hash, newPasswordHash)
	}
	return s.done(op, err)
}

// tokenTarget hashes the token and, when accountID is "", finds the
// account that holds it.
func (s *Starter) tokenTarget(ctx context.Context, purpose, accountID, token string) (hash, account string, err error) {
	if token == "" || len(token) > 200 {
		return "", "", apierr.InvalidToken()
	}
	hash = s.o.Auth.HashToken(purpose, token)
	if accountID != "" {
		return hash, accountID, nil
	}
	account, err = s.o.Auth.TokenHolder(ctx, purpose, hash)
	return hash, account, err
}

// ---- balance ----

// SignalLowBalance starts or signals the account's low-balance alert.
// Below the threshold it starts the alert (one email per episode) or
// signals the running one; at or above it, it only tells a running alert
// that the balance recovered.
func (s *Starter) SignalLowBalance(ctx context.Context, accountID string, balance, threshold int64) error {
	const op = "signal_low_balance"
	c, err := s.client(op)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.CallTimeout)
	defer cancel()
	id := LowBalanceWorkflowID(accountID)
	sig := BalanceSignal{BalanceMicros: balance, ThresholdMicros: threshold}
	if balance >= threshold {
		err = c.SignalWorkflow(ctx, id, "", SignalBalance, sig)
		if isNotFound(err) {
			err = nil // no alert running: nothing to tell
		}
		return s.done(op, err)
	}
	_, err = c.SignalWithStartWorkflow(ctx, id, SignalBalance, sig, client.StartWorkflowOptions{
		TaskQueue:             s.o.TaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, LowBalanceAlertWorkflow, LowBalanceAlertInput{AccountID: accountID, BalanceMicros: balance,
		ThresholdMicros: threshold, CheckEvery: s.o.LowBalanceCheckEvery})
	return s.done(op, err)
}

// ---- money ----

// StartTopUpSettlement starts the session's settlement, or signals the
// running one with the event (SignalTopUpEvent). A settlement that already
// finished counts as success (its workflow id is never reused). Any other
// error means Temporal did not take it: the webhook answers 503 and Stripe
// retries.
func (s *Starter) StartTopUpSettlement(ctx context.Context, in TopUpSettlementInput) error {
	const op = "start_topup_settlement"
	c, err := s.client(op)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.CallTimeout)
	defer cancel()
	id := TopUpWorkflowID(in.SessionID)
	_, err = c.SignalWithStartWorkflow(ctx, id, SignalTopUpEvent, in.EventType, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                s.o.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, TopUpSettlementWorkflow, in)
	if alreadyStarted(err) {
		err = nil
	}
	return s.done(op, err)
}

// StartRefund starts the refund under id RefundWorkflowID(in.TopUpID, key)
// and returns that id; the same key again returns the same workflow (never
// a second refund).
func (s *Starter) StartRefund(ctx context.Context, key string, in RefundInput) (string, error) {
	const op = "start_refund"
	c, err := s.client(op)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.CallTimeout)
	defer cancel()
	id := RefundWorkflowID(in.TopUpID, key)
	_, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: s.o.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, RefundWorkflow, in)
	if alreadyStarted(err) {
		err = nil
	}
	if err := s.done(op, err); err != nil {
		return "", err
	}
	return id, nil
}

// StartBatch starts BatchWorkflow for batch id under BatchWorkflowID; a
// run already started is success.
func (s *Starter) StartBatch(ctx context.Context, batchID string) error {
	return s.startOnce(ctx, "start_batch", BatchWorkflowID(batchID), BatchWorkflow, BatchInput{BatchID: batchID})
}

// startOnce starts workflow wf with input as id, the business key of a job
// that runs once (its id is never reused); a run already started, by a
// retried request, is success.
func (s *Starter) startOnce(ctx context.Context, op, id string, wf, input any) error {
	c, err := s.client(op)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.CallTimeout)
	defer cancel()
	_, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: s.o.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, wf, input)
	if alreadyStarted(err) {
		err = nil
	}
	return s.done(op, err)
}

// StartAutoRecharge starts the account's recharge unless one is running
// (USE_EXISTING: one per account at a time; a finished one may run again).
func (s *Starter) StartAutoRecharge(ctx context.Context, accountID string) error {
	const op = "start_auto_recharge"
	c, err := s.client(op)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.CallTimeout)
	defer cancel()
	id := AutoRechargeWorkflowID(accountID)
	_, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: s.o.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, AutoRechargeWorkflow, AutoRechargeInput{AccountID: accountID})
	if alreadyStarted(err) {
		err = nil
	}
	return s.done(op, err)
}

// ---- background responses ----

// StartBackgroundResponse starts the run of a stored background response.
// Starting it again (a retried request) is success.
func (s *Starter) StartBackgroundResponse(ctx context.Context, respID string) error {
	return s.startOnce(ctx, "start_background_response", BackgroundResponseWorkflowID(respID),
		BackgroundResponseWorkflow, BackgroundResponseInput{ResponseID: respID})
}

// CancelBackgroundResponse cancels the run of a background response; one
// that already ended (or never started) is success.
func (s *Starter) CancelBackgroundResponse(ctx context.Context, respID string) error {
	const op = "cancel_background_response"
	c, err := s.client(op)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.CallTimeout)
	defer cancel()
	err = c.CancelWorkflow(ctx, BackgroundResponseWorkflowID(respID), "")
	if isNotFound(err) {
		err = nil
	}
	return s.done(op, err)
}

// ---- plumbing ----

func (s *Starter) client(op string) (client.Client, error) {
	if !s.Available() {
		s.requests.WithLabelValues(op, "unavailable").Inc()
		return nil, apierr.Unavailable("Temporal is not available right now; try again in a moment")
	}
	return s.o.Conn.Client(), nil
}

func (s *Starter) start(ctx context.Context, op string, opts client.StartWorkflowOptions, wf any, arg any) error {
	c, err := s.client(op)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.CallTimeout)
	defer cancel()
	opts.TaskQueue = s.o.TaskQueue
	_, err = c.ExecuteWorkflow(ctx, opts, wf, arg)
	return s.done(op, err)
}

func (s *Starter) update(ctx context.Context, c client.Client, workflowID string, arg any) error {
	ctx, cancel := context.WithTimeout(ctx, s.o.UpdateTimeout)
	defer cancel()
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   workflowID,
		UpdateName:   UpdateConsume,
		Args:         []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return err
	}
	return h.Get(ctx, nil)
}

// done maps err for the API and counts the outcome: a refused token is 400
// invalid_token, an unreachable Temporal 503, anything else stays an
// internal error.
func (s *Starter) done(op string, err error) error {
	outcome := "ok"
	defer func() { s.requests.WithLabelValues(op, outcome).Inc() }()
	if err == nil {
		return nil
	}
	if activities.IsInvalidToken(err) {
		outcome = "rejected"
		return apierr.InvalidToken()
	}
	if e, ok := apierr.As(err); ok {
		outcome = "rejected"
		if e.Status >= 500 {
			outcome = "error"
		}
		return e
	}
	var unavail *serviceerror.Unavailable
	var timeout *client.WorkflowUpdateServiceTimeoutOrCanceledError
	if errors.As(err, &unavail) || errors.As(err, &timeout) || errors.Is(err, context.DeadlineExceeded) {
		outcome = "unavailable"
		if errors.As(err, &unavail) {
			s.o.Conn.MarkDown()
		}
		s.o.Log.Warn("Temporal call failed", "op", op, "err", err)
		return apierr.Unavailable("Temporal did not answer in time; try again in a moment")
	}
	outcome = "error"
	return fmt.Errorf("temporal %s: %w", op, err)
}

func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}

func alreadyStarted(err error) bool {
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	return errors.As(err, &started)
}
