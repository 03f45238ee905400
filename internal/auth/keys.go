package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/audit"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/models"
)

// Key spend-limit reset periods (UTC).
const (
	ResetNone    = "none"
	ResetDaily   = "daily"
	ResetWeekly  = "weekly"
	ResetMonthly = "monthly"
)

// Bounds on key policies.
const (
	maxKeyName       = 200
	maxAllowedModels = 200
	maxAllowedIPs    = 100
)

// KeyPolicy is what a new key may be limited by. Nil and empty mean "no
// limit" (all models, any IP, no spend limit, never expires).
type KeyPolicy struct {
	SpendLimitMicros *int64
	LimitReset       string // "" = none
	RPMLimit         *int64
	ExpiresAt        *time.Time
	AllowedModels    []string
	AllowedIPs       []string
	RequireSignature bool
}

// KeyUpdate changes a key; null clears a policy.
type KeyUpdate struct {
	Name             Patch[string]
	Active           Patch[bool]
	SpendLimitMicros Patch[int64]
	LimitReset       Patch[string]
	RPMLimit         Patch[int64]
	ExpiresAt        Patch[time.Time]
	AllowedModels    Patch[[]string]
	AllowedIPs       Patch[[]string]
	RequireSignature Patch[bool]
}

// CreateKey makes a key for an account and returns it with its secret, the
// only time the secret exists outside the caller.
func (s *Service) CreateKey(ctx context.Context, accountID, name string, p KeyPolicy) (*models.APIKey, string, error) {
	now := s.Now()
	k := &models.APIKey{ID: ids.New("key"), AccountID: accountID, Active: true, LimitReset: ResetNone,
		CreatedAt: now, UpdatedAt: now, PeriodStart: &now}
	u := KeyUpdate{Name: SetTo(name)}
	if p.SpendLimitMicros != nil {
		u.SpendLimitMicros = SetTo(*p.SpendLimitMicros)
	}
	if p.LimitReset != "" {
		u.LimitReset = SetTo(p.LimitReset)
	}
	if p.RPMLimit != nil {
		u.RPMLimit = SetTo(*p.RPMLimit)
	}
	if p.ExpiresAt != nil {
		u.ExpiresAt = SetTo(*p.ExpiresAt)
	}
	if p.AllowedModels != nil {
		u.AllowedModels = SetTo(p.AllowedModels)
	}
	if p.AllowedIPs != nil {
		u.AllowedIPs = SetTo(p.AllowedIPs)
	}
	if p.RequireSignature {
		u.RequireSignature = SetTo(true)
	}
	set, err := applyKeyUpdate(k, u, now)
	if err != nil {
		return nil, "", err
	}
	if err := s.issueSigningSecret(k, set); err != nil {
		return nil, "", err
	}
	secret := NewAPIKey()
	k.KeyHash, k.Prefix = s.HashKey(secret), DisplayPrefix(secret)
	err = s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(k).Error; err != nil {
			return err
		}
		return recordKey(tx, k, audit.ActionKeyCreated, audit.Diff(nil, keyFields(k)))
	})
	if err != nil {
		return nil, "", fmt.Errorf("create key: %w", err)
	}
	return k, secret, nil
}

// signingSecretPurpose seals keys' signing secrets (Keyed.Seal).
const signingSecretPurpose = "api-key-signing-secret"

// issueSigningSecret gives k a signing secret the first time it requires
// signatures, into set and k (IssuedSigningSecret holds it in the clear
// for the one answer that shows it). A key keeps its secret when the
// policy is turned off and on again.
func (s *Service) issueSigningSecret(k *models.APIKey, set map[string]any) error {
	if !k.RequireSignature || k.SigningSecret != nil {
		return nil
	}
	secret := NewToken("bsig_")
	sealed, err := s.Keyed.Seal(signingSecretPurpose, secret)
	if err != nil {
		return fmt.Errorf("seal signing secret: %w", err)
	}
	k.SigningSecret, k.IssuedSigningSecret, set["signing_secret"] = &sealed, secret, sealed
	return nil
}

