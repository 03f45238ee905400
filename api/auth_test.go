package api_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/models"
)

func TestRegister(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		r := h.do("POST", "/auth/register", "", map[string]any{"email": "Ann.Lee@Example.com", "password": testPassword,
			"name": "Ann", "role": "admin", "balance_micros": 999, "email_verified": true}).want(201)
		for k, want := range map[string]any{"email": "Ann.Lee@Example.com", "name": "Ann", "role": "user", "plan": "free",
			"active": true, "email_verified": false} {
			if got := r.get("account." + k); got != want {
				t.Errorf("account.%s = %v, want %v", k, got, want)
			}
		}
		if r.num("account.balance_micros") != 0 || !bytes.Contains(r.Raw, []byte(`"balance_usd":0,`)) {
			t.Errorf("a new account has money: %s", r.Raw)
		}
		if r.num("account.rpm_limit") != 60 || r.num("account.monthly_request_limit") != 10000 {
			t.Errorf("free plan limits not shown: %s", r.Raw)
		}
		if r.num("account.low_balance_threshold_micros") != 1_000_000 {
			t.Errorf("threshold: %s", r.Raw)
		}
		if ca := r.str("account.created_at"); !strings.HasSuffix(ca, "Z") {
			t.Errorf("created_at %q is not RFC 3339 UTC", ca)
		} else if _, err := time.Parse(time.RFC3339, ca); err != nil {
			t.Errorf("created_at: %v", err)
		}
		for _, f := range []string{"password_hash", "PasswordHash", "email_lower"} {
			if bytes.Contains(r.Raw, []byte(f)) {
				t.Errorf("account view leaks %s", f)
			}
		}
		// The verification email went out with a link to the public URL.
		msgs := h.Mail.To("ann.lee@example.com")
		if len(msgs) != 1 || !strings.Contains(msgs[0].Text, testPublicURL+"/verify-email?token=") {
			t.Fatalf("verification email: %+v", msgs)
		}
		// Taken, whatever the case.
		h.do("POST", "/auth/register", "", map[string]any{"email": "ann.lee@EXAMPLE.com", "password": testPassword}).
			wantError(409, "conflict")

		bad := []map[string]any{
			{"email": "not-an-email", "password": testPassword},
			{"email": "", "password": testPassword},
			{"email": "a@example.com", "password": "short"},
			{"email": "a@example.com", "password": "password123"},   // common
			{"email": "a@example.com", "password": "a@example.com"}, // the email
			{"email": "a@example.com", "password": strings.Repeat("z", 257)},
			{"email": "a@example.com", "password": strings.Repeat("z", 12)},
			{"email": "a@example.com", "password": testPassword, "name": strings.Repeat("n", 201)},
			{"email": 42, "password": testPassword},
		}
		for _, b := range bad {
			h.do("POST", "/auth/register", "", b).wantError(400, "invalid_request")
		}
		h.do("POST", "/auth/register", "", "").wantError(400, "invalid_request")
		h.do("POST", "/auth/register", "", "{not json").wantError(400, "invalid_request")
		h.do("POST", "/auth/register", "", `{"email":"x@example.com"} {"again":1}`).wantError(400, "invalid_request")
		if n := h.scalar("SELECT COUNT(*) FROM accounts"); n != 2 { // admin + Ann
			t.Fatalf("%d accounts after refused registrations", n)
		}
	})
}

