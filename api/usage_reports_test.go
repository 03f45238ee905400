package api_test

import (
	"testing"
)

// PATCH /users/me takes usage_reports (weekly, monthly, both, off; every
// account starts with monthly) and GET /users/me shows it; anything else is
// 400 invalid_request and changes nothing, not even the other fields sent
// along.
func TestUpdateMeUsageReports(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		if got := h.do("GET", "/users/me", u.Token, nil).want(200).str("account.usage_reports"); got != "monthly" {
			t.Fatalf("default usage_reports %q", got)
		}
		for _, v := range []string{"weekly", "both", "off", "monthly"} {
			r := h.do("PATCH", "/users/me", u.Token, map[string]any{"usage_reports": v}).want(200)
			if r.str("account.usage_reports") != v {
				t.Fatalf("patch %s answered %s", v, r.Raw)
			}
			if got := h.do("GET", "/users/me", u.Token, nil).want(200).str("account.usage_reports"); got != v {
				t.Fatalf("after patch %s, GET shows %q", v, got)
			}
		}
		r := h.do("PATCH", "/users/me", u.Token, map[string]any{"usage_reports": "weekly", "name": "Wendy"}).want(200)
		if r.str("account.usage_reports") != "weekly" || r.str("account.name") != "Wendy" {
			t.Fatalf("combined patch: %s", r.Raw)
		}
		for _, b := range []string{
			`{"usage_reports":"daily"}`, `{"usage_reports":"Weekly"}`, `{"usage_reports":""}`,
			`{"usage_reports":null}`, `{"usage_reports":1}`, `{"usage_reports":["weekly"]}`,
			`{"usage_reports":"off","name":"x","low_balance_threshold_usd":-1}`,
			`{"usage_reports":"bogus","name":"Mallory"}`,
		} {
			h.do("PATCH", "/users/me", u.Token, b).wantError(400, "invalid_request")
		}
		me := h.do("GET", "/users/me", u.Token, nil).want(200)
		if me.str("account.usage_reports") != "weekly" || me.str("account.name") != "Wendy" {
			t.Fatalf("a refused patch changed something: %s", me.Raw)
		}
	})
}