// SigningSecret returns k's signing secret in the clear, for checking a
// signature; "" when it has none.
func (s *Service) SigningSecret(k *models.APIKey) (string, error) {
	if k.SigningSecret == nil {
		return "", nil
	}
	return s.Keyed.Open(signingSecretPurpose, *k.SigningSecret)
}

// keyFields is what the audit log shows of a key (never its hash or
// signing secret).
func keyFields(k *models.APIKey) map[string]any {
	return map[string]any{"name": k.Name, "active": k.Active, "prefix": k.Prefix, "expires_at": k.ExpiresAt,
		"spend_limit_micros": k.SpendLimitMicros, "limit_reset": k.LimitReset, "rpm_limit": k.RPMLimit,
		"allowed_models": DecodeList(k.AllowedModels), "allowed_ips": DecodeList(k.AllowedIPs),
		"require_signature": k.RequireSignature}
}

// recordKey records an act on k in tx.
func recordKey(tx *gorm.DB, k *models.APIKey, action string, c audit.Changes) error {
	return audit.Record(tx, audit.Entry{Account: k.AccountID, Subject: audit.Subject(audit.KindKey, k.ID), Action: action, Changes: c})
}

// ListKeys returns up to limit of an account's keys that are not deleted,
// newest first, older than the key before ("" = from the newest).
func (s *Service) ListKeys(ctx context.Context, accountID, before string, limit int) ([]models.APIKey, error) {
	var out []models.APIKey
	q := s.DB.WithContext(ctx).Where("account_id = ? AND deleted_at IS NULL", accountID)
	if before != "" {
		q = q.Where("id < ?", before) // keyset: a range of api_keys (account_id, id)
	}
	if err := q.Order("id DESC").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return out, nil
}

// GetKey loads one of the account's keys. Another account's key and a
// deleted key are both 404, so ids of others' keys reveal nothing.
func (s *Service) GetKey(ctx context.Context, accountID, id string) (*models.APIKey, error) {
	var k models.APIKey
	err := s.DB.WithContext(ctx).Where("id = ? AND account_id = ? AND deleted_at IS NULL", id, accountID).Take(&k).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, keyNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	return &k, nil
}

func keyNotFound(id string) error { return apierr.NotFound("API key %q not found", id) }

// UpdateKey changes a key's name, active flag or policies. Every replica
// has dropped the cached key when it returns.
func (s *Service) UpdateKey(ctx context.Context, accountID, id string, u KeyUpdate) (*models.APIKey, error) {
	k, err := s.GetKey(ctx, accountID, id)
	if err != nil {
		return nil, err
	}
	now := s.Now()
	before := keyFields(k)
	set, err := applyKeyUpdate(k, u, now)
	if err != nil {
		return nil, err
	}
	if err := s.issueSigningSecret(k, set); err != nil {
		return nil, err
	}
	if len(set) == 0 {
		return k, nil
	}
	set["updated_at"] = now
	k.UpdatedAt = now
	changes := audit.Diff(before, keyFields(k))
	if err := s.updateKeyRow(ctx, k, set, audit.ActionKeyUpdated, changes); err != nil {
		return nil, fmt.Errorf("update key: %w", err)
	}
	return k, nil
}

// updateKeyRow writes set to a live key of the account as a change every
// replica applies before it returns, and records action with changes in
// the same transaction; keyNotFound when there is no such key.
func (s *Service) updateKeyRow(ctx context.Context, k *models.APIKey, set map[string]any, action string, changes audit.Changes) error {
	return s.change(ctx, func(tx *gorm.DB) ([]string, error) {
		r := tx.Model(&models.APIKey{}).Where("id = ? AND account_id = ? AND deleted_at IS NULL", k.ID, k.AccountID).Updates(set)
		if r.Error != nil {
			return nil, r.Error
		}
		if r.RowsAffected == 0 {
			return nil, keyNotFound(k.ID)
		}
		if err := recordKey(tx, k, action, changes); err != nil {
			return nil, err
		}
		return []string{KeyMsg(k.ID)}, nil
	})
}

