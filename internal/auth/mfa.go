package auth

import (
	"context"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/audit"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/models"
)

// Two-factor sign-in with TOTP (RFC 6238: 6 digits, 30-second steps, SHA-1,
// what authenticator apps speak). The secret is sealed at rest; a code is
// accepted for the step before, at or after now, and only for a step later
// than the last one accepted, so a used code cannot be replayed.

const (
	totpPeriod = 30
	totpIssuer = "Beaver"
	// ChallengeTTL is how long a sign-in's second step, or a passkey
	// ceremony, may take.
	ChallengeTTL = 5 * time.Minute
	// maxChallengeAttempts wrong codes end a sign-in challenge.
	maxChallengeAttempts = 5
	// RecoveryCodeCount recovery codes are issued at each confirmation.
	RecoveryCodeCount = 10
	sealTOTP          = "totp-secret"
)

// Second-factor methods named in a login's mfa_required answer.
const (
	MethodTOTP         = "totp"
	MethodRecoveryCode = "recovery_code"
)

// errWrongCode is any refused code: wrong, malformed or replayed.
var errWrongCode = errors.New("wrong two-factor code")

// TOTPEnrollment is a new, unconfirmed TOTP secret.
type TOTPEnrollment struct {
	Secret string // base32, for typing into an app
	URI    string // otpauth://, for a QR code
}

// EnrollTOTP makes a new TOTP secret for the account, kept (sealed) as
// pending until ConfirmTOTP; enrolling again replaces the pending one. 409
// when two-factor is already on.
func (s *Service) EnrollTOTP(ctx context.Context, accountID string) (*TOTPEnrollment, error) {
	a, err := s.GetAccount(ctx, accountID)
	if err != nil {
		return nil, err
	}
	if a.TwoFactor {
		return nil, apierr.Conflict("two-factor authentication is already on; disable it first to enrol a new secret")
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: totpIssuer, AccountName: a.Email, Period: totpPeriod,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, fmt.Errorf("generate totp secret: %w", err)
	}
	sealed, err := s.Keyed.Seal(sealTOTP, key.Secret())
	if err != nil {
		return nil, fmt.Errorf("seal totp secret: %w", err)
	}
	r := s.DB.WithContext(ctx).Model(&models.Account{}).Where("id = ? AND two_factor = ?", accountID, false).
		Updates(map[string]any{"totp_pending_secret": sealed, "updated_at": s.Now()})
	if r.Error != nil {
		return nil, fmt.Errorf("store totp secret: %w", r.Error)
	}
	if r.RowsAffected == 0 {
		return nil, apierr.Conflict("two-factor authentication is already on; disable it first to enrol a new secret")
	}
	return &TOTPEnrollment{Secret: key.Secret(), URI: key.URL()}, nil
}

// ConfirmTOTP turns two-factor on with a code from the pending secret and
// returns ten new recovery codes (only their hashes are kept; older ones
// are dropped). Every other session of the account ends in the same change:
// one opened by whoever knew only the password must not outlive the second
// factor meant to keep them out. keepSession (the caller's) stays.
func (s *Service) ConfirmTOTP(ctx context.Context, accountID, keepSession, code string) ([]string, error) {
	a, err := s.GetAccount(ctx, accountID)
	if err != nil {
		return nil, err
	}
	if a.TwoFactor {
		return nil, apierr.Conflict("two-factor authentication is already on")
	}
	if a.TOTPPendingSecret == nil {
		return nil, apierr.Conflict("nothing to confirm: enrol first (POST /auth/2fa/enroll)")
	}
	now := s.Now()
	step, ok := s.matchTOTP(*a.TOTPPendingSecret, code, now)
	if !ok {
		return nil, apierr.Invalid("the code is wrong or expired; enter the current code from your authenticator app").WithParam("code")
	}
	codes := newRecoveryCodes()
	err = s.change(ctx, func(tx *gorm.DB) ([]string, error) {
		r := tx.Model(&models.Account{}).
			Where("id = ? AND two_factor = ? AND totp_pending_secret = ?", accountID, false, *a.TOTPPendingSecret).
			Updates(map[string]any{"two_factor": true, "totp_secret": *a.TOTPPendingSecret, "totp_pending_secret": nil,
				"totp_last_step": step, "updated_at": now})
		if r.Error != nil {
			return nil, r.Error
		}
		if r.RowsAffected == 0 {
			return nil, apierr.Conflict("the enrolment changed meanwhile; enrol again")
		}
		if err := s.replaceRecoveryCodes(tx, accountID, codes, now); err != nil {
			return nil, err
		}
		if err := recordSecurity(tx, accountID, audit.Action2FAEnabled, audit.Changes{}.Set("two_factor", false, true)); err != nil {
			return nil, err
		}
		ended, err := s.endOtherSessions(tx, accountID, keepSession, "two_factor_enabled", now)
		return append(ended, accountMsg(accountID)), err
	})
	if err != nil {
		return nil, fmt.Errorf("confirm two-factor: %w", err)
	}
	return codes, nil
}