func TestLoginAndMe(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		h.register("bob@example.com", testPassword)
		r := h.do("POST", "/auth/login", "", map[string]string{"email": "BOB@example.com", "password": testPassword}).want(200)
		if r.str("token_type") != "Bearer" || r.num("expires_in") != int64(h.Cfg.AccessTokenTTL/time.Second) ||
			r.str("access_token") == "" || r.str("refresh_token") == "" || r.str("account.email") != "bob@example.com" {
			t.Fatalf("login answer: %s", r.Raw)
		}
		tok := r.str("access_token")
		for _, p := range []string{"/auth/me", "/users/me"} {
			if me := h.do("GET", p, tok, nil).want(200); me.str("account.id") != r.str("account.id") {
				t.Fatalf("%s: %s", p, me.Raw)
			}
		}
		// Unknown email and wrong password: the same 401 body.
		wrong := h.do("POST", "/auth/login", "", map[string]string{"email": "bob@example.com", "password": "wrong-password-1"}).
			wantError(401, "unauthorized")
		unknown := h.do("POST", "/auth/login", "", map[string]string{"email": "nobody@example.com", "password": testPassword}).
			wantError(401, "unauthorized")
		if !bytes.Equal(wrong.Raw, unknown.Raw) {
			t.Fatalf("different bodies:\n%s\n%s", wrong.Raw, unknown.Raw)
		}
		h.do("POST", "/auth/login", "", map[string]string{}).wantError(401, "unauthorized")
		h.do("POST", "/auth/login", "", "[]").wantError(400, "invalid_request")
	})
}

func TestUpdateMe(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		r := h.do("PATCH", "/users/me", u.Token, map[string]any{"name": "  New Name ", "low_balance_threshold_usd": "2.5"}).want(200)
		if r.str("account.name") != "New Name" || r.num("account.low_balance_threshold_micros") != 2_500_000 ||
			!bytes.Contains(r.Raw, []byte(`"low_balance_threshold_usd":2.5`)) {
			t.Fatalf("patch answer: %s", r.Raw)
		}
		r = h.do("PATCH", "/users/me", u.Token, `{"low_balance_threshold_usd": 0.000001}`).want(200)
		if r.num("account.low_balance_threshold_micros") != 1 {
			t.Fatalf("number form: %s", r.Raw)
		}
		h.do("PATCH", "/users/me", u.Token, `{}`).want(200)
		for _, b := range []string{
			`{"role":"admin"}`, `{"balance_micros":1000000}`, `{"email_verified":true}`, `{"plan":"pro"}`,
			`{"nmae":"typo"}`, `{"low_balance_threshold_usd":-1}`, `{"low_balance_threshold_usd":"0.0000001"}`,
			`{"low_balance_threshold_usd":1e3}`, `{"low_balance_threshold_usd":null}`, `{"name":42}`,
			`{"name":"` + strings.Repeat("n", 201) + `"}`, ``,
		} {
			h.do("PATCH", "/users/me", u.Token, b).wantError(400, "invalid_request")
		}
		me := h.do("GET", "/users/me", u.Token, nil).want(200)
		if me.str("account.role") != "user" || me.num("account.balance_micros") != 0 || me.str("account.plan") != "free" ||
			me.num("account.low_balance_threshold_micros") != 1 {
			t.Fatalf("a refused patch changed something: %s", me.Raw)
		}
	})
}

// Refresh rotates the pair; presenting a spent refresh token revokes the
// whole session (its newest tokens too).
func TestRefreshRotationAndReuse(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		r := h.do("POST", "/auth/refresh", "", map[string]string{"refresh_token": u.Refresh}).want(200)
		access2, refresh2 := r.str("access_token"), r.str("refresh_token")
		if refresh2 == u.Refresh || r.str("token_type") != "Bearer" || r.str("account.id") != u.ID {
			t.Fatalf("refresh answer: %s", r.Raw)
		}
		h.do("GET", "/auth/me", access2, nil).want(200)
		h.do("GET", "/auth/me", u.Token, nil).want(200) // the old access token lives until the session ends
		r = h.do("POST", "/auth/refresh", "", map[string]string{"refresh_token": refresh2}).want(200)
		access3, refresh3 := r.str("access_token"), r.str("refresh_token")

		// Replay of a spent token: 401, and the session is over.
		h.do("POST", "/auth/refresh", "", map[string]string{"refresh_token": u.Refresh}).wantError(401, "unauthorized")
		for _, tok := range []string{u.Token, access2, access3} {
			h.do("GET", "/auth/me", tok, nil).wantError(401, "unauthorized")
		}
		h.do("POST", "/auth/refresh", "", map[string]string{"refresh_token": refresh3}).wantError(401, "unauthorized")

		// Other sessions of the same person are untouched.
		other := h.login(u.Email, testPassword)
		h.do("GET", "/auth/me", other.Token, nil).want(200)
		h.do("POST", "/auth/refresh", "", map[string]string{"refresh_token": "brt_unknown"}).wantError(401, "unauthorized")
		h.do("POST", "/auth/refresh", "", map[string]string{}).wantError(401, "unauthorized")
	})
}

