package auth

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/models"
)

// EnsureAdmin makes sure the bootstrap admin exists. When no account has
// this email it creates one (verified, role admin) with password, or with a
// generated one when password is empty, which it then returns so that `beaver
// dev` can print it once. An existing account keeps its password whatever
// the environment says, but is given the admin role if it lost it (an
// account an admin disabled stays disabled).
func EnsureAdmin(ctx context.Context, svc *Service, email, password string) (created bool, generatedPassword string, err error) {
	if _, _, err := NormalizeEmail(email); err != nil {
		return false, "", fmt.Errorf("bootstrap admin: BEAVER_ADMIN_EMAIL %q is not a valid address", email)
	}
	a, err := svc.AccountByEmail(ctx, email)
	if err != nil {
		return false, "", fmt.Errorf("bootstrap admin: %w", err)
	}
	if a == nil {
		generated := ""
		if password == "" {
			generated = GeneratePassword()
			password = generated
		}
		_, err := svc.CreateAccount(ctx, NewAccount{Email: email, Password: password, Name: "Admin",
			Role: models.RoleAdmin, Verified: true})
		if err == nil {
			return true, generated, nil
		}
		if e, ok := apierr.As(err); !ok || e.Status != 409 {
			if ok {
				return false, "", fmt.Errorf("bootstrap admin: %s", e.Message)
			}
			return false, "", fmt.Errorf("bootstrap admin: %w", err)
		}
		// Another process created it meanwhile: fall through and check its role.
		if a, err = svc.AccountByEmail(ctx, email); err != nil || a == nil {
			return false, "", fmt.Errorf("bootstrap admin: reload: %v", err)
		}
	}
	if a.Role != models.RoleAdmin {
		if err := svc.DB.WithContext(ctx).Model(&models.Account{}).Where("id = ?", a.ID).
			Updates(map[string]any{"role": models.RoleAdmin, "updated_at": svc.Now()}).Error; err != nil {
			return false, "", fmt.Errorf("bootstrap admin: promote: %w", err)
		}
		if err := svc.InvalidateAccount(ctx, a.ID); err != nil {
			return false, "", fmt.Errorf("bootstrap admin: %w", err)
		}
	}
	return false, "", nil
}

// GeneratePassword returns a random 24-character password (144 bits).
func GeneratePassword() string {
	return base64.RawURLEncoding.EncodeToString(ids.Random(18))
}