// RegenerateRecoveryCodes replaces the account's recovery codes with ten
// new ones, for a current TOTP code (not a recovery code: one leaked code
// must not buy ten more).
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, accountID, code string) ([]string, error) {
	if code == "" {
		return nil, apierr.Invalid("code is required: the current code from your authenticator app").WithParam("code")
	}
	now := s.Now()
	codes := newRecoveryCodes()
	err := s.change(ctx, func(tx *gorm.DB) ([]string, error) {
		var a models.Account
		if err := tx.Where("id = ?", accountID).Take(&a).Error; err != nil {
			return nil, err
		}
		if !a.TwoFactor {
			return nil, apierr.Conflict("two-factor authentication is not on")
		}
		if _, err := s.checkSecondFactor(tx, &a, code, "", now); errors.Is(err, errWrongCode) {
			return nil, apierr.Invalid("the code is wrong, expired or already used").WithParam("code")
		} else if err != nil {
			return nil, err
		}
		if err := s.replaceRecoveryCodes(tx, accountID, codes, now); err != nil {
			return nil, err
		}
		return nil, recordSecurity(tx, accountID, audit.Action2FARecoveryRenewed, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("regenerate recovery codes: %w", err)
	}
	return codes, nil
}

// recordSecurity records a change to an account's sign-in factors in the
// transaction that makes it: the two commit, or roll back, together.
func recordSecurity(tx *gorm.DB, accountID, action string, c audit.Changes) error {
	return audit.Record(tx, audit.Entry{Account: accountID, Subject: audit.Subject(audit.KindAccount, accountID),
		Action: action, Changes: c})
}

// endOtherSessions revokes every live session of the account but keep and
// returns the bus messages that end them on every replica.
func (s *Service) endOtherSessions(tx *gorm.DB, accountID, keep, reason string, now time.Time) ([]string, error) {
	var list []string
	if err := tx.Model(&models.Session{}).Where("account_id = ? AND revoked_at IS NULL AND id <> ?", accountID, keep).
		Pluck("id", &list).Error; err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	if len(list) == 0 {
		return nil, nil
	}
	if err := tx.Model(&models.Session{}).Where("id IN ? AND revoked_at IS NULL", list).
		Updates(map[string]any{"revoked_at": now, "revoke_reason": reason}).Error; err != nil {
		return nil, fmt.Errorf("end sessions: %w", err)
	}
	msgs := make([]string, len(list))
	for i, id := range list {
		msgs[i] = SessionMsg(id)
	}
	return msgs, nil
}

// DisableTOTP turns two-factor off with a current code or an unused
// recovery code, and drops the secret and the recovery codes.
func (s *Service) DisableTOTP(ctx context.Context, accountID, code, recoveryCode string) (usedRecovery bool, err error) {
	now := s.Now()
	err = s.change(ctx, func(tx *gorm.DB) ([]string, error) {
		var a models.Account
		if err := tx.Where("id = ?", accountID).Take(&a).Error; err != nil {
			return nil, err
		}
		if !a.TwoFactor {
			return nil, apierr.Conflict("two-factor authentication is not on")
		}
		usedRecovery, err = s.checkSecondFactor(tx, &a, code, recoveryCode, now)
		if errors.Is(err, errWrongCode) {
			return nil, apierr.Invalid("the code or recovery code is wrong, expired or already used")
		}
		if err != nil {
			return nil, err
		}
		if err := tx.Model(&models.Account{}).Where("id = ?", accountID).Updates(map[string]any{"two_factor": false,
			"totp_secret": nil, "totp_pending_secret": nil, "updated_at": now}).Error; err != nil {
			return nil, err
		}
		if err := recordSecurity(tx, accountID, audit.Action2FADisabled, audit.Changes{}.Set("two_factor", true, false)); err != nil {
			return nil, err
		}
		return []string{accountMsg(accountID)}, tx.Where("account_id = ?", accountID).Delete(&models.RecoveryCode{}).Error
	})
	if err != nil {
		return false, fmt.Errorf("disable two-factor: %w", err)
	}
	return usedRecovery, nil
}

// RecoveryCodesLeft counts the account's unused recovery codes.
func (s *Service) RecoveryCodesLeft(ctx context.Context, accountID string) (int64, error) {
	var n int64
	err := s.DB.WithContext(ctx).Model(&models.RecoveryCode{}).Where("account_id = ? AND used_at IS NULL", accountID).Count(&n).Error
	if err != nil {
		return 0, fmt.Errorf("count recovery codes: %w", err)
	}
	return n, nil
}

// checkSecondFactor accepts exactly one of a TOTP code (for a step later
// than the last accepted, recorded by a conditional update) or an unused
// recovery code (spent by a conditional update). errWrongCode otherwise.
func (s *Service) checkSecondFactor(tx *gorm.DB, a *models.Account, code, recoveryCode string, now time.Time) (usedRecovery bool, err error) {
	switch {
	case (code == "") == (recoveryCode == ""):
		return false, apierr.Invalid("send exactly one of code and recovery_code")
	case recoveryCode != "":
		r := tx.Model(&models.RecoveryCode{}).Where("account_id = ? AND code_hash = ? AND used_at IS NULL",
			a.ID, s.recoveryHash(a.ID, recoveryCode)).Update("used_at", now)
		if r.Error != nil {
			return false, fmt.Errorf("spend recovery code: %w", r.Error)
		}
		if r.RowsAffected == 0 {
			return false, errWrongCode
		}
		return true, recordSecurity(tx, a.ID, audit.Action2FARecoveryUsed, nil)
	}
	if a.TOTPSecret == nil {
		return false, errWrongCode
	}
	step, ok := s.matchTOTP(*a.TOTPSecret, code, now)
	if !ok {
		return false, errWrongCode
	}
	r := tx.Model(&models.Account{}).Where("id = ? AND totp_last_step < ?", a.ID, step).
		UpdateColumn("totp_last_step", step)
	if r.Error != nil {
		return false, fmt.Errorf("record totp step: %w", r.Error)
	}
	if r.RowsAffected == 0 {
		return false, errWrongCode // this step or a later one was used already: a replay
	}
	return false, nil
}

// matchTOTP returns the time step (now−1, now or now+1, for clock drift)
// whose code is code. Every candidate is compared, in constant time.
func (s *Service) matchTOTP(sealed, code string, now time.Time) (int64, bool) {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if len(code) != 6 {
		return 0, false
	}
	secret, err := s.Keyed.Open(sealTOTP, sealed)
	if err != nil {
		s.log().Error("totp secret cannot be opened (BEAVER_SECRET changed?)")
		return 0, false
	}
	cur := now.Unix() / totpPeriod
	var found int64
	ok := false
	for step := cur - 1; step <= cur+1; step++ {
		want, err := hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			found, ok = step, true
		}
	}
	return found, ok
}

// TOTPCode is the code of a base32 secret at t (tests, and nothing else:
// the server never needs to produce a code).
func TOTPCode(secret string, t time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, t, totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
}

// ---- recovery codes ----

var recoveryEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newRecoveryCodes returns RecoveryCodeCount codes like "abcd-efgh-ijkl"
// (60 random bits each).
func newRecoveryCodes() []string {
	out := make([]string, RecoveryCodeCount)
	for i := range out {
		c := strings.ToLower(recoveryEncoding.EncodeToString(ids.Random(8)))[:12]
		out[i] = c[:4] + "-" + c[4:8] + "-" + c[8:]
	}
	return out
}

// recoveryHash is the stored form of a recovery code: case, spaces and
// dashes do not matter.
func (s *Service) recoveryHash(accountID, code string) string {
	norm := strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, strings.ToLower(strings.TrimSpace(code)))
	return s.Keyed.Hash("recovery-code", accountID+":"+norm)
}

