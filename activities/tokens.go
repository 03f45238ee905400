package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/mail"
	"github.com/beaver-gateway/beaver/models"
)

// Emailed tokens are auth's (auth.IssueGivenToken, auth.ConsumeVerification,
// auth.ConsumePasswordReset: one implementation for both paths), so either
// path can consume a token the other issued. Unlike auth.IssueToken, the
// token is derived from the workflow run (HMAC under the server secret): a
// retried activity re-derives the same token and re-sends the same link
// with the same idempotency key, instead of mailing a second link that
// kills the first.

// SendTokenEmailInput asks for a token email: a verification link or a
// password reset link, valid for TTL.
type SendTokenEmailInput struct {
	AccountID string
	Purpose   string // models.PurposeVerifyEmail or models.PurposePasswordReset
	TTL       time.Duration
}

// SendTokenEmailResult carries the token's keyed hash (never the token).
// Skipped is set, with Reason, when no email was due (unknown or disabled
// account, address already verified).
type SendTokenEmailResult struct {
	TokenHash string
	ExpiresAt time.Time
	Skipped   bool
	Reason    string
}

// SendTokenEmail issues this workflow run's single-use token (older unused
// tokens of the same account and purpose stop working, as with
// auth.IssueToken) and emails its link.
func (a *Activities) SendTokenEmail(ctx context.Context, in SendTokenEmailInput) (SendTokenEmailResult, error) {
	prefix, ok := auth.TokenPrefix(in.Purpose)
	if !ok || in.AccountID == "" || in.TTL <= 0 {
		return SendTokenEmailResult{}, badInput(fmt.Sprintf("bad token email request (purpose %q, ttl %s)", in.Purpose, in.TTL))
	}
	var acct models.Account
	err := a.DB.WithContext(ctx).Where("id = ?", in.AccountID).Take(&acct).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return SendTokenEmailResult{Skipped: true, Reason: "account not found"}, nil
	}
	if err != nil {
		return SendTokenEmailResult{}, fmt.Errorf("load account: %w", err)
	}
	switch {
	case !acct.Active:
		return SendTokenEmailResult{Skipped: true, Reason: "account disabled"}, nil
	case in.Purpose == models.PurposeVerifyEmail && acct.EmailVerified:
		return SendTokenEmailResult{Skipped: true, Reason: "email already verified"}, nil
	}

	run := activity.GetInfo(ctx).WorkflowExecution
	token := prefix + a.Auth.Keyed.Hash("workflow-token:"+in.Purpose, run.ID+"\x00"+run.RunID)
	row, err := a.Auth.IssueGivenToken(ctx, in.AccountID, in.Purpose, token, in.TTL)
	if err != nil {
		return SendTokenEmailResult{}, err
	}
	res := SendTokenEmailResult{TokenHash: row.TokenHash, ExpiresAt: row.ExpiresAt}
	if row.UsedAt != nil {
		return res, nil // already sent and even used: nothing left to do
	}
	ttl := row.ExpiresAt.Sub(row.CreatedAt)
	var m mail.Message
	if in.Purpose == models.PurposeVerifyEmail {
		m = mail.VerifyEmailValid(acct.Email, a.PublicURL+"/verify-email?token="+token, ttl)
	} else {
		m = mail.PasswordResetValid(acct.Email, a.PublicURL+"/reset-password?token="+token, ttl)
	}
	m.IdempotencyKey = in.Purpose + ":" + a.Auth.HashToken("mail", token)
	if err := a.send(ctx, m); err != nil {
		return SendTokenEmailResult{}, err
	}
	return res, nil
}

// ConsumeVerificationInput spends a verification token, named by its hash.
type ConsumeVerificationInput struct {
	AccountID string
	TokenHash string
}

// ConsumeVerificationResult reports the verification.
type ConsumeVerificationResult struct {
	Verified bool
}

// ConsumeVerification spends the token and marks the address verified
// (auth.ConsumeVerification). A token that is unknown, expired, of another
// account or already used is ErrTypeInvalidToken, except in a retry of this
// activity whose earlier attempt committed (the account is verified): that
// succeeds.
func (a *Activities) ConsumeVerification(ctx context.Context, in ConsumeVerificationInput) (ConsumeVerificationResult, error) {
	if in.AccountID == "" {
		return ConsumeVerificationResult{}, InvalidTokenError()
	}
	if _, err := a.Auth.ConsumeVerification(ctx, in.AccountID, in.TokenHash, retrying(ctx)); err != nil {
		return ConsumeVerificationResult{}, tokenError(err)
	}
	return ConsumeVerificationResult{Verified: true}, nil
}

// ConsumePasswordResetInput spends a reset token and sets a password that
// the API already checked against the policy and hashed: PasswordHash is an
// argon2id PHC string, never a plain password.
type ConsumePasswordResetInput struct {
	AccountID    string
	TokenHash    string
	PasswordHash string
}

// ConsumePasswordResetResult reports the reset.
type ConsumePasswordResetResult struct {
	SessionsRevoked bool
}

// ConsumePasswordReset spends the token, sets the password hash and
// revokes every session of the account (auth.ConsumePasswordReset). A retry
// after our own commit (the account already holds this very hash) goes on
// to the revocation.
func (a *Activities) ConsumePasswordReset(ctx context.Context, in ConsumePasswordResetInput) (ConsumePasswordResetResult, error) {
	if !IsPasswordHash(in.PasswordHash) {
		return ConsumePasswordResetResult{}, InvalidPasswordHashError()
	}
	if in.AccountID == "" {
		return ConsumePasswordResetResult{}, InvalidTokenError()
	}
	if _, err := a.Auth.ConsumePasswordReset(ctx, in.AccountID, in.TokenHash, in.PasswordHash); err != nil {
		return ConsumePasswordResetResult{}, tokenError(err)
	}
	return ConsumePasswordResetResult{SessionsRevoked: true}, nil
}

// tokenError makes auth's "this token cannot be used" non-retryable.
func tokenError(err error) error {
	if auth.IsInvalidToken(err) {
		return InvalidTokenError()
	}
	return err
}

// retrying reports whether ctx is a second or later attempt of an activity
// (direct calls from the API are never retries).
func retrying(ctx context.Context) bool {
	return activity.IsActivity(ctx) && activity.GetInfo(ctx).Attempt > 1
}

// IsPasswordHash reports whether s looks like an argon2id PHC string (the
// guard that keeps plain passwords out of workflow histories).
func IsPasswordHash(s string) bool {
	return strings.HasPrefix(s, "$argon2id$") && strings.Count(s, "$") == 5
}
