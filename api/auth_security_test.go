package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/config"
)

// trailing are ways of ending a body after one valid JSON object that a
// lenient reader lets through: a json.Decoder's More is false before "]"
// and "}", so only a check of every remaining byte refuses them.
var trailing = []string{"]", "}", "\n]", " }}", "]]", "}]", ",", "x", `{"email":"other@example.com"}`}

// Every auth route, and the other session routes that read a JSON object,
// refuse a body with anything but whitespace after its object, in the
// contract's error shape.
func TestAuthBodyTrailingDataRefused(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		bodies := map[string]string{
			"/auth/register":        jsonBody(map[string]string{"email": "new@example.com", "password": testPassword}),
			"/auth/login":           jsonBody(map[string]string{"email": u.Email, "password": testPassword}),
			"/auth/password/forgot": jsonBody(map[string]string{"email": u.Email}),
			"/auth/password/reset":  `{"token":"bpr_x","password":"a-brand-new-passphrase"}`,
			"/auth/verify-email":    `{"token":"bve_x"}`,
			"/auth/refresh":         jsonBody(map[string]string{"refresh_token": u.Refresh}),
		}
		for path, body := range bodies {
			for _, tail := range trailing {
				r := h.do("POST", path, "", body+tail).wantError(400, "invalid_request")
				if !strings.Contains(r.str("error.message"), "JSON") {
					t.Errorf("POST %s with %q: unclear message %s", path, tail, r.Raw)
				}
			}
		}
		h.do("PATCH", "/users/me", u.Token, `{"name":"Zed"}]`).wantError(400, "invalid_request")
		if n := h.scalar("SELECT COUNT(*) FROM accounts WHERE email_lower = 'new@example.com'"); n != 0 {
			t.Fatal("a refused body registered an account")
		}
		if name := h.do("GET", "/auth/me", u.Token, nil).want(200).str("account.name"); name != "" {
			t.Fatalf("a refused PATCH set the name to %q", name)
		}
		// Whitespace after the object is fine; the refused refreshes did not
		// spend the token.
		h.do("POST", "/auth/refresh", "", bodies["/auth/refresh"]+" \n\t\r ").want(200)
		h.do("POST", "/auth/register", "", bodies["/auth/register"]+"\n").want(201)
	})
}

// A refused body still spends the client address's budget on every auth
// route: bad JSON and trailing data alike.
func TestAuthThrottleCountsRefusedBodies(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		const limit = 3
		h := newHarness(t, dialect, harnessOpts{Config: func(c *config.Config) { c.AuthLimit = limit }})
		routes := map[string]string{
			"/auth/register":        jsonBody(map[string]string{"email": "new@example.com", "password": testPassword}),
			"/auth/login":           jsonBody(map[string]string{"email": testAdminEmail, "password": testAdminPassword}),
			"/auth/password/forgot": jsonBody(map[string]string{"email": testAdminEmail}),
			"/auth/password/reset":  `{"token":"bpr_x","password":"a-brand-new-passphrase"}`,
			"/auth/verify-email":    `{"token":"bve_x"}`,
		}
		for path, body := range routes { // one address: its counter is per route
			for _, b := range []string{body + "]", body + "}", "{not json"} { // limit of them
				h.do("POST", path, "", b, fromIP("10.3.0.1")).wantError(400, "invalid_request")
			}
			h.do("POST", path, "", body, fromIP("10.3.0.1")).wantError(429, "rate_limit_exceeded")
		}
	})
}

// jsonBody encodes v as a JSON string body.
func jsonBody(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// The outside review's bypass: a login body followed by "]" or "}" was not
// counted under its email, so wrong passwords from many addresses went
// unlimited. Every attempt now counts under the email, folded like account
// emails, whatever the body's ending, spelling or client address.
func TestAuthThrottlePerEmailWithTrailingData(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		const limit = 10 // the contract's default BEAVER_AUTH_LIMIT
		h := newHarness(t, dialect, harnessOpts{Config: func(c *config.Config) { c.AuthLimit = limit }})
		h.do("POST", "/admin/accounts", h.Admin.Token, map[string]any{"email": "kim@example.com", "password": testPassword}).want(201)
		spellings := []string{"kim@example.com", "KIM@example.com", "\u212Aim@example.com", "\uFF4Bim@example.com",
			"kim@example.com\u200b", " kim@EXAMPLE.com"}
		for i := 0; i < limit; i++ {
			body := jsonBody(map[string]string{"email": spellings[i%len(spellings)], "password": fmt.Sprint("wrong-password-", i)})
			if i%2 == 1 {
				body += trailing[i%len(trailing)]
			}
			h.do("POST", "/auth/login", "", body, fromIP(fmt.Sprintf("10.1.0.%d", i+1))).want(400, 401)
		}
		// The 11th, with the right password, from a fresh address: refused.
		for _, tail := range []string{"", "]", "}"} {
			r := h.do("POST", "/auth/login", "", `{"email":"kim@example.com","password":"`+testPassword+`"}`+tail,
				fromIP("10.1.1.1")).wantError(429, "rate_limit_exceeded")
			if r.Header.Get("Retry-After") == "" {
				t.Fatalf("429 without Retry-After")
			}
		}
		// Another address still signs in: the counter is per email.
		h.do("POST", "/admin/accounts", h.Admin.Token, map[string]any{"email": "lee@example.com", "password": testPassword}).want(201)
		h.do("POST", "/auth/login", "", map[string]string{"email": "lee@example.com", "password": testPassword},
			fromIP("10.1.1.2")).want(200)
	})
}