func (s *Service) replaceRecoveryCodes(tx *gorm.DB, accountID string, codes []string, now time.Time) error {
	if err := tx.Where("account_id = ?", accountID).Delete(&models.RecoveryCode{}).Error; err != nil {
		return fmt.Errorf("drop recovery codes: %w", err)
	}
	rows := make([]models.RecoveryCode, len(codes))
	for i, c := range codes {
		rows[i] = models.RecoveryCode{ID: ids.New("rc"), AccountID: accountID, CodeHash: s.recoveryHash(accountID, c), CreatedAt: now}
	}
	if err := tx.Create(&rows).Error; err != nil {
		return fmt.Errorf("store recovery codes: %w", err)
	}
	return nil
}

// ---- challenges: the step between two requests ----

// errChallenge is every unusable challenge token: unknown, of another kind
// or account, expired or used.
func errChallenge() error {
	return apierr.Unauthorized("the challenge token is invalid, expired or already used; sign in again")
}

// newChallenge stores a single-use challenge and returns its token.
func (s *Service) newChallenge(tx *gorm.DB, kind string, accountID *string, data string, now time.Time) (string, error) {
	token := NewToken("bch_")
	row := models.AuthChallenge{ID: ids.New("chal"), Kind: kind, TokenHash: s.Keyed.Hash("challenge", token),
		AccountID: accountID, Data: data, CreatedAt: now, ExpiresAt: now.Add(ChallengeTTL)}
	if err := tx.Create(&row).Error; err != nil {
		return "", fmt.Errorf("store %s challenge: %w", kind, err)
	}
	return token, nil
}

