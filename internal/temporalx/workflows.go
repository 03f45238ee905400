package temporalx

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
	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/models"
	"github.com/beaver-gateway/beaver/workflows"
)

// WorkflowsOptions configure Workflows.
type WorkflowsOptions struct {
	Conn      *Conn
	Auth      *auth.Service // hashes tokens; revokes sessions on the direct path
	DB        *db.DB        // finds a token's account; the direct path
	TaskQueue string        // "" = workflows.TaskQueue
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
}

// Workflows implements api.Workflows on Temporal. Every method answers
// apierr 503 at once while Temporal is unreachable.
type Workflows struct {
	o        WorkflowsOptions
	direct   *activities.Activities
	requests *prometheus.CounterVec
}

// NewWorkflows returns the implementation.
func NewWorkflows(o WorkflowsOptions) *Workflows {
	if o.TaskQueue == "" {
		o.TaskQueue = workflows.TaskQueue
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
	w := &Workflows{o: o, direct: &activities.Activities{DB: o.DB, Auth: o.Auth, Log: o.Log},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "beaver_workflow_requests_total",
			Help: "Requests from the API to Temporal by operation and outcome (ok, rejected, unavailable, error)."},
			[]string{"op", "outcome"})}
	if o.Registerer != nil {
		_ = o.Registerer.Register(w.requests)
		_ = o.Registerer.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "beaver_temporal_available",
			Help: "1 when the API can reach Temporal."}, func() float64 {
			if w.Available() {
				return 1
			}
			return 0
		}))
	}
	return w
}

// Available reports whether Temporal answers.
func (w *Workflows) Available() bool { return w.o.Conn != nil && w.o.Conn.Available() }

// StartRepricing starts RepricingWorkflow and returns its id.
func (w *Workflows) StartRepricing(ctx context.Context, reason string) (string, error) {
	id := workflows.RepricingWorkflowID(strings.TrimPrefix(ids.New("r"), "r_"))
	err := w.start(ctx, "repricing", client.StartWorkflowOptions{ID: id, WorkflowExecutionTimeout: time.Hour},
		workflows.RepricingWorkflow, workflows.RepricingInput{Reason: reason})
	if err != nil {
		return "", err
	}
	return id, nil
}

// StartEmailVerification starts (or replaces) the account's verification.
func (w *Workflows) StartEmailVerification(ctx context.Context, accountID string) error {
	return w.start(ctx, "start_verification", client.StartWorkflowOptions{
		ID:                       workflows.EmailVerificationWorkflowID(accountID),
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionTimeout: w.o.VerifyTTL + 2*time.Hour,
	}, workflows.EmailVerificationWorkflow, workflows.EmailVerificationInput{AccountID: accountID, TTL: w.o.VerifyTTL})
}

// StartPasswordReset starts (or replaces) the account's password reset.
func (w *Workflows) StartPasswordReset(ctx context.Context, accountID string) error {
	return w.start(ctx, "start_password_reset", client.StartWorkflowOptions{
		ID:                       workflows.PasswordResetWorkflowID(accountID),
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionTimeout: w.o.ResetTTL + 2*time.Hour,
	}, workflows.PasswordResetWorkflow, workflows.PasswordResetInput{AccountID: accountID, TTL: w.o.ResetTTL})
}

// CompleteEmailVerification sends the "consume" update with the token's
// keyed hash. A token no running workflow owns (issued while Temporal was
// down, or its workflow ended) is checked against the database directly:
// auth_tokens is the one authority on whether a token can be used.
func (w *Workflows) CompleteEmailVerification(ctx context.Context, accountID, token string) error {
	const op = "complete_verification"
	c, err := w.client(op)
	if err != nil {
		return err
	}
	hash, accountID, err := w.tokenTarget(ctx, models.PurposeVerifyEmail, accountID, token)
	if err != nil {
		return w.done(op, err)
	}
	err = w.update(ctx, c, workflows.EmailVerificationWorkflowID(accountID), workflows.VerifyEmailUpdate{TokenHash: hash})
	if isNotFound(err) {
		_, err = w.direct.ConsumeVerification(ctx, activities.ConsumeVerificationInput{AccountID: accountID, TokenHash: hash})
	}
	return w.done(op, err)
}

