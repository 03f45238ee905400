package auth

import (
	"strings"
	"unicode"

	"github.com/beaver-gateway/beaver/internal/apierr"
)

// BillingDetails is a change to an account's billing details (PATCH
// /users/me billing_details): each field present is set (null or "" clears
// it); Clear clears all three. Invoices copy them when issued, so a change
// never alters an invoice already issued.
type BillingDetails struct {
	Clear   bool
	Name    Patch[string]
	Address Patch[string]
	TaxID   Patch[string]
}

// Limits of the billing details: what fits an invoice's "Bill to" block.
const (
	maxBillingName         = 200
	maxBillingAddress      = 500
	maxBillingAddressLines = 6
	maxBillingTaxID        = 50
)

// billingColumns validates b and adds its columns to set.
func billingColumns(b BillingDetails, set map[string]any) error {
	if b.Clear {
		set["billing_name"], set["billing_address"], set["billing_tax_id"] = "", "", ""
		return nil
	}
	field := func(p Patch[string], col, param string, limit int, multiline bool) error {
		if !p.Set {
			return nil
		}
		v := strings.TrimSpace(strings.ReplaceAll(p.Value, "\r\n", "\n"))
		if len([]rune(v)) > limit {
			return apierr.Invalid("%s must be at most %d characters", param, limit).WithParam(param)
		}
		for _, r := range v {
			if unicode.IsControl(r) && (r != '\n' || !multiline) {
				return apierr.Invalid("%s must not contain control characters", param).WithParam(param)
			}
		}
		if multiline && strings.Count(v, "\n") >= maxBillingAddressLines {
			return apierr.Invalid("%s must be at most %d lines", param, maxBillingAddressLines).WithParam(param)
		}
		set[col] = v
		return nil
	}
	if err := field(b.Name, "billing_name", "billing_details.name", maxBillingName, false); err != nil {
		return err
	}
	if err := field(b.Address, "billing_address", "billing_details.address", maxBillingAddress, true); err != nil {
		return err
	}
	return field(b.TaxID, "billing_tax_id", "billing_details.tax_id", maxBillingTaxID, false)
}