// The same bypass on forgot-password sent more reset emails than the limit.
func TestForgotThrottlePerEmailWithTrailingData(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		const limit = 10
		h := newHarness(t, dialect, harnessOpts{Config: func(c *config.Config) { c.AuthLimit = limit }})
		h.do("POST", "/admin/accounts", h.Admin.Token, map[string]any{"email": "max@example.com", "password": testPassword}).want(201)
		// The last spelling can have no account: counted, but no email.
		spellings := []string{"max@example.com", "MAX@example.com", "\uFF4Dax@example.com", "max@example.com\ufeff"}
		accepted, mailed := 0, 0
		for i := 0; i < 15; i++ {
			spelling := spellings[i%len(spellings)]
			body := jsonBody(map[string]string{"email": spelling})
			if i%3 == 2 {
				body += trailing[i%len(trailing)]
			}
			r := h.do("POST", "/auth/password/forgot", "", body, fromIP(fmt.Sprintf("10.2.0.%d", i+1)))
			switch {
			case i >= limit:
				r.wantError(429, "rate_limit_exceeded")
			case i%3 == 2:
				r.wantError(400, "invalid_request")
			default:
				r.want(202)
				accepted++
				if !strings.Contains(spelling, "\ufeff") {
					mailed++
				}
			}
		}
		// One reset email per accepted request for the account, and no more.
		h.mailToken("max@example.com", "/reset-password", mailed)
		time.Sleep(100 * time.Millisecond) // let any stray background send land
		sent := 0
		for _, m := range h.Mail.To("max@example.com") {
			if strings.Contains(m.Text, "/reset-password?token=") {
				sent++
			}
		}
		if sent != mailed || accepted != 7 {
			t.Fatalf("%d reset emails, want %d; %d requests accepted, want 7 (limit %d)", sent, mailed, accepted, limit)
		}
	})
}

// Look-alike addresses: invisible characters are refused at registration, a
// compatibility variant of a taken address is taken, and sign-in and
// forgot-password find the account through any such spelling.
func TestLookAlikeEmailRegistration(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		id := h.register("kelvin@example.com", testPassword)
		for _, e := range []string{"kelvin@example.com\u200b", "\u200bkelvin@example.com", "kel\u200dvin@example.com",
			"kelvin@example.com\ufeff", "kelvin\u202e@example.com", "kelvin\u00a0x@example.com"} {
			r := h.do("POST", "/auth/register", "", map[string]string{"email": e, "password": testPassword}).
				wantError(400, "invalid_request")
			if !strings.Contains(r.str("error.message"), "email") {
				t.Errorf("register %+q: unclear message %s", e, r.Raw)
			}
		}
		for _, e := range []string{"\u212Aelvin@example.com", "KELVIN@example.com", "\uFF4Belvin@example.com", "\uFF2B\uFF25\uFF2Cvin@example.com"} {
			h.do("POST", "/auth/register", "", map[string]string{"email": e, "password": testPassword}).wantError(409, "conflict")
		}
		if n := h.scalar("SELECT COUNT(*) FROM accounts WHERE email_lower LIKE '%elvin%'"); n != 1 {
			t.Fatalf("%d kelvin accounts", n)
		}
		for _, e := range []string{"\u212Aelvin@example.com", "\uFF4Belvin@example.com", "KELVIN@EXAMPLE.COM"} {
			if got := h.login(e, testPassword).ID; got != id {
				t.Fatalf("login as %+q answered account %s, want %s", e, got, id)
			}
		}
		// A spelling that cannot be an account is an unknown email: the same 401.
		bad := h.do("POST", "/auth/login", "", map[string]string{"email": "kelvin@example.com\u200b", "password": testPassword}).
			wantError(401, "unauthorized")
		unknown := h.do("POST", "/auth/login", "", map[string]string{"email": "nobody@example.com", "password": testPassword}).
			wantError(401, "unauthorized")
		if string(bad.Raw) != string(unknown.Raw) {
			t.Fatalf("401 bodies differ:\n%s\n%s", bad.Raw, unknown.Raw)
		}
		h.do("POST", "/auth/password/forgot", "", map[string]string{"email": "\u212Aelvin@example.com"}).want(202)
		h.mailToken("kelvin@example.com", "/reset-password", 1)
	})
}

// Every JSON endpoint reads its body with the same strict parser: trailing
// data after the object is refused there too, and nothing is created.
func TestEveryEndpointRefusesTrailingData(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		for _, tail := range []string{"]", "}", " {}"} {
			h.do("POST", "/api-keys", u.Token, `{"name":"k"}`+tail).wantError(400, "invalid_request")
			h.do("PATCH", "/users/me", u.Token, `{"name":"n"}`+tail).wantError(400, "invalid_request")
			h.do("POST", "/admin/top-up", h.Admin.Token, `{"account_id":"`+u.ID+`","amount_usd":"1"}`+tail).wantError(400, "invalid_request")
		}
		if n := h.scalar("SELECT COUNT(*) FROM api_keys WHERE account_id = ?", u.ID); n != 0 {
			t.Fatalf("%d keys created from refused bodies", n)
		}
		if n := h.scalar("SELECT COUNT(*) FROM ledger_entries WHERE account_id = ?", u.ID); n != 0 {
			t.Fatalf("%d ledger entries from refused bodies", n)
		}
	})
}