// Logout ends the session at once: access and refresh tokens both.
func TestLogout(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		other := h.login(u.Email, testPassword)
		r := h.do("POST", "/auth/logout", u.Token, nil).want(http.StatusNoContent)
		if len(r.Raw) != 0 {
			t.Fatalf("204 with a body: %q", r.Raw)
		}
		h.do("GET", "/auth/me", u.Token, nil).wantError(401, "unauthorized")
		h.do("POST", "/auth/refresh", "", map[string]string{"refresh_token": u.Refresh}).wantError(401, "unauthorized")
		h.do("POST", "/auth/logout", u.Token, nil).wantError(401, "unauthorized")
		h.do("GET", "/auth/me", other.Token, nil).want(200) // only that session
	})
}

func TestVerifyEmail(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		first := h.mailToken(u.Email, "/verify-email", 1)

		// Resending invalidates the first link.
		h.do("POST", "/auth/resend-verification", u.Token, nil).want(202)
		second := h.mailToken(u.Email, "/verify-email", 2)
		if first == second {
			t.Fatal("resend reused the token")
		}
		h.do("POST", "/auth/verify-email", "", map[string]string{"token": first}).wantError(400, "invalid_token")

		r := h.do("POST", "/auth/verify-email", "", map[string]string{"token": second}).want(200)
		if r.get("account.email_verified") != true || r.str("account.id") != u.ID {
			t.Fatalf("verify answer: %s", r.Raw)
		}
		// Single use.
		h.do("POST", "/auth/verify-email", "", map[string]string{"token": second}).wantError(400, "invalid_token")
		// The session sees the change at once (cached account invalidated).
		if me := h.do("GET", "/auth/me", u.Token, nil).want(200); me.get("account.email_verified") != true {
			t.Fatalf("me after verify: %s", me.Raw)
		}
		h.do("POST", "/auth/resend-verification", u.Token, nil).wantError(409, "conflict")

		for _, tok := range []string{"", "bve_unknown", strings.Repeat("x", 300)} {
			h.do("POST", "/auth/verify-email", "", map[string]string{"token": tok}).wantError(400, "invalid_token")
		}
		// A reset token is not a verification token.
		v := h.newUser()
		h.do("POST", "/auth/password/forgot", "", map[string]string{"email": v.Email}).want(202)
		reset := h.mailToken(v.Email, "/reset-password", 1)
		h.do("POST", "/auth/verify-email", "", map[string]string{"token": reset}).wantError(400, "invalid_token")

		// Expired.
		tok := h.mailToken(v.Email, "/verify-email", 1)
		if err := h.DB.Model(&models.AuthToken{}).Where("account_id = ? AND purpose = ?", v.ID, models.PurposeVerifyEmail).
			Update("expires_at", time.Now().UTC().Add(-time.Second)).Error; err != nil {
			t.Fatal(err)
		}
		h.do("POST", "/auth/verify-email", "", map[string]string{"token": tok}).wantError(400, "invalid_token")
	})
}

// The verification token expires after 24 hours, the reset token after one.
func TestTokenLifetimes(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		h.do("POST", "/auth/password/forgot", "", map[string]string{"email": u.Email}).want(202)
		h.mailToken(u.Email, "/reset-password", 1)
		var toks []models.AuthToken
		if err := h.DB.Where("account_id = ?", u.ID).Find(&toks).Error; err != nil || len(toks) != 2 {
			t.Fatalf("tokens: %v %d", err, len(toks))
		}
		for _, tk := range toks {
			want := 24 * time.Hour
			if tk.Purpose == models.PurposePasswordReset {
				want = time.Hour
			}
			if got := tk.ExpiresAt.Sub(tk.CreatedAt); got != want {
				t.Errorf("%s token lives %s, want %s", tk.Purpose, got, want)
			}
			if strings.HasPrefix(tk.TokenHash, "bve_") || strings.HasPrefix(tk.TokenHash, "bpr_") || len(tk.TokenHash) != 64 {
				t.Errorf("token stored in clear? %q", tk.TokenHash)
			}
		}
	})
}

