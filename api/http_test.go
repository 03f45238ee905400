package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/api"
	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/web"
)

// Unknown routes are JSON 404s, wrong methods 405s, in the error shape.
func TestUnknownRouteAndWrongMethod(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		h.do("GET", "/no/such/route", "", nil).wantError(404, "not_found")
		h.do("GET", "/v1/nope", "", nil).wantError(404, "not_found")
		h.do("POST", "/admin/nothing-here", h.Admin.Token, map[string]any{}).wantError(404, "not_found")
		r := h.do("DELETE", "/auth/login", "", nil).wantError(405, "method_not_allowed")
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("405 Content-Type %q", ct)
		}
		h.do("PUT", "/api-keys", h.Admin.Token, map[string]any{}).wantError(405, "method_not_allowed")
	})
}

// With the dashboard mounted, only browsers get its page for a path no route
// takes; an API client with a typo gets a 404 in the error shape of the
// surface it called, whatever the case of the path.
func TestUnknownRoutesWithTheDashboard(t *testing.T) {
	h := newHarness(t, "sqlite", harnessOpts{Deps: func(_ *testing.T, _ *harness, d *api.Deps) { d.Web = web.Handler() }})
	html := withHeader("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")

	page := h.do("GET", "/no/such/route", "", nil, html).want(200)
	if ct := page.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("browser navigation: Content-Type %q", ct)
	}
	h.do("GET", "/", "", nil).want(200) // the root is the app's for anyone

	h.do("GET", "/no/such/route", "", nil).wantError(404, "not_found")
	h.do("GET", "/no/such/route", "", nil, withHeader("Accept", "application/json")).wantError(404, "not_found")
	h.do("POST", "/no/such/route", "", map[string]any{}, html).wantError(404, "not_found")
	for _, p := range []string{"/ADMIN/accounts", "/Admin", "/V1/models", "/account/nothing", "/Status/x"} {
		h.do("GET", p, "", nil, html).wantError(404, "not_found")
	}

	// Anthropic's surface answers in Anthropic's envelope.
	h.do("GET", "/v1/messages/nope", "", nil).wantAnthropicError(404, "not_found_error", "not_found")
	r := h.do("GET", "/v1/messages", "", nil).wantAnthropicError(405, "invalid_request_error", "method_not_allowed")
	if r.Header.Get("Request-Id") == "" {
		t.Fatal("Anthropic-shaped error without Request-Id")
	}
}

// Bodies over BEAVER_MAX_BODY_BYTES get 413, with or without Content-Length.
func TestBodyTooLarge(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect, harnessOpts{Config: func(c *config.Config) { c.MaxBodyBytes = 1024 }})
		big := `{"email":"a@example.com","password":"` + strings.Repeat("x", 2000) + `"}`
		h.do("POST", "/auth/login", "", big).wantError(413, "request_too_large")
		h.do("POST", "/auth/login", "", strings.NewReader(big)).wantError(413, "request_too_large") // chunked
		h.do("POST", "/auth/register", "", strings.NewReader(big)).wantError(413, "request_too_large")
		u := h.newUser()
		h.do("PATCH", "/users/me", u.Token, strings.NewReader(`{"name":"`+strings.Repeat("n", 2000)+`"}`)).
			wantError(413, "request_too_large")
		// Just under the limit is fine.
		h.do("PATCH", "/users/me", u.Token, `{"name":"`+strings.Repeat("n", 100)+`"}`).want(200)
	})
}

// A caller's sane X-Request-Id is echoed; anything else is replaced.
func TestRequestID(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		r := h.do("GET", "/auth/me", "", nil, withHeader("X-Request-Id", "client-abc.123_X"))
		if got := r.Header.Get("X-Request-Id"); got != "client-abc.123_X" {
			t.Fatalf("sane id not kept: %q", got)
		}
		for _, bad := range []string{"has space", "semi;colon", strings.Repeat("a", 129), "ünïcode"} {
			r := h.do("GET", "/auth/me", h.Admin.Token, nil, withHeader("X-Request-Id", bad)).want(200)
			got := r.Header.Get("X-Request-Id")
			if got == "" || got == bad {
				t.Fatalf("insane id %q answered with %q", bad, got)
			}
		}
		if r := h.do("GET", "/no/route", "", nil); r.Header.Get("X-Request-Id") == "" {
			t.Fatal("404 without X-Request-Id")
		}
	})
}

