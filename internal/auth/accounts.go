package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/audit"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/models"
)

// Patch is one field of a PATCH body: absent (Set false), JSON null (Set and
// Null), or a value. It decodes itself, so request structs can use it
// directly and tell "leave alone" from "clear".
type Patch[T any] struct {
	Set   bool
	Null  bool
	Value T
}

// UnmarshalJSON records that the field was present, and whether it was null.
func (p *Patch[T]) UnmarshalJSON(b []byte) error {
	p.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		p.Null = true
		return nil
	}
	return json.Unmarshal(b, &p.Value)
}

// SetTo returns a Patch that sets v.
func SetTo[T any](v T) Patch[T] { return Patch[T]{Set: true, Value: v} }

// SetNull returns a Patch that clears the field.
func SetNull[T any]() Patch[T] { return Patch[T]{Set: true, Null: true} }

// GetAccount loads an account; 404 when there is none.
func (s *Service) GetAccount(ctx context.Context, id string) (*models.Account, error) {
	var a models.Account
	err := s.DB.WithContext(ctx).Where("id = ?", id).Take(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, apierr.NotFound("account %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("load account: %w", err)
	}
	return &a, nil
}

// ListAccounts returns up to limit accounts, newest first, older than the
// account after ("" = from the newest); emailContains (case-insensitive)
// filters by a part of the address.
func (s *Service) ListAccounts(ctx context.Context, emailContains, after string, limit int) ([]models.Account, error) {
	q := s.DB.WithContext(ctx).Order("created_at DESC, id DESC").Limit(limit)
	if f := EmailKey(emailContains); f != "" { // matched against email_lower, so folded the same way
		esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(f)
		q = q.Where(`email_lower LIKE ? ESCAPE '\'`, "%"+esc+"%")
	}
	if after != "" {
		// Keyset: strictly older than the cursor's account in (created_at,
		// id) order, so accounts created meanwhile never shift a page.
		var cur models.Account
		if err := s.DB.WithContext(ctx).Select("id", "created_at").Where("id = ?", after).Take(&cur).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return nil, apierr.Invalid("cursor is not one this API returned").WithParam("cursor")
			}
			return nil, fmt.Errorf("list accounts: cursor: %w", err)
		}
		q = q.Where("created_at < ? OR (created_at = ? AND id < ?)", cur.CreatedAt, cur.CreatedAt, cur.ID)
	}
	var out []models.Account
	if err := q.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return out, nil
}

// ProfileUpdate is what a user may change about their own account.
type ProfileUpdate struct {
	Name                      Patch[string]
	LowBalanceThresholdMicros Patch[int64]
	BillingDetails            BillingDetails
	// UsageReports is a usage_reports choice the caller validated; "" =
	// unchanged.
	UsageReports string
}

// UpdateProfile applies a user's own changes.
func (s *Service) UpdateProfile(ctx context.Context, accountID string, u ProfileUpdate) (*models.Account, error) {
	set := map[string]any{}
	if u.Name.Set {
		name := strings.TrimSpace(u.Name.Value) // null clears the name
		if len([]rune(name)) > 200 {
			return nil, apierr.Invalid("name must be at most 200 characters")
		}
		set["name"] = name
	}
	if u.LowBalanceThresholdMicros.Set {
		switch {
		case u.LowBalanceThresholdMicros.Null:
			return nil, apierr.Invalid("low_balance_threshold_usd cannot be null; send 0 to turn the alert off")
		case u.LowBalanceThresholdMicros.Value < 0:
			return nil, apierr.Invalid("low_balance_threshold_usd must not be negative")
		}
		set["low_balance_threshold_micros"] = u.LowBalanceThresholdMicros.Value
	}
	if err := billingColumns(u.BillingDetails, set); err != nil {
		return nil, err
	}
	if u.UsageReports != "" {
		set["usage_reports"] = u.UsageReports
	}
	return s.updateAccount(ctx, accountID, audit.ActionAccountUpdated, set)
}

// AccountUpdate is what an admin may change about any account. The two
// limits are per-account overrides of the plan's (0 = unlimited, null = the
// plan's again).
type AccountUpdate struct {
	Plan                Patch[string]
	Role                Patch[string]
	Active              Patch[bool]
	RPMLimit            Patch[int64]
	MonthlyRequestLimit Patch[int64]
}

