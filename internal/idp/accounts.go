package idp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/models"
)

// resolve turns a provider's identity into an outcome, in one transaction:
//   - linking (a signed-in session started the flow): the identity joins
//     that account, unless it belongs to another one (409);
//   - a known identity signs in to its account;
//   - a new identity with an address of an existing account joins it only
//     when both the provider and the account have that address verified
//     (otherwise 409: sign in with the password and link from settings);
//   - a new identity with a new address gets a new account, verified when
//     the provider says the address is.
//
// Two callbacks racing to create the same identity or account meet a
// unique constraint; the loser tries once more and finds the winner's rows.
func (s *Service) resolve(ctx context.Context, p *Provider, ext *external, f *flow) (*Outcome, error) {
	if ext.Subject == "" {
		return nil, errorf(http.StatusBadGateway, "upstream_error", "%s did not name the account that signed in", p.Name)
	}
	var out *Outcome
	var err error
	for try := 0; try < 2; try++ {
		err = s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var e error
			out, e = s.resolveTx(tx, p, ext, f)
			return e
		})
		if !errors.Is(err, gorm.ErrDuplicatedKey) {
			break
		}
	}
	if err != nil {
		if e, ok := apierr.As(err); ok {
			s.record(ctx, Event{Action: ActionRefused, AccountID: f.LinkAccount, Provider: p.ID, Reason: e.Code})
			return nil, err
		}
		return nil, fmt.Errorf("resolve %s identity: %w", p.ID, err)
	}
	switch {
	case out.Linked:
		s.record(ctx, Event{Action: ActionLinked, AccountID: out.Account.ID, Provider: p.ID, IdentityID: out.Identity.ID})
	case out.Created:
		s.record(ctx, Event{Action: ActionCreated, AccountID: out.Account.ID, Provider: p.ID, IdentityID: out.Identity.ID})
	}
	if out.Code != "" {
		s.record(ctx, Event{Action: ActionSignIn, AccountID: out.Account.ID, Provider: p.ID, IdentityID: out.Identity.ID})
	}
	return out, nil
}

func (s *Service) resolveTx(tx *gorm.DB, p *Provider, ext *external, f *flow) (*Outcome, error) {
	now := s.Now()
	out := &Outcome{Provider: p.ID}
	var idn models.Identity
	err := tx.Where("provider = ? AND subject = ?", p.ID, ext.Subject).Take(&idn).Error
	known := err == nil
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, err
	}
	if known { // what the provider says now
		if err := tx.Model(&models.Identity{}).Where("id = ?", idn.ID).
			Updates(map[string]any{"email": ext.Email, "email_verified": ext.EmailVerified, "last_used_at": now}).Error; err != nil {
			return nil, err
		}
		idn.Email, idn.EmailVerified, idn.LastUsedAt = ext.Email, ext.EmailVerified, &now
	}

	if f.LinkAccount != "" {
		if err := liveSession(tx, f.LinkSession, f.LinkAccount, now); err != nil {
			return nil, err
		}
		if known && idn.AccountID != f.LinkAccount {
			return nil, errorf(http.StatusConflict, "identity_in_use",
				"this %s account is already linked to another Beaver account; unlink it there first", p.Name)
		}
		if !known {
			idn = newIdentity(f.LinkAccount, p.ID, ext, now)
			if err := tx.Create(&idn).Error; err != nil {
				return nil, err
			}
		}
		a, err := loadAccount(tx, f.LinkAccount)
		if err != nil {
			return nil, err
		}
		out.Account, out.Identity, out.Linked = a, &idn, true
		return out, nil
	}

	var a *models.Account
	switch {
	case known:
		if a, err = loadAccount(tx, idn.AccountID); err != nil {
			return nil, err
		}
	case ext.Email == "":
		return nil, errorf(http.StatusBadRequest, "email_required",
			"%s did not share an email address; allow it, or sign up with a password and link %s later", p.Name, p.Name)
	default:
		_, lower, nerr := auth.NormalizeEmail(ext.Email)
		if nerr != nil {
			return nil, errorf(http.StatusBadRequest, "email_required", "%s shared an address Beaver cannot use", p.Name)
		}
		var existing models.Account
		err := tx.Where("email_lower = ?", lower).Take(&existing).Error
		switch {
		case err == nil:
			// Only a verified address on both sides proves it is the same person:
			// an unverified one at the provider could be anyone's, and an
			// unverified account could have been registered by anyone.
			if !ext.EmailVerified || !existing.EmailVerified {
				return nil, errorf(http.StatusConflict, "account_exists",
					"an account with this email already exists; sign in with its password, then link %s from your account's security page", p.Name)
			}
			a = &existing
		case errors.Is(err, gorm.ErrRecordNotFound):
			if a, err = s.Auth.NewExternalAccount(ext.Email, ext.Name, ext.EmailVerified); err != nil {
				return nil, err
			}
			if err := tx.Create(a).Error; err != nil {
				return nil, err
			}
			out.Created = true
		default:
			return nil, err
		}
		idn = newIdentity(a.ID, p.ID, ext, now)
		if err := tx.Create(&idn).Error; err != nil {
			return nil, err
		}
		out.Linked = false
	}
	if !a.Active {
		return nil, apierr.AccountDisabled()
	}
	code := auth.NewToken(loginPrefix)
	if err := tx.Create(&models.OAuthLoginCode{ID: ids.New("olc"), AccountID: a.ID, Provider: p.ID,
		CodeHash: s.Auth.HashToken(hashLogin, code), CreatedAt: now, ExpiresAt: now.Add(CodeTTL)}).Error; err != nil {
		return nil, err
	}
	out.Account, out.Identity, out.Code = a, &idn, code
	return out, nil
}

