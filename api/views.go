package api

import (
	"time"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/models"
)

// Views render rows as the contract's JSON objects. Money goes out as
// integer micros plus money.USD (an exact decimal); times as RFC 3339 UTC.

// ts renders a time as RFC 3339 in UTC.
func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// tsOrNull renders an optional time, or JSON null.
func tsOrNull(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ts(*t)
}

// accountView is the contract's account object A. The two limits are those
// in force (the plan's unless an admin overrode them; 0 = unlimited).
func accountView(a *models.Account) gin.H {
	rpm, monthly := a.Limits()
	return gin.H{
		"id":                           a.ID,
		"email":                        a.Email,
		"name":                         a.Name,
		"role":                         a.Role,
		"plan":                         a.Plan,
		"active":                       a.Active,
		"email_verified":               a.EmailVerified,
		"two_factor":                   a.TwoFactor,
		"balance_micros":               a.BalanceMicros,
		"balance_usd":                  money.USD(a.BalanceMicros),
		"low_balance_threshold_micros": a.LowBalanceThresholdMicros,
		"low_balance_threshold_usd":    money.USD(a.LowBalanceThresholdMicros),
		"usage_reports":                usageReportsOf(a),
		"rpm_limit":                    rpm,
		"monthly_request_limit":        monthly,
		"created_at":                   ts(a.CreatedAt),
		"billing_details":              gin.H{"name": a.BillingName, "address": a.BillingAddress, "tax_id": a.BillingTaxID},
	}
}

// keyView is the contract's key object K (never the secret).
func keyView(k *models.APIKey) gin.H {
	var spendUSD, spendMicros, rpm any
	if k.SpendLimitMicros != nil {
		spendUSD, spendMicros = money.USD(*k.SpendLimitMicros), *k.SpendLimitMicros
	}
	if k.RPMLimit != nil {
		rpm = *k.RPMLimit
	}
	var allowedModels, allowedIPs any
	if k.AllowedModels != nil {
		allowedModels = auth.DecodeList(k.AllowedModels)
	}
	if k.AllowedIPs != nil {
		allowedIPs = auth.DecodeList(k.AllowedIPs)
	}
	reset := k.LimitReset
	if reset == "" {
		reset = auth.ResetNone
	}
	v := gin.H{
		"id":                 k.ID,
		"account_id":         k.AccountID,
		"name":               k.Name,
		"prefix":             k.Prefix,
		"active":             k.Active,
		"created_at":         ts(k.CreatedAt),
		"last_used_at":       tsOrNull(k.LastUsedAt),
		"expires_at":         tsOrNull(k.ExpiresAt),
		"spend_limit_usd":    spendUSD,
		"spend_limit_micros": spendMicros,
		"limit_reset":        reset,
		"rpm_limit":          rpm,
		"allowed_models":     allowedModels,
		"allowed_ips":        allowedIPs,
		"require_signature":  k.RequireSignature,
	}
	if k.IssuedSigningSecret != "" {
		v["signing_secret"] = k.IssuedSigningSecret // the one answer that shows it
	}
	return v
}

// keyWithSecret is K + {key}: the only answer that shows the secret.
func keyWithSecret(k *models.APIKey, secret string) gin.H {
	v := keyView(k)
	v["key"] = secret
	return v
}

// txnView is the contract's transaction object T.
func txnView(e *models.LedgerEntry) gin.H {
	return gin.H{
		"id":                   e.ID,
		"type":                 e.Type,
		"amount_micros":        e.AmountMicros,
		"amount_usd":           money.USD(e.AmountMicros),
		"balance_after_micros": e.BalanceAfterMicros,
		"balance_after_usd":    money.USD(e.BalanceAfterMicros),
		"reference":            e.Reference,
		"description":          e.Description,
		"created_at":           ts(e.CreatedAt),
	}
}
