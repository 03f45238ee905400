package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/mail"
	"github.com/beaver-gateway/beaver/models"
)

// Emailed tokens look like the ones auth.IssueToken makes (same prefixes,
// same keyed hash in auth_tokens, same single-use rules), so either path can
// consume a token the other issued. Unlike auth.IssueToken, the token is
// derived from the workflow run (HMAC under the server secret): a retried
// activity re-derives the same token and re-sends the same link with the
// same idempotency key, instead of mailing a second link that kills the
// first.
var tokenPrefix = map[string]string{
	models.PurposeVerifyEmail:   "bve_",
	models.PurposePasswordReset: "bpr_",
}

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
	prefix, ok := tokenPrefix[in.Purpose]
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
	hash := a.Auth.HashToken(in.Purpose, token)
	now := a.now()
	var row models.AuthToken
	err = a.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Where("token_hash = ?", hash).Take(&row).Error
		if err == nil {
			return nil // issued by an earlier attempt of this activity
		}
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return err
		}
		if err := tx.Model(&models.AuthToken{}).
			Where("account_id = ? AND purpose = ? AND used_at IS NULL", in.AccountID, in.Purpose).
			Update("used_at", now).Error; err != nil {
			return err
		}
		row = models.AuthToken{ID: ids.New("atok"), AccountID: in.AccountID, Purpose: in.Purpose,
			TokenHash: hash, CreatedAt: now, ExpiresAt: now.Add(in.TTL)}
		return tx.Create(&row).Error
	})
	if err != nil {
		return SendTokenEmailResult{}, fmt.Errorf("issue %s token: %w", in.Purpose, err)
	}
	res := SendTokenEmailResult{TokenHash: hash, ExpiresAt: row.ExpiresAt}
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

// ConsumeVerification spends the token and marks the address verified, in
// one transaction. A token that is unknown, expired, of another account or
// already used is ErrTypeInvalidToken, except in a retry of this activity
// whose earlier attempt committed (the account is verified): that succeeds.
func (a *Activities) ConsumeVerification(ctx context.Context, in ConsumeVerificationInput) (ConsumeVerificationResult, error) {
	now := a.now()
	err := a.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		t, err := a.usableToken(tx, in.AccountID, models.PurposeVerifyEmail, in.TokenHash, now)
		if err != nil {
			if errors.Is(err, errTokenUsed) && retrying(ctx) {
				var acct models.Account
				if tx.Select("email_verified").Where("id = ?", in.AccountID).Take(&acct).Error == nil && acct.EmailVerified {
					return nil // our own earlier attempt committed (or another path verified it): done
				}
			}
			if errors.Is(err, errTokenUsed) {
				return InvalidTokenError()
			}
			return err
		}
		if err := spend(tx, t, now); err != nil {
			return err
		}
		return tx.Model(&models.Account{}).Where("id = ?", in.AccountID).
			Updates(map[string]any{"email_verified": true, "updated_at": now}).Error
	})
	if err != nil {
		return ConsumeVerificationResult{}, err
	}
	a.Auth.InvalidateAccount(ctx, in.AccountID)
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

// ConsumePasswordReset spends the token and sets the password hash in one
// transaction, then revokes every session of the account. A retry after our
// own commit (the account already holds this very hash: argon2id salts make
// it unique) goes on to the revocation.
func (a *Activities) ConsumePasswordReset(ctx context.Context, in ConsumePasswordResetInput) (ConsumePasswordResetResult, error) {
	if !IsPasswordHash(in.PasswordHash) {
		return ConsumePasswordResetResult{}, InvalidPasswordHashError()
	}
	now := a.now()
	err := a.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		t, err := a.usableToken(tx, in.AccountID, models.PurposePasswordReset, in.TokenHash, now)
		if err != nil {
			if errors.Is(err, errTokenUsed) {
				var acct models.Account
				if tx.Select("password_hash").Where("id = ?", in.AccountID).Take(&acct).Error == nil &&
					acct.PasswordHash == in.PasswordHash {
					return nil // our own earlier attempt committed
				}
				return InvalidTokenError()
			}
			return err
		}
		if err := spend(tx, t, now); err != nil {
			return err
		}
		return tx.Model(&models.Account{}).Where("id = ?", in.AccountID).
			Updates(map[string]any{"password_hash": in.PasswordHash, "updated_at": now}).Error
	})
	if err != nil {
		return ConsumePasswordResetResult{}, err
	}
	if err := a.Auth.RevokeAllSessions(ctx, in.AccountID, "password reset"); err != nil {
		return ConsumePasswordResetResult{}, err
	}
	a.Auth.InvalidateAccount(ctx, in.AccountID)
	return ConsumePasswordResetResult{SessionsRevoked: true}, nil
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

var errTokenUsed = errors.New("token already used")

// usableToken loads the token by hash and checks it belongs to the account,
// is unexpired and unused (errTokenUsed when only the last fails).
func (a *Activities) usableToken(tx *gorm.DB, accountID, purpose, hash string, now time.Time) (*models.AuthToken, error) {
	if hash == "" || accountID == "" {
		return nil, InvalidTokenError()
	}
	var t models.AuthToken
	err := tx.Where("token_hash = ? AND purpose = ?", hash, purpose).Take(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, InvalidTokenError()
	}
	if err != nil {
		return nil, fmt.Errorf("load %s token: %w", purpose, err)
	}
	if t.AccountID != accountID {
		return nil, InvalidTokenError()
	}
	if t.UsedAt != nil {
		return nil, errTokenUsed
	}
	if !now.Before(t.ExpiresAt) {
		return nil, InvalidTokenError()
	}
	return &t, nil
}

// spend marks t used; of two concurrent spends only one wins.
func spend(tx *gorm.DB, t *models.AuthToken, now time.Time) error {
	r := tx.Model(&models.AuthToken{}).Where("id = ? AND used_at IS NULL", t.ID).Update("used_at", now)
	if r.Error != nil {
		return fmt.Errorf("spend %s token: %w", t.Purpose, r.Error)
	}
	if r.RowsAffected == 0 {
		return InvalidTokenError()
	}
	return nil
}