// DeleteKey soft-deletes a key; every replica refuses it when this returns.
func (s *Service) DeleteKey(ctx context.Context, accountID, id string) error {
	k, err := s.GetKey(ctx, accountID, id)
	if err != nil {
		return err
	}
	now := s.Now()
	if err := s.updateKeyRow(ctx, k, map[string]any{"deleted_at": now, "active": false, "updated_at": now},
		audit.ActionKeyDeleted, audit.Changes{}.Set("deleted", false, true)); err != nil {
		return fmt.Errorf("delete key: %w", err)
	}
	return nil
}

// RotateKey gives a key a new secret, keeping its id, policies and usage.
// Every replica refuses the old secret when this returns.
func (s *Service) RotateKey(ctx context.Context, accountID, id string) (*models.APIKey, string, error) {
	old, err := s.GetKey(ctx, accountID, id)
	if err != nil {
		return nil, "", err
	}
	secret := NewAPIKey()
	hash, prefix, now := s.HashKey(secret), DisplayPrefix(secret), s.Now()
	if err := s.updateKeyRow(ctx, old, map[string]any{"key_hash": hash, "prefix": prefix, "updated_at": now},
		audit.ActionKeyRotated, audit.Changes{}.Set("prefix", old.Prefix, prefix)); err != nil {
		return nil, "", fmt.Errorf("rotate key: %w", err)
	}
	k, err := s.GetKey(ctx, accountID, id)
	if err != nil {
		return nil, "", err
	}
	return k, secret, nil
}

// applyKeyUpdate validates u, applies it to k and returns the columns to
// write.
func applyKeyUpdate(k *models.APIKey, u KeyUpdate, now time.Time) (map[string]any, error) {
	set := map[string]any{}
	if u.Name.Set {
		name := strings.TrimSpace(u.Name.Value)
		if len([]rune(name)) > maxKeyName {
			return nil, apierr.Invalid("name must be at most %d characters", maxKeyName)
		}
		k.Name, set["name"] = name, name
	}
	if u.Active.Set {
		if u.Active.Null {
			return nil, apierr.Invalid("active must be true or false")
		}
		k.Active, set["active"] = u.Active.Value, u.Active.Value
	}
	if u.SpendLimitMicros.Set {
		if u.SpendLimitMicros.Null {
			k.SpendLimitMicros = nil
		} else {
			if u.SpendLimitMicros.Value < 0 {
				return nil, apierr.Invalid("spend_limit_usd must not be negative (null = unlimited)")
			}
			v := u.SpendLimitMicros.Value
			k.SpendLimitMicros = &v
		}
		set["spend_limit_micros"] = column(k.SpendLimitMicros)
	}
	if u.LimitReset.Set {
		r := u.LimitReset.Value
		if u.LimitReset.Null {
			r = ResetNone
		}
		if !ValidLimitReset(r) {
			return nil, apierr.Invalid("limit_reset must be one of none, daily, weekly, monthly")
		}
		k.LimitReset, set["limit_reset"] = r, r
	}
	if u.RPMLimit.Set {
		if u.RPMLimit.Null {
			k.RPMLimit = nil
		} else {
			if u.RPMLimit.Value < 0 {
				return nil, apierr.Invalid("rpm_limit must be 0 or more (null = the plan's limit)")
			}
			v := u.RPMLimit.Value
			k.RPMLimit = &v
		}
		set["rpm_limit"] = column(k.RPMLimit)
	}
	if u.ExpiresAt.Set {
		if u.ExpiresAt.Null {
			k.ExpiresAt = nil
		} else {
			t := u.ExpiresAt.Value.UTC()
			if !t.After(now) {
				return nil, apierr.Invalid("expires_at must be in the future")
			}
			k.ExpiresAt = &t
		}
		set["expires_at"] = column(k.ExpiresAt)
	}
	if u.AllowedModels.Set {
		var enc *string
		if !u.AllowedModels.Null {
			list, err := ValidateAllowedModels(u.AllowedModels.Value)
			if err != nil {
				return nil, err
			}
			enc = encodeList(list)
		}
		k.AllowedModels, set["allowed_models"] = enc, column(enc)
	}
	if u.AllowedIPs.Set {
		var enc *string
		if !u.AllowedIPs.Null {
			list, err := ValidateAllowedIPs(u.AllowedIPs.Value)
			if err != nil {
				return nil, err
			}
			enc = encodeList(list)
		}
		k.AllowedIPs, set["allowed_ips"] = enc, column(enc)
	}
	if u.RequireSignature.Set {
		if u.RequireSignature.Null {
			return nil, apierr.Invalid("require_signature must be true or false")
		}
		k.RequireSignature, set["require_signature"] = u.RequireSignature.Value, u.RequireSignature.Value
	}
	return set, nil
}

