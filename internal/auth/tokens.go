package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/audit"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/models"
)

// Emailed tokens (email verification, password reset) are single use and
// stored only as their keyed hash in auth_tokens, the one authority on
// whether a token can be used. This file is their one implementation:
// issuing (a random token here, or one derived from a workflow run by the
// caller), finding and spending, for the direct path (the HTTP handlers,
// with the token) and the workflow path (activities, with its hash) alike.

// How long emailed tokens stay valid.
const (
	VerifyEmailTTL   = 24 * time.Hour
	PasswordResetTTL = time.Hour
)

// tokenPrefix tells the kinds of emailed tokens apart at a glance.
var tokenPrefix = map[string]string{
	models.PurposeVerifyEmail:   "bve_",
	models.PurposePasswordReset: "bpr_",
}

// TokenPrefix is the prefix of purpose's tokens ("bve_", "bpr_"); ok is
// false for an unknown purpose.
func TokenPrefix(purpose string) (prefix string, ok bool) {
	prefix, ok = tokenPrefix[purpose]
	return prefix, ok
}

// errTokenUsed: the token exists and would fit, but was spent already
// (callers that may be retrying their own spend look closer).
var errTokenUsed = errors.New("token already used")

// IsInvalidToken reports whether err says an emailed token cannot be used
// (unknown, used, expired or of another account): 400 invalid_token.
func IsInvalidToken(err error) bool {
	e, ok := apierr.As(err)
	return ok && e.Code == "invalid_token"
}

// IssueToken creates a single-use random token for purpose
// (models.PurposeVerifyEmail or models.PurposePasswordReset) valid for ttl,
// and returns it. Older unused tokens of the same account and purpose stop
// working: only the newest email's link works.
func (s *Service) IssueToken(ctx context.Context, accountID, purpose string, ttl time.Duration) (string, error) {
	prefix, ok := tokenPrefix[purpose]
	if !ok {
		return "", fmt.Errorf("issue token: unknown purpose %q", purpose)
	}
	token := NewToken(prefix)
	if _, err := s.IssueGivenToken(ctx, accountID, purpose, token, ttl); err != nil {
		return "", err
	}
	return token, nil
}

// IssueGivenToken stores token (made by the caller, e.g. derived from a
// workflow run so that a retry re-sends the same link) like IssueToken
// does. Issuing the same token again changes nothing and returns the row
// stored the first time (UsedAt set if it was spent meanwhile).
func (s *Service) IssueGivenToken(ctx context.Context, accountID, purpose, token string, ttl time.Duration) (*models.AuthToken, error) {
	if _, ok := tokenPrefix[purpose]; !ok {
		return nil, fmt.Errorf("issue token: unknown purpose %q", purpose)
	}
	hash := s.HashToken(purpose, token)
	now := s.Now()
	var row models.AuthToken
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Where("token_hash = ?", hash).Take(&row).Error
		if err == nil {
			return nil // issued before
		}
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return err
		}
		if err := tx.Model(&models.AuthToken{}).
			Where("account_id = ? AND purpose = ? AND used_at IS NULL", accountID, purpose).
			Update("used_at", now).Error; err != nil {
			return err
		}
		row = models.AuthToken{ID: ids.New("atok"), AccountID: accountID, Purpose: purpose,
			TokenHash: hash, CreatedAt: now, ExpiresAt: now.Add(ttl)}
		return tx.Create(&row).Error
	})
	if err != nil {
		return nil, fmt.Errorf("issue %s token: %w", purpose, err)
	}
	return &row, nil
}

// findToken loads a token of purpose by its hash and checks that it belongs
// to accountID ("" = any account), is unexpired and unused (errTokenUsed
// when only the last fails). Other failures are apierr.InvalidToken.
func (s *Service) findToken(tx *gorm.DB, purpose, hash, accountID string) (*models.AuthToken, error) {
	if hash == "" {
		return nil, apierr.InvalidToken()
	}
	var t models.AuthToken
	err := tx.Where("token_hash = ? AND purpose = ?", hash, purpose).Take(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, apierr.InvalidToken()
	}
	if err != nil {
		return nil, fmt.Errorf("load %s token: %w", purpose, err)
	}
	if accountID != "" && t.AccountID != accountID {
		return nil, apierr.InvalidToken()
	}
	if t.UsedAt != nil {
		return nil, errTokenUsed
	}
	if !s.Now().Before(t.ExpiresAt) {
		return nil, apierr.InvalidToken()
	}
	return &t, nil
}

