package workflows

import (
	"crypto/subtle"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/models"
)

// Default link lifetimes (auth.VerifyEmailTTL and auth.PasswordResetTTL;
// the API passes them explicitly, tests pass short ones).
const (
	DefaultVerifyTTL = 24 * time.Hour
	DefaultResetTTL  = time.Hour
)

// Outcomes of the token workflows.
const (
	OutcomeConsumed = "consumed" // the link was used
	OutcomeExpired  = "expired"  // nobody used it in time
	OutcomeSkipped  = "skipped"  // no email was due (see Reason)
)

// EmailVerificationInput starts an email verification. Starting another
// for the same account replaces the running one (the API starts it with
// WorkflowIDConflictPolicy TERMINATE_EXISTING): only the newest link works.
type EmailVerificationInput struct {
	AccountID string
	TTL       time.Duration // link lifetime; 0 = DefaultVerifyTTL
}

// EmailVerificationResult is how the verification ended.
type EmailVerificationResult struct {
	Outcome string
	Reason  string
}

// VerifyEmailUpdate is the UpdateConsume argument of
// EmailVerificationWorkflow: the keyed hash of the token from the link
// (auth.Service.HashToken), never the token itself.
type VerifyEmailUpdate struct {
	TokenHash string
}

// VerifyEmailUpdateResult is the accepted update's answer.
type VerifyEmailUpdateResult struct {
	Verified bool
}

// EmailVerificationWorkflow emails a verification link, then waits until
// the link is used (update "consume": the validator rejects a wrong token
// or a finished verification) or expires.
func EmailVerificationWorkflow(ctx workflow.Context, in EmailVerificationInput) (EmailVerificationResult, error) {
	f := &tokenFlow{purpose: models.PurposeVerifyEmail, accountID: in.AccountID, ttl: in.TTL}
	if f.ttl <= 0 {
		f.ttl = DefaultVerifyTTL
	}
	err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateConsume,
		func(ctx workflow.Context, u VerifyEmailUpdate) (VerifyEmailUpdateResult, error) {
			err := f.consume(ctx, u.TokenHash, func(ctx workflow.Context) error {
				return workflow.ExecuteActivity(consumeOptions(ctx), a.ConsumeVerification,
					activities.ConsumeVerificationInput{AccountID: in.AccountID, TokenHash: u.TokenHash}).Get(ctx, nil)
			})
			return VerifyEmailUpdateResult{Verified: err == nil}, err
		},
		workflow.UpdateHandlerOptions{Validator: func(u VerifyEmailUpdate) error { return f.validate(u.TokenHash) }})
	if err != nil {
		return EmailVerificationResult{}, err
	}
	outcome, reason, err := f.run(ctx)
	return EmailVerificationResult{Outcome: outcome, Reason: reason}, err
}

// PasswordResetInput starts a password reset; like verifications, a new
// one replaces the running one.
type PasswordResetInput struct {
	AccountID string
	TTL       time.Duration // link lifetime; 0 = DefaultResetTTL
}

// PasswordResetResult is how the reset ended.
type PasswordResetResult struct {
	Outcome string
	Reason  string
}

// ResetPasswordUpdate is the UpdateConsume argument of
// PasswordResetWorkflow. The API checks the new password against the policy
// and hashes it (argon2id) first: the history holds the token's keyed hash
// and the password's argon2id hash, never the token or the password.
type ResetPasswordUpdate struct {
	TokenHash    string
	PasswordHash string
}

// ResetPasswordUpdateResult is the accepted update's answer.
type ResetPasswordUpdateResult struct {
	Reset bool
}

