package audit

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Change is one field's value before and after an act; nil = absent (a
// created thing has no before, a deleted one no after).
type Change struct {
	Before any `json:"before,omitempty"`
	After  any `json:"after,omitempty"`
}

// Changes maps field names to what changed. Only the fields allowed for the
// subject's kind may appear (allowed), so a secret cannot reach the log by
// mistake: Record refuses an entry naming any other field.
type Changes map[string]Change

// Set records one field's change and returns c (nil c starts a new map).
func (c Changes) Set(field string, before, after any) Changes {
	if c == nil {
		c = Changes{}
	}
	c[field] = Change{Before: before, After: after}
	return c
}

// Diff is the fields of before and after (values keyed by field name) whose
// values differ, as Changes; a field in only one of them changed from or to
// nothing.
func Diff(before, after map[string]any) Changes {
	out := Changes{}
	for k, b := range before {
		a, ok := after[k]
		if !ok || !reflect.DeepEqual(deref(a), deref(b)) {
			out[k] = Change{Before: deref(b), After: deref(a)}
		}
	}
	for k, a := range after {
		if _, ok := before[k]; !ok {
			out[k] = Change{After: deref(a)}
		}
	}
	return out
}

// deref turns a typed nil pointer into nil and a pointer into its value,
// so that *int64 fields compare and encode as their values.
func deref(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil
		}
		return rv.Elem().Interface()
	}
	return v
}

// allowed lists, per subject kind (the part of Subject before ":"), the
// fields an entry may carry. None is a secret: no password, key, hash,
// token, provider key, signing or TOTP secret, recovery code.
var allowed = map[string][]string{
	KindAccount: {"email", "name", "role", "plan", "active", "email_verified", "rpm_limit", "monthly_request_limit",
		"low_balance_threshold_micros", "two_factor", "balance_micros", "amount_micros", "type", "reference",
		"description", "ledger_entry_id", "usage_reports", "billing_details", "sessions_revoked", "reason"},
	KindKey: {"name", "active", "prefix", "expires_at", "spend_limit_micros", "limit_reset", "rpm_limit",
		"allowed_models", "allowed_ips", "require_signature", "deleted", "account_id"},
	KindModel: {"provider", "provider_model", "name", "context_length", "max_output_tokens", "capabilities", "active",
		"base_input_micros", "base_output_micros", "base_fee_micros", "base_cached_input_micros", "base_reasoning_micros",
		"base_extra_prices", "retired", "replacement", "aliases", "models_created", "models_updated"},
	KindProvider: {"format", "base_urls", "api_key_set", "api_key_env", "header_names", "usage_semantics", "weights", "deleted"},
	KindPricing:  {"version", "models", "reason", "format", "added", "changed", "retired"},
	KindEmail:    {"reason"},
	KindDispute:  {"status", "reason", "amount_micros", "charge", "top_up_id"},
	KindPasskey:  {"name", "credential_id_prefix", "reason"},
	KindIdentity: {"provider", "email", "subject", "reason"},
	KindSession:  {"reason"},
}

// Subject kinds.
const (
	KindAccount  = "account"
	KindKey      = "key"
	KindModel    = "model"
	KindProvider = "provider"
	KindPricing  = "pricing"
	KindEmail    = "email" // a sign-in attempt on an address with no account
	KindDispute  = "dispute"
	KindPasskey  = "passkey"
	KindIdentity = "identity"
	KindSession  = "session"
)

// Subject names a thing of a kind: "key:key_123".
func Subject(kind, id string) string { return kind + ":" + id }

// checkChanges refuses fields not allowed for the subject's kind.
func checkChanges(subject string, c Changes) error {
	kind, _, _ := strings.Cut(subject, ":")
	list, ok := allowed[kind]
	if !ok {
		return fmt.Errorf("audit: unknown subject kind %q", kind)
	}
	var bad []string
	for f := range c {
		if !contains(list, f) {
			bad = append(bad, f)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("audit: %s entries may not record %s", kind, strings.Join(bad, ", "))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// encodeChanges is the stored (and hashed) form of c: JSON with its keys
// sorted (encoding/json sorts map keys), "{}" for none.
func encodeChanges(c Changes) (string, error) {
	if len(c) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("audit: encode changes: %w", err)
	}
	return string(b), nil
}

// AllowedFields returns a copy of the allow-list per subject kind (for
// tests and documentation).
func AllowedFields() map[string][]string {
	out := make(map[string][]string, len(allowed))
	for k, v := range allowed {
		out[k] = append([]string(nil), v...)
	}
	return out
}