func newIdentity(account, provider string, ext *external, now time.Time) models.Identity {
	return models.Identity{ID: ids.New("idn"), AccountID: account, Provider: provider, Subject: ext.Subject,
		Email: ext.Email, EmailVerified: ext.EmailVerified, CreatedAt: now, LastUsedAt: &now}
}

// liveSession checks that the session that started a link is still on.
func liveSession(tx *gorm.DB, session, account string, now time.Time) error {
	var n int64
	if err := tx.Model(&models.Session{}).Where("id = ? AND account_id = ? AND revoked_at IS NULL AND expires_at > ?",
		session, account, now).Count(&n).Error; err != nil {
		return err
	}
	if n == 0 {
		return apierr.Unauthorized("the session that started linking has ended; sign in again")
	}
	return nil
}

func loadAccount(tx *gorm.DB, id string) (*models.Account, error) {
	var a models.Account
	if err := tx.Where("id = ?", id).Take(&a).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, apierr.Unauthorized("account no longer exists")
		}
		return nil, err
	}
	return &a, nil
}

// Exchange spends a callback's code (single use, CodeTTL) and returns its
// account; an unknown, used or expired code is 400 invalid_token.
func (s *Service) Exchange(ctx context.Context, code string) (*models.Account, error) {
	if len(code) < len(loginPrefix)+10 || len(code) > 200 {
		return nil, apierr.InvalidToken()
	}
	now := s.Now()
	var a *models.Account
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var c models.OAuthLoginCode
		if err := tx.Where("code_hash = ?", s.Auth.HashToken(hashLogin, code)).Take(&c).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return apierr.InvalidToken()
			}
			return err
		}
		if c.UsedAt != nil || !now.Before(c.ExpiresAt) {
			return apierr.InvalidToken()
		}
		r := tx.Model(&models.OAuthLoginCode{}).Where("id = ? AND used_at IS NULL", c.ID).Update("used_at", now)
		if r.Error != nil {
			return r.Error
		}
		if r.RowsAffected == 0 { // spent by a concurrent exchange
			return apierr.InvalidToken()
		}
		var err error
		a, err = loadAccount(tx, c.AccountID)
		return err
	})
	if err != nil {
		if _, ok := apierr.As(err); ok {
			return nil, err
		}
		return nil, fmt.Errorf("exchange sign-in code: %w", err)
	}
	// Spent and expired codes are of no further use.
	_ = s.DB.WithContext(ctx).Where("expires_at < ?", now.Add(-time.Hour)).Delete(&models.OAuthLoginCode{}).Error
	return a, nil
}

// Identities lists an account's linked identities, oldest first.
func (s *Service) Identities(ctx context.Context, account string) ([]models.Identity, error) {
	var out []models.Identity
	if err := s.DB.WithContext(ctx).Where("account_id = ?", account).Order("created_at, id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list identities: %w", err)
	}
	return out, nil
}

// Unlink removes one of an account's identities while another way to sign
// in remains (auth.SignInWays); the last one is refused with 409. The
// account row is locked first (an update), so two unlinks of an account's
// last two identities run one after the other and the second sees the
// first's deletion.
func (s *Service) Unlink(ctx context.Context, account, identity string) error {
	var idn models.Identity
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		r := tx.Model(&models.Account{}).Where("id = ?", account).Update("updated_at", s.Now())
		if r.Error != nil {
			return r.Error
		}
		if err := tx.Where("id = ? AND account_id = ?", identity, account).Take(&idn).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return apierr.NotFound("identity %q not found", identity)
			}
			return err
		}
		n, err := auth.SignInWays(tx, account, identity, "")
		if err != nil {
			return err
		}
		if n == 0 {
			return auth.ErrLastSignInMethod()
		}
		return tx.Where("id = ? AND account_id = ?", identity, account).Delete(&models.Identity{}).Error
	})
	if err != nil {
		if _, ok := apierr.As(err); ok {
			return err
		}
		return fmt.Errorf("unlink identity: %w", err)
	}
	s.record(ctx, Event{Action: ActionUnlinked, AccountID: account, Provider: idn.Provider, IdentityID: idn.ID})
	return nil
}