// PasswordResetWorkflow emails a reset link, then waits until it is used
// (update "consume" sets the new password and revokes every session) or
// expires.
func PasswordResetWorkflow(ctx workflow.Context, in PasswordResetInput) (PasswordResetResult, error) {
	f := &tokenFlow{purpose: models.PurposePasswordReset, accountID: in.AccountID, ttl: in.TTL}
	if f.ttl <= 0 {
		f.ttl = DefaultResetTTL
	}
	validate := func(u ResetPasswordUpdate) error {
		if !activities.IsPasswordHash(u.PasswordHash) {
			return activities.InvalidPasswordHashError()
		}
		return f.validate(u.TokenHash)
	}
	err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateConsume,
		func(ctx workflow.Context, u ResetPasswordUpdate) (ResetPasswordUpdateResult, error) {
			err := f.consume(ctx, u.TokenHash, func(ctx workflow.Context) error {
				return workflow.ExecuteActivity(consumeOptions(ctx), a.ConsumePasswordReset,
					activities.ConsumePasswordResetInput{AccountID: in.AccountID, TokenHash: u.TokenHash,
						PasswordHash: u.PasswordHash}).Get(ctx, nil)
			})
			return ResetPasswordUpdateResult{Reset: err == nil}, err
		},
		workflow.UpdateHandlerOptions{Validator: validate})
	if err != nil {
		return PasswordResetResult{}, err
	}
	outcome, reason, err := f.run(ctx)
	return PasswordResetResult{Outcome: outcome, Reason: reason}, err
}

// consumeOptions: the API waits for the update, so spending a token gets a
// short budget; a failure reaches the caller, who may try again.
func consumeOptions(ctx workflow.Context) workflow.Context {
	return withActivity(ctx, 10*time.Second, 30*time.Second, 0)
}

// tokenFlow is the state both token workflows share: issue and email the
// token, accept one good "consume" update, expire.
type tokenFlow struct {
	purpose   string
	accountID string
	ttl       time.Duration

	tokenHash string // set once the email went out
	issued    bool   // the email activity finished (sent, skipped or failed)
	busy      bool   // a consume is running: the next one waits for it
	consumed  bool
	closed    bool // expired, skipped or failed: nothing is accepted any more
}

// validate is the update validator: it must not change state. Before the
// email activity has reported (a link clicked within milliseconds, or a
// worker restart in between), a token cannot be compared yet: the update is
// admitted and the handler compares once the hash is known.
func (f *tokenFlow) validate(hash string) error {
	if hash == "" || f.consumed || f.closed {
		return activities.InvalidTokenError()
	}
	if f.issued && !sameHash(f.tokenHash, hash) {
		return activities.InvalidTokenError()
	}
	return nil
}

// consume runs spend (the activity) for a matching token, one at a time.
func (f *tokenFlow) consume(ctx workflow.Context, hash string, spend func(workflow.Context) error) error {
	if err := workflow.Await(ctx, func() bool { return f.issued && !f.busy }); err != nil {
		return err
	}
	if err := f.validate(hash); err != nil {
		return err
	}
	f.busy = true
	err := spend(ctx)
	f.busy = false
	if err != nil {
		return err
	}
	f.consumed = true
	return nil
}

// run emails the token and waits for it to be consumed or to expire, then
// for any update handler still running.
func (f *tokenFlow) run(ctx workflow.Context) (outcome, reason string, err error) {
	actx := withActivity(ctx, 30*time.Second, sendWindow(f.ttl), 0)
	var sent activities.SendTokenEmailResult
	err = workflow.ExecuteActivity(actx, a.SendTokenEmail,
		activities.SendTokenEmailInput{AccountID: f.accountID, Purpose: f.purpose, TTL: f.ttl}).Get(ctx, &sent)
	f.issued = true
	switch {
	case err != nil:
		f.closed = true
	case sent.Skipped:
		f.closed = true
		outcome, reason = OutcomeSkipped, sent.Reason
	default:
		f.tokenHash = sent.TokenHash
		// The database refuses the token after ExpiresAt; the workflow
		// stops accepting it at the same moment.
		if left := sent.ExpiresAt.Sub(workflow.Now(ctx)); left > 0 {
			if _, werr := workflow.AwaitWithTimeout(ctx, left, func() bool { return f.consumed }); werr != nil {
				return "", "", werr
			}
		}
		if !f.consumed {
			f.closed = true
		}
	}
	if werr := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); werr != nil {
		return "", "", werr
	}
	if err != nil {
		return "", "", err
	}
	if outcome == "" {
		outcome = OutcomeExpired
		if f.consumed {
			outcome = OutcomeConsumed
		}
	}
	return outcome, reason, nil
}

// sendWindow bounds the email's retries: half the link's life, at least a
// minute, at most an hour.
func sendWindow(ttl time.Duration) time.Duration {
	return min(max(ttl/2, time.Minute), time.Hour)
}

func sameHash(x, y string) bool { return subtle.ConstantTimeCompare([]byte(x), []byte(y)) == 1 }