// liveChallenge loads an unused, unexpired challenge of kind.
func (s *Service) liveChallenge(tx *gorm.DB, kind, token string, now time.Time) (*models.AuthChallenge, error) {
	if token == "" {
		return nil, errChallenge()
	}
	var ch models.AuthChallenge
	err := tx.Where("token_hash = ? AND kind = ?", s.Keyed.Hash("challenge", token), kind).Take(&ch).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, errChallenge()
	}
	if err != nil {
		return nil, fmt.Errorf("load challenge: %w", err)
	}
	if ch.UsedAt != nil || !now.Before(ch.ExpiresAt) {
		return nil, errChallenge()
	}
	return &ch, nil
}

// spendChallenge marks a challenge used, if nobody did first and it has
// not expired: of two requests with one token only one gets past here.
func spendChallenge(tx *gorm.DB, id string, now time.Time) error {
	r := tx.Model(&models.AuthChallenge{}).Where("id = ? AND used_at IS NULL AND expires_at > ?", id, now).Update("used_at", now)
	if r.Error != nil {
		return fmt.Errorf("spend challenge: %w", r.Error)
	}
	if r.RowsAffected == 0 {
		return errChallenge()
	}
	return nil
}

// ChallengeEmail is the email of the account a live sign-in challenge is
// for ("" when there is none), for the auth throttle's per-email count.
func (s *Service) ChallengeEmail(ctx context.Context, token string) string {
	tx := s.DB.WithContext(ctx)
	ch, err := s.liveChallenge(tx, models.ChallengeMFA, token, s.Now())
	if err != nil || ch.AccountID == nil {
		return ""
	}
	var a models.Account
	if tx.Select("email").Where("id = ?", *ch.AccountID).Take(&a).Error != nil {
		return ""
	}
	return a.Email
}

