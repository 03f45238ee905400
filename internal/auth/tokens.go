package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/models"
)

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

// IssueToken creates a single-use token for purpose (models.PurposeVerifyEmail
// or models.PurposePasswordReset) valid for ttl, and returns it. Only its
// keyed hash is stored. Older unused tokens of the same account and purpose
// stop working: only the newest email's link works.
func (s *Service) IssueToken(ctx context.Context, accountID, purpose string, ttl time.Duration) (string, error) {
	prefix, ok := tokenPrefix[purpose]
	if !ok {
		return "", fmt.Errorf("issue token: unknown purpose %q", purpose)
	}
	token := NewToken(prefix)
	now := s.Now()
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&models.AuthToken{}).
			Where("account_id = ? AND purpose = ? AND used_at IS NULL", accountID, purpose).
			Update("used_at", now).Error; err != nil {
			return err
		}
		return tx.Create(&models.AuthToken{ID: ids.New("atok"), AccountID: accountID, Purpose: purpose,
			TokenHash: s.HashToken(purpose, token), CreatedAt: now, ExpiresAt: now.Add(ttl)}).Error
	})
	if err != nil {
		return "", fmt.Errorf("issue %s token: %w", purpose, err)
	}
	return token, nil
}

// lookupToken finds a usable (unused, unexpired) token without spending it.
func (s *Service) lookupToken(ctx context.Context, tx *gorm.DB, purpose, token string) (*models.AuthToken, error) {
	if token == "" || len(token) > 200 {
		return nil, apierr.InvalidToken()
	}
	var t models.AuthToken
	err := tx.WithContext(ctx).Where("token_hash = ? AND purpose = ?", s.HashToken(purpose, token), purpose).Take(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, apierr.InvalidToken()
	}
	if err != nil {
		return nil, fmt.Errorf("load %s token: %w", purpose, err)
	}
	if t.UsedAt != nil || !s.Now().Before(t.ExpiresAt) {
		return nil, apierr.InvalidToken()
	}
	return &t, nil
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

// ConsumeToken spends a token of purpose and returns its account. A used,
// expired, unknown or other-purpose token is 400 invalid_token.
func (s *Service) ConsumeToken(ctx context.Context, purpose, token string) (string, error) {
	var accountID string
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		t, err := s.lookupToken(ctx, tx, purpose, token)
		if err != nil {
			return err
		}
		accountID = t.AccountID
		return s.spendToken(tx, t)
	})
	if err != nil {
		return "", err
	}
	return accountID, nil
}

// VerifyEmail spends a verification token and marks the address verified.
func (s *Service) VerifyEmail(ctx context.Context, token string) (*models.Account, error) {
	var a models.Account
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		t, err := s.lookupToken(ctx, tx, models.PurposeVerifyEmail, token)
		if err != nil {
			return err
		}
		if err := s.spendToken(tx, t); err != nil {
			return err
		}
		if err := tx.Model(&models.Account{}).Where("id = ?", t.AccountID).
			Updates(map[string]any{"email_verified": true, "updated_at": s.Now()}).Error; err != nil {
			return fmt.Errorf("mark verified: %w", err)
		}
		return tx.Where("id = ?", t.AccountID).Take(&a).Error
	})
	if err != nil {
		return nil, err
	}
	s.InvalidateAccount(ctx, a.ID)
	return &a, nil
}

// ResetPassword spends a reset token and sets a new password, then revokes
// every session of the account. A password the policy refuses is 400 and
// leaves the token usable.
func (s *Service) ResetPassword(ctx context.Context, token, password string) (*models.Account, error) {
	t, err := s.lookupToken(ctx, s.DB.DB, models.PurposePasswordReset, token)
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
	now := s.Now()
	err = s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.spendToken(tx, t); err != nil {
			return err
		}
		return tx.Model(&models.Account{}).Where("id = ?", a.ID).
			Updates(map[string]any{"password_hash": hash, "updated_at": now}).Error
	})
	if err != nil {
		if _, ok := apierr.As(err); ok {
			return nil, err
		}
		return nil, fmt.Errorf("reset password: %w", err)
	}
	if err := s.RevokeAllSessions(ctx, a.ID, "password reset"); err != nil {
		return nil, err
	}
	s.InvalidateAccount(ctx, a.ID)
	a.PasswordHash, a.UpdatedAt = hash, now
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
	t, err := s.lookupToken(ctx, s.DB.DB, purpose, token)
	if err != nil {
		return nil, err
	}
	return s.GetAccount(ctx, t.AccountID)
}