// usableToken is findToken for a token as the user sent it.
func (s *Service) usableToken(ctx context.Context, purpose, token string) (*models.AuthToken, error) {
	if token == "" || len(token) > 200 {
		return nil, apierr.InvalidToken()
	}
	t, err := s.findToken(s.DB.WithContext(ctx), purpose, s.HashToken(purpose, token), "")
	if errors.Is(err, errTokenUsed) {
		return nil, apierr.InvalidToken()
	}
	return t, err
}

// spendToken marks t used; of two concurrent spends only one wins.
func (s *Service) spendToken(tx *gorm.DB, t *models.AuthToken) error {
	r := tx.Model(&models.AuthToken{}).Where("id = ? AND used_at IS NULL", t.ID).Update("used_at", s.Now())
	if r.Error != nil {
		return fmt.Errorf("spend %s token: %w", t.Purpose, r.Error)
	}
	if r.RowsAffected == 0 {
		return apierr.InvalidToken()
	}
	return nil
}

// TokenHolder returns the account that holds the token with this hash
// (used, expired or not); apierr.InvalidToken when there is none.
func (s *Service) TokenHolder(ctx context.Context, purpose, hash string) (string, error) {
	var t models.AuthToken
	err := s.DB.WithContext(ctx).Select("account_id").Where("token_hash = ? AND purpose = ?", hash, purpose).Take(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", apierr.InvalidToken()
	}
	if err != nil {
		return "", fmt.Errorf("find token: %w", err)
	}
	return t.AccountID, nil
}

// ConsumeToken spends a token of purpose and returns its account. A used,
// expired, unknown or other-purpose token is 400 invalid_token.
func (s *Service) ConsumeToken(ctx context.Context, purpose, token string) (string, error) {
	t, err := s.usableToken(ctx, purpose, token)
	if err != nil {
		return "", err
	}
	if err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return s.spendToken(tx, t) }); err != nil {
		return "", err
	}
	return t.AccountID, nil
}

// consume is the one way an emailed token is spent: in one transaction it
// finds the token of purpose by hash (of accountID; "" = the token's
// account), marks it used and applies changes to the account (the
// account's columns). A token already used is apierr.InvalidToken unless
// committed says the account already shows this very spend (a retry after
// our own commit): then it succeeds without changing anything. It returns
// the account.
func (s *Service) consume(ctx context.Context, purpose, hash, accountID string, changes map[string]any,
	committed func(models.Account) bool, act audit.Entry) (string, error) {
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		t, err := s.findToken(tx, purpose, hash, accountID)
		if errors.Is(err, errTokenUsed) {
			var a models.Account
			if committed != nil && accountID != "" && tx.Where("id = ?", accountID).Take(&a).Error == nil && committed(a) {
				return nil
			}
			return apierr.InvalidToken()
		}
		if err != nil {
			return err
		}
		accountID = t.AccountID
		if err := s.spendToken(tx, t); err != nil {
			return err
		}
		changes["updated_at"] = s.Now()
		if err := tx.Model(&models.Account{}).Where("id = ?", t.AccountID).Updates(changes).Error; err != nil {
			return err
		}
		act.Account, act.Subject = t.AccountID, audit.Subject(audit.KindAccount, t.AccountID)
		return audit.Record(tx, act)
	})
	if err != nil {
		if _, ok := apierr.As(err); ok {
			return "", err
		}
		return "", fmt.Errorf("spend %s token: %w", purpose, err)
	}
	return accountID, nil
}