// SecondStep is the outcome of a sign-in's second step, for the security
// log: the account it was for (when the token was known) and whether a
// recovery code was spent.
type SecondStep struct {
	AccountID    string
	UsedRecovery bool
}

// CompleteMFA finishes a password sign-in of an account with two-factor on:
// the challenge token from Login and a TOTP code or a recovery code start
// the session. The challenge is spent by the success; each wrong code
// counts, and the fifth ends the challenge.
func (s *Service) CompleteMFA(ctx context.Context, token, code, recoveryCode string) (*LoginResult, SecondStep, error) {
	now := s.Now()
	var res *LoginResult
	var out SecondStep
	var wrongID string
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		ch, err := s.liveChallenge(tx, models.ChallengeMFA, token, now)
		if err != nil {
			return err
		}
		if ch.AccountID == nil {
			return errChallenge()
		}
		out.AccountID = *ch.AccountID
		var a models.Account
		if err := tx.Where("id = ?", *ch.AccountID).Take(&a).Error; err != nil {
			return fmt.Errorf("load account: %w", err)
		}
		if !a.Active {
			return apierr.AccountDisabled()
		}
		if !a.TwoFactor { // turned off since the password step: sign in again
			return errChallenge()
		}
		out.UsedRecovery, err = s.checkSecondFactor(tx, &a, code, recoveryCode, now)
		if errors.Is(err, errWrongCode) {
			wrongID = ch.ID
			return apierr.Unauthorized("the two-factor code is wrong, expired or already used")
		}
		if err != nil {
			return err
		}
		if err := spendChallenge(tx, ch.ID, now); err != nil {
			return err
		}
		res, err = s.startSession(tx, &a, now)
		return err
	})
	if wrongID != "" {
		s.countWrongCode(ctx, wrongID, now)
	}
	if err != nil {
		if _, ok := apierr.As(err); ok {
			return nil, out, err
		}
		return nil, out, fmt.Errorf("second sign-in step: %w", err)
	}
	return res, out, nil
}

// countWrongCode counts a wrong code against a challenge and ends it at
// maxChallengeAttempts. A failure here only loses a count, so it is logged.
func (s *Service) countWrongCode(ctx context.Context, id string, now time.Time) {
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&models.AuthChallenge{}).Where("id = ?", id).
			UpdateColumn("attempts", gorm.Expr("attempts + 1")).Error; err != nil {
			return err
		}
		return tx.Model(&models.AuthChallenge{}).Where("id = ? AND used_at IS NULL AND attempts >= ?", id, maxChallengeAttempts).
			UpdateColumn("used_at", now).Error
	})
	if err != nil {
		s.log().Error("counting a wrong two-factor code failed", "challenge_id", id, "err", err)
	}
}

// PurgeExpiredChallenges deletes up to batch challenges that expired before
// now (used or not: a spent one protects nothing once it cannot be presented
// again), so sign-in steps leave no rows behind.
func PurgeExpiredChallenges(ctx context.Context, db *gorm.DB, now time.Time, batch int) (int64, error) {
	r := db.WithContext(ctx).Exec(`DELETE FROM auth_challenges WHERE id IN
		(SELECT id FROM auth_challenges WHERE expires_at <= ? LIMIT ?)`, now, batch)
	if r.Error != nil {
		return 0, fmt.Errorf("purge expired challenges: %w", r.Error)
	}
	return r.RowsAffected, nil
}