// No credentials or bad ones are 401; an API key on a session-only route is
// 403; a non-admin on /admin is 403.
func TestUnauthorizedVersusForbidden(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		keyID, secret := h.createKey(u, nil)
		_, adminKey := h.createKey(h.Admin, nil)

		for _, path := range []string{"/auth/me", "/users/me", "/api-keys", "/account/balance", "/admin/accounts"} {
			h.do("GET", path, "", nil).wantError(401, "unauthorized")
			h.do("GET", path, "bst_garbage.garbage", nil).wantError(401, "unauthorized")
		}
		h.do("GET", "/auth/me", "sk-beaver-not-a-real-key", nil).wantError(401, "invalid_api_key")
		r := h.do("GET", "/auth/me", "", nil, withHeader("Authorization", "Basic dXNlcjpwYXNz"))
		r.wantError(401, "unauthorized")

		// What an API key may do.
		for _, path := range []string{"/auth/me", "/users/me", "/api-keys", "/api-keys/" + keyID,
			"/account/balance", "/account/transactions", "/account/usage", "/account/billing"} {
			h.do("GET", path, secret, nil).want(200)
		}
		// Session-only routes refuse it with 403.
		sessionOnly := []struct{ method, path string }{
			{"POST", "/auth/logout"},
			{"PATCH", "/users/me"},
			{"POST", "/auth/resend-verification"},
			{"POST", "/api-keys"},
			{"POST", "/api-keys/generate"},
			{"PATCH", "/api-keys/" + keyID},
			{"DELETE", "/api-keys/" + keyID},
			{"POST", "/api-keys/" + keyID + "/rotate"},
		}
		for _, rt := range sessionOnly {
			h.do(rt.method, rt.path, secret, map[string]any{"name": "x"}).wantError(403, "forbidden")
		}
		// The key still works: none of the refused calls did anything.
		h.do("GET", "/api-keys/"+keyID, secret, nil).want(200)

		// Admin routes: a user session is 403, and so is an admin's API key.
		for _, tok := range []string{u.Token, adminKey} {
			h.do("GET", "/admin/accounts", tok, nil).wantError(403, "forbidden")
			h.do("POST", "/admin/top-up", tok, map[string]any{"account_id": u.ID, "amount_usd": "1"}).wantError(403, "forbidden")
		}
		if n := h.scalar("SELECT COUNT(*) FROM ledger_entries"); n != 0 {
			t.Fatalf("a refused top-up posted %d entries", n)
		}
		h.do("GET", "/admin/accounts", h.Admin.Token, nil).want(http.StatusOK)
	})
}

// BEAVER_CORS_ORIGINS allows listed browser origins, with preflight; other
// origins (and every origin when it is unset) get no CORS headers.
func TestCORS(t *testing.T) {
	h := newHarness(t, "sqlite", harnessOpts{Config: func(c *config.Config) { c.CORSOrigins = []string{"https://app.example"} }})
	pre := h.do("OPTIONS", "/v1/chat/completions", "", nil, withHeader("Origin", "https://app.example"),
		withHeader("Access-Control-Request-Method", "POST"), withHeader("Access-Control-Request-Headers", "authorization"))
	if pre.Status != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", pre.Status, pre.Header)
	}
	r := h.do("GET", "/health", "", nil, withHeader("Origin", "https://app.example")).want(200)
	if r.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || !strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "X-Request-Id") {
		t.Fatalf("simple request headers: %v", r.Header)
	}
	if r := h.do("GET", "/health", "", nil, withHeader("Origin", "https://evil.example")).want(200); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("a foreign origin was allowed")
	}
	off := newHarness(t, "sqlite")
	if r := off.do("GET", "/health", "", nil, withHeader("Origin", "https://app.example")).want(200); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS headers sent with BEAVER_CORS_ORIGINS unset")
	}
}