// ValidLimitReset reports whether r is a known reset period.
func ValidLimitReset(r string) bool {
	return r == ResetNone || r == ResetDaily || r == ResetWeekly || r == ResetMonthly
}

var modelIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*/[^\s/][^\s]*$`)

// ValidateAllowedModels checks a key's model allow-list: prefixed ids like
// "openai/gpt-4o-mini", at least one, duplicates dropped.
func ValidateAllowedModels(list []string) ([]string, error) {
	if len(list) == 0 {
		return nil, apierr.Invalid("allowed_models must list at least one model, or be null to allow all")
	}
	if len(list) > maxAllowedModels {
		return nil, apierr.Invalid("allowed_models may list at most %d models", maxAllowedModels)
	}
	out := make([]string, 0, len(list))
	seen := map[string]bool{}
	for _, m := range list {
		m = strings.TrimSpace(m)
		if len(m) > 200 || !modelIDRE.MatchString(m) {
			return nil, apierr.Invalid("allowed_models: %q is not a model id like \"openai/gpt-4o-mini\"", m)
		}
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out, nil
}

// ValidateAllowedIPs checks a key's IP allow-list: IPv4/IPv6 addresses or
// CIDR ranges (stored in canonical form), at least one.
func ValidateAllowedIPs(list []string) ([]string, error) {
	if len(list) == 0 {
		return nil, apierr.Invalid("allowed_ips must list at least one IP or CIDR, or be null to allow any")
	}
	if len(list) > maxAllowedIPs {
		return nil, apierr.Invalid("allowed_ips may list at most %d entries", maxAllowedIPs)
	}
	out := make([]string, 0, len(list))
	seen := map[string]bool{}
	for _, raw := range list {
		s := strings.TrimSpace(raw)
		var canon string
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, apierr.Invalid("allowed_ips: %q is not an IP address or CIDR range", raw)
			}
			canon = p.Masked().String()
		} else {
			a, err := netip.ParseAddr(s)
			if err != nil || a.Zone() != "" {
				return nil, apierr.Invalid("allowed_ips: %q is not an IP address or CIDR range", raw)
			}
			canon = a.String()
		}
		if !seen[canon] {
			seen[canon] = true
			out = append(out, canon)
		}
	}
	return out, nil
}

// IPAllowed reports whether ip matches an allow-list entry (an address or a
// CIDR range); a nil list allows any IP.
func IPAllowed(list []string, ip string) bool {
	if list == nil {
		return true
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, e := range list {
		if p, err := netip.ParsePrefix(e); err == nil {
			if p.Contains(a) {
				return true
			}
		} else if b, err := netip.ParseAddr(e); err == nil && b.Unmap() == a {
			return true
		}
	}
	return false
}

// column turns a nullable field into a value to write: NULL or the value.
func column[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func encodeList(list []string) *string {
	b, _ := json.Marshal(list)
	s := string(b)
	return &s
}

// DecodeList reads a stored allow-list (allowed_models, allowed_ips): nil
// means no restriction.
func DecodeList(s *string) []string {
	if s == nil {
		return nil
	}
	out := []string{}
	if err := json.Unmarshal([]byte(*s), &out); err != nil {
		return []string{} // unreadable: allow nothing rather than everything
	}
	return out
}

// CurrentPeriodStart is when the spend-limit period that contains now began
// for a reset schedule: 00:00 UTC today, on Monday of this ISO week, or on
// the 1st of this month; the zero time for "none" (the period never ends).
func CurrentPeriodStart(reset string, now time.Time) time.Time {
	now = now.UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	switch reset {
	case ResetDaily:
		return day
	case ResetWeekly:
		return day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	case ResetMonthly:
		return time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Time{}
}