// AdminUpdateAccount applies an admin's changes to an account. Every replica
// has dropped what it cached about the account when it returns, so once the
// change is answered a demoted admin is refused admin routes and a disabled
// account's keys and sessions answer 403 account_disabled, on every
// replica. An admin cannot demote or disable themselves (that could leave
// nobody able to undo it).
func (s *Service) AdminUpdateAccount(ctx context.Context, actorID, accountID string, u AccountUpdate) (*models.Account, error) {
	set := map[string]any{}
	if u.Plan.Set {
		if u.Plan.Null || !models.ValidPlan(u.Plan.Value) {
			return nil, apierr.Invalid("plan must be one of free, pro, enterprise")
		}
		set["plan"] = u.Plan.Value
	}
	if u.Role.Set {
		if u.Role.Null || (u.Role.Value != models.RoleUser && u.Role.Value != models.RoleAdmin) {
			return nil, apierr.Invalid("role must be user or admin")
		}
		if actorID == accountID && u.Role.Value != models.RoleAdmin {
			return nil, apierr.Invalid("you cannot remove the admin role from your own account")
		}
		set["role"] = u.Role.Value
	}
	if u.Active.Set {
		if u.Active.Null {
			return nil, apierr.Invalid("active must be true or false")
		}
		if actorID == accountID && !u.Active.Value {
			return nil, apierr.Invalid("you cannot disable your own account")
		}
		set["active"] = u.Active.Value
	}
	for _, f := range []struct {
		name, column string
		p            Patch[int64]
	}{
		{"rpm_limit", "rpm_limit_override", u.RPMLimit},
		{"monthly_request_limit", "monthly_request_limit_override", u.MonthlyRequestLimit},
	} {
		switch {
		case !f.p.Set:
		case f.p.Null:
			set[f.column] = nil
		case f.p.Value < 0:
			return nil, apierr.Invalid("%s must be 0 (unlimited) or more, or null for the plan's limit", f.name)
		default:
			set[f.column] = f.p.Value
		}
	}
	return s.updateAccount(ctx, accountID, audit.ActionAdminAccountUpdated, set)
}

// auditedAccountColumns names, for the audit log, the account columns
// updateAccount may change.
var auditedAccountColumns = map[string]string{"name": "name", "low_balance_threshold_micros": "low_balance_threshold_micros",
	"plan": "plan", "role": "role", "active": "active", "rpm_limit_override": "rpm_limit",
	"monthly_request_limit_override": "monthly_request_limit", "usage_reports": "usage_reports"}

// accountFields is a's audited columns keyed by their audit name.
func accountFields(a *models.Account) map[string]any {
	return map[string]any{"name": a.Name, "low_balance_threshold_micros": a.LowBalanceThresholdMicros, "plan": a.Plan,
		"role": a.Role, "active": a.Active, "rpm_limit": a.RPMLimitOverride, "monthly_request_limit": a.MonthlyRequestLimitOverride,
		"usage_reports": a.UsageReports}
}

// updateAccount writes set and records action with what changed, in one
// transaction.
func (s *Service) updateAccount(ctx context.Context, accountID, action string, set map[string]any) (*models.Account, error) {
	if len(set) > 0 {
		set["updated_at"] = s.Now()
		err := s.change(ctx, func(tx *gorm.DB) ([]string, error) {
			var before models.Account
			if err := tx.Where("id = ?", accountID).Take(&before).Error; err != nil {
				if errors.Is(err, gorm.ErrRecordNotFound) {
					return nil, apierr.NotFound("account %q not found", accountID)
				}
				return nil, err
			}
			r := tx.Model(&models.Account{}).Where("id = ?", accountID).Updates(set)
			if r.Error != nil {
				return nil, r.Error
			}
			if r.RowsAffected == 0 {
				return nil, apierr.NotFound("account %q not found", accountID)
			}
			old, now := accountFields(&before), map[string]any{}
			for col, v := range set {
				if name, ok := auditedAccountColumns[col]; ok {
					now[name] = v
				}
			}
			for name := range old {
				if _, ok := now[name]; !ok {
					delete(old, name)
				}
			}
			if c := audit.Diff(old, now); len(c) > 0 {
				if err := audit.Record(tx, audit.Entry{Account: accountID, Subject: audit.Subject(audit.KindAccount, accountID),
					Action: action, Changes: c}); err != nil {
					return nil, err
				}
			}
			return []string{accountMsg(accountID)}, nil
		})
		if err != nil {
			return nil, fmt.Errorf("update account: %w", err)
		}
	}
	return s.GetAccount(ctx, accountID)
}

// NewExternalAccount is the row of an account made for a person who signed
// in with an identity provider (plan free, role user): it has no password
// (they may set one by "forgot password"), and its address is verified
// only when the provider said so. The caller inserts it, with the identity,
// in one transaction.
func (s *Service) NewExternalAccount(email, name string, verified bool) (*models.Account, error) {
	email, lower, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	name = strings.TrimSpace(name)
	if r := []rune(name); len(r) > 200 {
		name = string(r[:200])
	}
	now := s.Now()
	return &models.Account{ID: ids.New("acct"), Email: email, EmailLower: lower, Name: name, Role: models.RoleUser,
		Plan: models.PlanFree, Active: true, EmailVerified: verified, LowBalanceThresholdMicros: 1_000_000,
		CreatedAt: now, UpdatedAt: now}, nil
}
