package api

import (
	"strings"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/reports"
	"github.com/beaver-gateway/beaver/models"
)

// usageReportsChoice validates PATCH /users/me's usage_reports: "" when the
// field was not sent, 400 for anything but the contract's values.
func usageReportsChoice(p auth.Patch[string]) (string, error) {
	if !p.Set {
		return "", nil
	}
	if p.Null || !reports.ValidPreference(p.Value) {
		return "", apierr.Invalid("usage_reports must be one of %s", strings.Join(reports.Preferences, ", "))
	}
	return p.Value, nil
}

// usageReportsOf is an account's choice as the API shows it.
func usageReportsOf(a *models.Account) string {
	if a.UsageReports == "" {
		return reports.Default
	}
	return a.UsageReports
}