func TestForgotAndResetPassword(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		other := h.login(u.Email, testPassword) // a second session

		known := h.do("POST", "/auth/password/forgot", "", map[string]string{"email": strings.ToUpper(u.Email)}).want(202)
		unknown := h.do("POST", "/auth/password/forgot", "", map[string]string{"email": "nobody@example.com"}).want(202)
		invalid := h.do("POST", "/auth/password/forgot", "", map[string]string{"email": "not an email"}).want(202)
		if !bytes.Equal(known.Raw, unknown.Raw) || !bytes.Equal(known.Raw, invalid.Raw) {
			t.Fatalf("forgot answers differ:\n%s\n%s\n%s", known.Raw, unknown.Raw, invalid.Raw)
		}
		tok := h.mailToken(u.Email, "/reset-password", 1)
		if !strings.Contains(h.Mail.To(u.Email)[1].Text, testPublicURL+"/reset-password?token="+tok) {
			t.Fatalf("reset link: %s", h.Mail.To(u.Email)[1].Text)
		}

		// A weak password is refused and does not spend the token.
		for _, pw := range []string{"short", "password123", u.Email} {
			h.do("POST", "/auth/password/reset", "", map[string]string{"token": tok, "password": pw}).
				wantError(400, "invalid_request")
		}
		h.do("GET", "/auth/me", u.Token, nil).want(200)

		const newPassword = "a-brand-new-passphrase"
		r := h.do("POST", "/auth/password/reset", "", map[string]string{"token": tok, "password": newPassword}).want(200)
		if r.str("account.id") != u.ID {
			t.Fatalf("reset answer: %s", r.Raw)
		}
		// Every session is over, access and refresh tokens alike.
		for _, s := range []*user{u, other} {
			h.do("GET", "/auth/me", s.Token, nil).wantError(401, "unauthorized")
			h.do("POST", "/auth/refresh", "", map[string]string{"refresh_token": s.Refresh}).wantError(401, "unauthorized")
		}
		// Single use.
		h.do("POST", "/auth/password/reset", "", map[string]string{"token": tok, "password": "yet-another-passphrase"}).
			wantError(400, "invalid_token")
		h.do("POST", "/auth/login", "", map[string]string{"email": u.Email, "password": testPassword}).wantError(401, "unauthorized")
		h.login(u.Email, newPassword)

		// A second request invalidates the first link; expired links fail.
		h.do("POST", "/auth/password/forgot", "", map[string]string{"email": u.Email}).want(202)
		t1 := h.mailToken(u.Email, "/reset-password", 2)
		h.do("POST", "/auth/password/forgot", "", map[string]string{"email": u.Email}).want(202)
		t2 := h.mailToken(u.Email, "/reset-password", 3)
		h.do("POST", "/auth/password/reset", "", map[string]string{"token": t1, "password": "yet-another-passphrase"}).
			wantError(400, "invalid_token")
		if err := h.DB.Model(&models.AuthToken{}).Where("account_id = ? AND used_at IS NULL", u.ID).
			Update("expires_at", time.Now().UTC().Add(-time.Second)).Error; err != nil {
			t.Fatal(err)
		}
		h.do("POST", "/auth/password/reset", "", map[string]string{"token": t2, "password": "yet-another-passphrase"}).
			wantError(400, "invalid_token")
		h.do("POST", "/auth/password/reset", "", map[string]string{"token": "bpr_nope", "password": "yet-another-passphrase"}).
			wantError(400, "invalid_token")
		// No email for unknown addresses.
		time.Sleep(50 * time.Millisecond)
		if n := len(h.Mail.To("nobody@example.com")); n != 0 {
			t.Fatalf("%d emails to an unknown address", n)
		}
	})
}