// CompletePasswordReset sends the "consume" update with the token's keyed
// hash and the new password's argon2id hash; like verification, a token no
// running workflow owns is checked against the database directly.
func (w *Workflows) CompletePasswordReset(ctx context.Context, accountID, token, newPasswordHash string) error {
	const op = "complete_password_reset"
	if !activities.IsPasswordHash(newPasswordHash) {
		// A programming error, and the one that would put a password into a
		// workflow history: refuse before anything leaves the process.
		return w.done(op, errors.New("temporalx: CompletePasswordReset needs an argon2id hash (auth.Hasher.Hash), not a password"))
	}
	c, err := w.client(op)
	if err != nil {
		return err
	}
	hash, accountID, err := w.tokenTarget(ctx, models.PurposePasswordReset, accountID, token)
	if err != nil {
		return w.done(op, err)
	}
	err = w.update(ctx, c, workflows.PasswordResetWorkflowID(accountID),
		workflows.ResetPasswordUpdate{TokenHash: hash, PasswordHash: newPasswordHash})
	if isNotFound(err) {
		_, err = w.direct.ConsumePasswordReset(ctx, activities.ConsumePasswordResetInput{AccountID: accountID,
			TokenHash: hash, PasswordHash: newPasswordHash})
	}
	return w.done(op, err)
}

// SignalLowBalance starts or signals the account's low-balance alert.
func (w *Workflows) SignalLowBalance(ctx context.Context, accountID string, balance, threshold int64) error {
	const op = "signal_low_balance"
	c, err := w.client(op)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, w.o.CallTimeout)
	defer cancel()
	id := workflows.LowBalanceWorkflowID(accountID)
	sig := workflows.BalanceSignal{BalanceMicros: balance, ThresholdMicros: threshold}
	if balance >= threshold {
		err = c.SignalWorkflow(ctx, id, "", workflows.SignalBalance, sig)
		if isNotFound(err) {
			err = nil // no alert running: nothing to tell
		}
		return w.done(op, err)
	}
	_, err = c.SignalWithStartWorkflow(ctx, id, workflows.SignalBalance, sig, client.StartWorkflowOptions{
		TaskQueue:             w.o.TaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.LowBalanceAlertWorkflow, workflows.LowBalanceAlertInput{AccountID: accountID, BalanceMicros: balance,
		ThresholdMicros: threshold, CheckEvery: w.o.LowBalanceCheckEvery})
	return w.done(op, err)
}

// OnLowBalance adapts SignalLowBalance to the billing engine's hook
// (EngineOptions.OnLowBalance), which runs on its own goroutine: failures
// are logged, never returned to a request.
func (w *Workflows) OnLowBalance(accountID string, balance, threshold int64) {
	ctx, cancel := context.WithTimeout(context.Background(), w.o.CallTimeout)
	defer cancel()
	if err := w.SignalLowBalance(ctx, accountID, balance, threshold); err != nil {
		w.o.Log.Warn("low-balance alert not started", "account", accountID, "balance_micros", balance,
			"threshold_micros", threshold, "err", err)
	}
}

// ---- plumbing ----

func (w *Workflows) client(op string) (client.Client, error) {
	if !w.Available() {
		w.requests.WithLabelValues(op, "unavailable").Inc()
		return nil, apierr.Unavailable("Temporal is not available right now; try again in a moment")
	}
	return w.o.Conn.Client(), nil
}

func (w *Workflows) start(ctx context.Context, op string, opts client.StartWorkflowOptions, wf any, arg any) error {
	c, err := w.client(op)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, w.o.CallTimeout)
	defer cancel()
	opts.TaskQueue = w.o.TaskQueue
	_, err = c.ExecuteWorkflow(ctx, opts, wf, arg)
	return w.done(op, err)
}

func (w *Workflows) update(ctx context.Context, c client.Client, workflowID string, arg any) error {
	ctx, cancel := context.WithTimeout(ctx, w.o.UpdateTimeout)
	defer cancel()
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   workflowID,
		UpdateName:   workflows.UpdateConsume,
		Args:         []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return err
	}
	return h.Get(ctx, nil)
}

// tokenTarget hashes the token and, when accountID is "", finds the
// account that holds it.
func (w *Workflows) tokenTarget(ctx context.Context, purpose, accountID, token string) (hash, account string, err error) {
	if token == "" || len(token) > 200 {
		return "", "", apierr.InvalidToken()
	}
	hash = w.o.Auth.HashToken(purpose, token)
	if accountID != "" {
		return hash, accountID, nil
	}
	var t models.AuthToken
	err = w.o.DB.WithContext(ctx).Select("account_id").Where("token_hash = ? AND purpose = ?", hash, purpose).Take(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", "", apierr.InvalidToken()
	}
	if err != nil {
		return "", "", fmt.Errorf("find token: %w", err)
	}
	return hash, t.AccountID, nil
}

// done maps err for the API and counts the outcome: a refused token is 400
// invalid_token, an unreachable Temporal 503, anything else stays an
// internal error.
func (w *Workflows) done(op string, err error) error {
	outcome := "ok"
	defer func() { w.requests.WithLabelValues(op, outcome).Inc() }()
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
			w.o.Conn.MarkDown()
		}
		w.o.Log.Warn("Temporal call failed", "op", op, "err", err)
		return apierr.Unavailable("Temporal did not answer in time; try again in a moment")
	}
	outcome = "error"
	return fmt.Errorf("temporal %s: %w", op, err)
}

func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}