// ConsumeVerification spends the verification token with this hash and
// marks the address verified. accountID "" takes the token's account. A
// token that is unknown, expired, of another account or already used is
// apierr.InvalidToken, except when retry is set (a second attempt of the
// same spend) and the account is verified: then our own earlier attempt
// committed, and that succeeds. It returns the account.
func (s *Service) ConsumeVerification(ctx context.Context, accountID, hash string, retry bool) (string, error) {
	var committed func(models.Account) bool
	if retry {
		committed = func(a models.Account) bool { return a.EmailVerified }
	}
	id, err := s.consume(ctx, models.PurposeVerifyEmail, hash, accountID, map[string]any{"email_verified": true}, committed,
		audit.Entry{Action: audit.ActionEmailVerified, Changes: audit.Changes{}.Set("email_verified", false, true)})
	if err != nil {
		return "", err
	}
	if err := s.InvalidateAccount(ctx, id); err != nil {
		return "", err
	}
	return id, nil
}

// ConsumePasswordReset spends the reset token with this hash and sets
// passwordHash (an argon2id hash of a password already checked against the
// policy), then revokes every session of the account. accountID "" takes
// the token's account. A spent token is apierr.InvalidToken unless the
// account already holds this very hash (argon2id salts make it unique):
// then our own earlier attempt committed, and it goes on to the
// revocation. It returns the account.
func (s *Service) ConsumePasswordReset(ctx context.Context, accountID, hash, passwordHash string) (string, error) {
	id, err := s.consume(ctx, models.PurposePasswordReset, hash, accountID, map[string]any{"password_hash": passwordHash},
		func(a models.Account) bool { return a.PasswordHash == passwordHash },
		audit.Entry{Action: audit.ActionPasswordReset, Changes: audit.Changes{}.Set("sessions_revoked", nil, true)})
	if err != nil {
		return "", err
	}
	if err := s.RevokeAllSessions(ctx, id, "password reset"); err != nil {
		return "", err
	}
	if err := s.InvalidateAccount(ctx, id); err != nil {
		return "", err
	}
	return id, nil
}

// VerifyEmail spends a verification token and marks the address verified.
func (s *Service) VerifyEmail(ctx context.Context, token string) (*models.Account, error) {
	if token == "" || len(token) > 200 {
		return nil, apierr.InvalidToken()
	}
	id, err := s.ConsumeVerification(ctx, "", s.HashToken(models.PurposeVerifyEmail, token), false)
	if err != nil {
		return nil, err
	}
	var a models.Account
	if err := s.DB.WithContext(ctx).Where("id = ?", id).Take(&a).Error; err != nil {
		return nil, fmt.Errorf("load account: %w", err)
	}
	return &a, nil
}

// ResetPassword spends a reset token and sets a new password, then revokes
// every session of the account. A password the policy refuses is 400 and
// leaves the token usable.
func (s *Service) ResetPassword(ctx context.Context, token, password string) (*models.Account, error) {
	t, err := s.usableToken(ctx, models.PurposePasswordReset, token)
	if err != nil {
		return nil, err
	}
	var a models.Account
	if err := s.DB.WithContext(ctx).Where("id = ?", t.AccountID).Take(&a).Error; err != nil {
		return nil, fmt.Errorf("load account: %w", err)
	}
	if err := CheckPassword(password, a.Email); err != nil {
		return nil, apierr.Invalid("%s", err.Error())
	}
	hash := s.Hasher.Hash(password) // slow: outside the transaction
	if _, err := s.ConsumePasswordReset(ctx, a.ID, t.TokenHash, hash); err != nil {
		return nil, err
	}
	a.PasswordHash, a.UpdatedAt = hash, s.Now()
	return &a, nil
}

// AccountByEmail finds an account by email, case-insensitively; nil when
// there is none.
func (s *Service) AccountByEmail(ctx context.Context, email string) (*models.Account, error) {
	_, lower, err := NormalizeEmail(email)
	if err != nil {
		return nil, nil //nolint:nilerr // an invalid address has no account
	}
	var a models.Account
	err = s.DB.WithContext(ctx).Where("email_lower = ?", lower).Take(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load account: %w", err)
	}
	return &a, nil
}

// TokenAccount returns the account a usable token belongs to, without
// spending it (the workflow path spends it inside its update).
func (s *Service) TokenAccount(ctx context.Context, purpose, token string) (*models.Account, error) {
	t, err := s.usableToken(ctx, purpose, token)
	if err != nil {
		return nil, err
	}
	return s.GetAccount(ctx, t.AccountID)
}