// Each throttled route counts every attempt per IP and per (route, email):
// past BEAVER_AUTH_LIMIT it is 429 with Retry-After, even with the right
// password.
func TestAuthThrottle(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		const limit = 3
		h := newHarness(t, dialect, harnessOpts{Config: func(c *config.Config) { c.AuthLimit = limit }})
		// Accounts made by the admin: registering would spend the budgets.
		for _, e := range []string{"carol@example.com", "dave@example.com", "frank@example.com"} {
			h.do("POST", "/admin/accounts", h.Admin.Token, map[string]any{"email": e, "password": testPassword}).want(201)
		}
		login := func(ip, email string) *resp {
			return h.do("POST", "/auth/login", "", map[string]string{"email": email, "password": testPassword}, fromIP(ip))
		}
		for i := 0; i < limit; i++ {
			login("10.0.0.1", "carol@example.com").want(200)
		}
		r := login("10.0.0.1", "carol@example.com").wantError(429, "rate_limit_exceeded")
		if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
			t.Fatalf("429 without Retry-After: %v", r.Header)
		}
		// Per email: another IP is refused for carol too...
		login("10.0.0.2", "carol@example.com").wantError(429, "rate_limit_exceeded")
		login("10.0.0.2", "CAROL@example.com ").wantError(429, "rate_limit_exceeded")
		// ...and per IP: the first IP is refused for dave.
		login("10.0.0.1", "dave@example.com").wantError(429, "rate_limit_exceeded")
		// A fresh IP passes for dave.
		login("10.0.0.3", "dave@example.com").want(200)
		// Wrong passwords count too, and the right one is then refused.
		for i := 0; i < limit; i++ {
			h.do("POST", "/auth/login", "", map[string]string{"email": "frank@example.com", "password": "wrong-password-1"},
				fromIP("10.0.1."+string(rune('1'+i)))).wantError(401, "unauthorized")
		}
		login("10.0.0.5", "frank@example.com").wantError(429, "rate_limit_exceeded")

		// Other routes have their own budgets, and count the same way.
		for i := 0; i < limit; i++ {
			h.do("POST", "/auth/password/forgot", "", map[string]string{"email": "carol@example.com"}, fromIP("10.0.0.1")).want(202)
		}
		h.do("POST", "/auth/password/forgot", "", map[string]string{"email": "carol@example.com"}, fromIP("10.0.0.9")).
			wantError(429, "rate_limit_exceeded")
		for i := 0; i < limit; i++ {
			h.do("POST", "/auth/verify-email", "", map[string]string{"token": "bve_x"}, fromIP("10.0.0.6")).wantError(400, "invalid_token")
		}
		h.do("POST", "/auth/verify-email", "", map[string]string{"token": "bve_x"}, fromIP("10.0.0.6")).
			wantError(429, "rate_limit_exceeded")
		for i := 0; i < limit; i++ {
			h.do("POST", "/auth/password/reset", "", `{"token":"bpr_x","password":"x"}`, fromIP("10.0.0.7")).wantError(400, "invalid_token")
		}
		h.do("POST", "/auth/password/reset", "", `{"token":"bpr_x","password":"x"}`, fromIP("10.0.0.7")).
			wantError(429, "rate_limit_exceeded")
		for i := 0; i < limit; i++ {
			h.do("POST", "/auth/register", "", "not json", fromIP("10.0.0.8")).wantError(400, "invalid_request")
		}
		h.do("POST", "/auth/register", "", map[string]string{"email": "erin@example.com", "password": testPassword},
			fromIP("10.0.0.8")).wantError(429, "rate_limit_exceeded")
		if n := h.scalar("SELECT COUNT(*) FROM accounts WHERE email_lower = 'erin@example.com'"); n != 0 {
			t.Fatal("a throttled registration created the account")
		}
	})
}
