package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/config"
)

// freezeClock makes the auth service's clock settable (TOTP steps,
// challenge expiry); it starts at the real time, so the tokens issued
// before stay valid.
func freezeClock(h *harness) *time.Time {
	now := time.Now().UTC()
	h.Auth.Now = func() time.Time { return now }
	return &now
}

func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := auth.TOTPCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// enable2FA enrols and confirms TOTP for u; returns the secret and the
// recovery codes.
func enable2FA(h *harness, u *user, now time.Time) (string, []string) {
	h.t.Helper()
	e := h.do("POST", "/auth/2fa/enroll", u.Token, nil).want(200)
	secret := e.str("secret")
	if !strings.HasPrefix(e.str("otpauth_uri"), "otpauth://totp/") || !strings.Contains(e.str("otpauth_uri"), "secret="+secret) {
		h.t.Fatalf("otpauth_uri %q", e.str("otpauth_uri"))
	}
	r := h.do("POST", "/auth/2fa/confirm", u.Token, map[string]string{"code": totpCode(h.t, secret, now)}).want(200)
	var codes []string
	for _, c := range r.list("recovery_codes") {
		codes = append(codes, c.(string))
	}
	if len(codes) != 10 {
		h.t.Fatalf("recovery codes: %v", codes)
	}
	return secret, codes
}

func challenge(h *harness, u *user) string {
	h.t.Helper()
	r := h.do("POST", "/auth/login", "", map[string]string{"email": u.Email, "password": u.Password}).want(200)
	if r.get("mfa_required") != true || r.get("access_token") != nil || len(r.list("methods")) != 2 {
		h.t.Fatalf("login with 2FA on answered %s", r.Raw)
	}
	return r.str("challenge_token")
}

func TestTwoFactorLogin(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		now := freezeClock(h)
		u := h.newUser()
		if h.do("GET", "/auth/me", u.Token, nil).want(200).get("account.two_factor") != false {
			t.Fatal("two_factor should start false")
		}

		// Enrol: a wrong code does not confirm; the right one does.
		e := h.do("POST", "/auth/2fa/enroll", u.Token, nil).want(200)
		h.do("POST", "/auth/2fa/confirm", u.Token, map[string]string{"code": "000000"}).wantError(400, "invalid_request")
		secret := e.str("secret")
		r := h.do("POST", "/auth/2fa/confirm", u.Token, map[string]string{"code": totpCode(t, secret, *now)}).want(200)
		codes := r.list("recovery_codes")
		if len(codes) != 10 {
			t.Fatalf("recovery codes %v", codes)
		}
		if h.do("GET", "/auth/me", u.Token, nil).want(200).get("account.two_factor") != true {
			t.Fatal("two_factor should be true")
		}
		h.do("POST", "/auth/2fa/enroll", u.Token, nil).wantError(409, "conflict")
		// Nothing secret at rest: the TOTP secret is sealed, recovery codes hashed.
		if n := h.scalar("SELECT COUNT(*) FROM accounts WHERE id = ? AND totp_secret LIKE 'v1:%'", u.ID); n != 1 {
			t.Fatal("TOTP secret is not sealed at rest")
		}
		if n := h.scalar("SELECT COUNT(*) FROM recovery_codes WHERE code_hash = ?", codes[0].(string)); n != 0 {
			t.Fatal("a recovery code is stored in clear")
		}

		// The code used to confirm cannot sign in (same step).
		ch := challenge(h, u)
		h.do("POST", "/auth/login/2fa", "", map[string]string{"challenge_token": ch, "code": totpCode(t, secret, *now)}).
			wantError(401, "unauthorized")
		// A wrong code is refused; the next step's code then signs in.
		h.do("POST", "/auth/login/2fa", "", map[string]string{"challenge_token": ch, "code": "123456"}).wantError(401, "unauthorized")
		*now = now.Add(30 * time.Second)
		code := totpCode(t, secret, *now)
		s := h.do("POST", "/auth/login/2fa", "", map[string]string{"challenge_token": ch, "code": code}).want(200)
		if s.str("account.id") != u.ID || s.str("access_token") == "" {
			t.Fatalf("second step answered %s", s.Raw)
		}
		h.do("GET", "/auth/me", s.str("access_token"), nil).want(200)
		// The challenge is single use, and the code cannot be replayed with a new one.
		h.do("POST", "/auth/login/2fa", "", map[string]string{"challenge_token": ch, "code": totpCode(t, secret, now.Add(30*time.Second))}).
			wantError(401, "unauthorized")
		ch2 := challenge(h, u)
		h.do("POST", "/auth/login/2fa", "", map[string]string{"challenge_token": ch2, "code": code}).wantError(401, "unauthorized")
		// An older step's code is refused too.
		h.do("POST", "/auth/login/2fa", "", map[string]string{"challenge_token": ch2, "code": totpCode(t, secret, now.Add(-30*time.Second))}).
			wantError(401, "unauthorized")

		// A recovery code signs in once.
		rc := codes[3].(string)
		h.do("POST", "/auth/login/2fa", "", map[string]string{"challenge_token": ch2, "recovery_code": strings.ToUpper(rc)}).want(200)
		h.do("POST", "/auth/login/2fa", "", map[string]string{"challenge_token": challenge(h, u), "recovery_code": rc}).
			wantError(401, "unauthorized")
		// Both or neither: 400.
		h.do("POST", "/auth/login/2fa", "", map[string]string{"challenge_token": challenge(h, u)}).wantError(400, "invalid_request")

		// A stolen challenge token is useless once expired, even with a good code.
		stolen := challenge(h, u)
		*now = now.Add(auth.ChallengeTTL + time.Second)
		h.do("POST", "/auth/login/2fa", "", map[string]string{"challenge_token": stolen, "code": totpCode(t, secret, *now)}).
			wantError(401, "unauthorized")
		h.do("POST", "/auth/login/2fa", "", map[string]string{"challenge_token": "bch_forged", "code": totpCode(t, secret, *now)}).
			wantError(401, "unauthorized")

		// Five wrong codes end a challenge.
		ch3 := challenge(h, u)
		for range 5 {
			h.do("POST", "/auth/login/2fa", "", map[string]string{"challenge_token": ch3, "code": "999999"}).wantError(401, "unauthorized")
		}
		h.do("POST", "/auth/login/2fa", "", map[string]string{"challenge_token": ch3, "code": totpCode(t, secret, *now)}).
			wantError(401, "unauthorized")

		// Disable: a used recovery code and a wrong code are refused; an unused recovery code works.
		h.do("POST", "/auth/2fa/disable", u.Token, map[string]string{"recovery_code": rc}).wantError(400, "invalid_request")
		h.do("POST", "/auth/2fa/disable", u.Token, map[string]string{"code": "111111"}).wantError(400, "invalid_request")
		h.do("POST", "/auth/2fa/disable", u.Token, map[string]string{"recovery_code": codes[7].(string)}).want(204)
		if h.do("GET", "/auth/me", u.Token, nil).want(200).get("account.two_factor") != false {
			t.Fatal("two_factor should be false after disable")
		}
		h.login(u.Email, u.Password) // one step again
		h.do("POST", "/auth/2fa/disable", u.Token, map[string]string{"code": "111111"}).wantError(409, "conflict")

		// Enabled again and disabled with a code.
		*now = now.Add(time.Minute)
		secret, _ = enable2FA(h, u, *now)
		*now = now.Add(30 * time.Second)
		h.do("POST", "/auth/2fa/disable", u.Token, map[string]string{"code": totpCode(t, secret, *now)}).want(204)
	})
}

// The per-IP and per-email auth throttles cover the second step.
func TestTwoFactorThrottle(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect, harnessOpts{Config: func(c *config.Config) { c.AuthLimit = 3 }})
		now := freezeClock(h)
		u := h.newUser()
		enable2FA(h, u, *now)
		// One account's codes, guessed from many addresses: its per-email budget.
		ch := challenge(h, u)
		for i := range 3 {
			h.do("POST", "/auth/login/2fa", "", map[string]string{"challenge_token": ch, "code": "000000"},
				fromIP("198.51.100."+string(rune('1'+i)))).wantError(401, "unauthorized")
		}
		r := h.do("POST", "/auth/login/2fa", "", map[string]string{"challenge_token": ch, "code": "000000"}, fromIP("198.51.100.9"))
		r.wantError(429, "rate_limit_exceeded")
		if r.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
		// One address trying tokens: its per-IP budget.
		for range 3 {
			h.do("POST", "/auth/login/2fa", "", map[string]string{"challenge_token": "bch_x", "code": "000000"},
				fromIP("203.0.113.7")).wantError(401, "unauthorized")
		}
		h.do("POST", "/auth/login/2fa", "", map[string]string{"challenge_token": "bch_y", "code": "000000"},
			fromIP("203.0.113.7")).wantError(429, "rate_limit_exceeded")
	})
}

// With BEAVER_REQUIRE_ADMIN_2FA an admin without 2FA signs in but admin
// routes answer 403 two_factor_required until it is confirmed.
func TestRequireAdminTwoFactor(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect, harnessOpts{Config: func(c *config.Config) { c.RequireAdmin2FA = true }})
		now := freezeClock(h)
		h.do("GET", "/admin/accounts", h.Admin.Token, nil).wantError(403, "two_factor_required")
		h.do("GET", "/auth/me", h.Admin.Token, nil).want(200)
		enable2FA(h, h.Admin, *now)
		h.do("GET", "/admin/accounts", h.Admin.Token, nil).want(200)
	})
}

func TestPasskeys(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		now := freezeClock(h)
		dev := &softAuthn{t: t, rpID: "beaver.test", origin: testPublicURL}
		register := func(u *user, name string) *softCred {
			t.Helper()
			b := h.do("POST", "/auth/passkeys/register/begin", u.Token, nil).want(200)
			opts := b.get("options").(map[string]any)
			if rp := opts["publicKey"].(map[string]any)["rp"].(map[string]any)["id"]; rp != "beaver.test" {
				t.Fatalf("rp id %v", rp)
			}
			c, cred := dev.create(opts)
			h.do("POST", "/auth/passkeys/register/finish", u.Token,
				map[string]any{"ceremony_token": b.str("ceremony_token"), "credential": cred, "name": name}).want(201)
			return c
		}
		login := func(c *softCred, handle []byte) *resp {
			t.Helper()
			b := h.do("POST", "/auth/passkeys/login/begin", "", map[string]any{}).want(200)
			return h.do("POST", "/auth/passkeys/login/finish", "",
				map[string]any{"ceremony_token": b.str("ceremony_token"), "credential": dev.get(b.get("options").(map[string]any), c, handle)})
		}

		alice, bob := h.newUser(), h.newUser()
		k1 := register(alice, "laptop")
		k2 := register(alice, "phone")
		kb := register(bob, "bob's key")
		list := h.do("GET", "/auth/passkeys", alice.Token, nil).want(200).list("data")
		if len(list) != 2 || list[0].(map[string]any)["name"] != "laptop" {
			t.Fatalf("alice's passkeys: %v", list)
		}

		// Sign in with either; it satisfies two-factor (no code asked).
		enable2FA(h, alice, *now)
		s := login(k1, []byte(alice.ID)).want(200)
		if s.str("account.id") != alice.ID || s.str("access_token") == "" {
			t.Fatalf("passkey login: %s", s.Raw)
		}
		login(k2, []byte(alice.ID)).want(200)
		login(kb, []byte(bob.ID)).want(200)

		// A passkey presented as another account's is refused.
		login(kb, []byte(alice.ID)).wantError(401, "unauthorized")
		login(k1, []byte(bob.ID)).wantError(401, "unauthorized")
		// An unregistered credential is refused.
		stray, _ := dev.create(map[string]any{"publicKey": map[string]any{"challenge": "x", "user": map[string]any{"id": b64.EncodeToString([]byte(alice.ID))}}})
		login(stray, []byte(alice.ID)).wantError(401, "unauthorized")

		// A login ceremony is single use.
		b := h.do("POST", "/auth/passkeys/login/begin", "", map[string]any{}).want(200)
		body := map[string]any{"ceremony_token": b.str("ceremony_token"), "credential": dev.get(b.get("options").(map[string]any), k1, []byte(alice.ID))}
		h.do("POST", "/auth/passkeys/login/finish", "", body).want(200)
		h.do("POST", "/auth/passkeys/login/finish", "", body).wantError(401, "unauthorized")

		// Bob cannot finish Alice's registration ceremony, nor register her credential.
		rb := h.do("POST", "/auth/passkeys/register/begin", alice.Token, nil).want(200)
		_, cred := dev.create(rb.get("options").(map[string]any))
		h.do("POST", "/auth/passkeys/register/finish", bob.Token,
			map[string]any{"ceremony_token": rb.str("ceremony_token"), "credential": cred}).wantError(401, "unauthorized")

		// Bob cannot remove Alice's passkey; Alice can, and it stops working.
		id := list[0].(map[string]any)["id"].(string)
		h.do("DELETE", "/auth/passkeys/"+id, bob.Token, nil).wantError(404, "not_found")
		h.do("DELETE", "/auth/passkeys/"+id, alice.Token, nil).want(204)
		login(k1, []byte(alice.ID)).wantError(401, "unauthorized")
		if n := len(h.do("GET", "/auth/passkeys", alice.Token, nil).want(200).list("data")); n != 1 {
			t.Fatalf("%d passkeys after delete", n)
		}
		// Malformed input is 400.
		h.do("POST", "/auth/passkeys/login/finish", "", map[string]any{"ceremony_token": "x", "credential": "nope"}).
			wantError(400, "invalid_request")
	})
}

// Turning two-factor on ends the account's other sessions (one opened with
// the password alone must not outlive it); recovery codes can be counted and
// renewed with a current code, after which the old ones stop working.
func TestTwoFactorSessionsAndRecoveryCodes(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		now := freezeClock(h)
		u := h.newUser()
		other := h.login(u.Email, u.Password)
		wantTwoFactor(t, h.do("GET", "/auth/2fa", u.Token, nil).want(200), false, 0)

		secret, codes := enable2FA(h, u, *now)
		h.do("GET", "/auth/me", u.Token, nil).want(200) // the session that turned it on stays
		h.do("GET", "/auth/me", other.Token, nil).wantError(401, "unauthorized")
		h.do("POST", "/auth/refresh", "", map[string]string{"refresh_token": other.Refresh}).wantError(401, "unauthorized")
		wantTwoFactor(t, h.do("GET", "/auth/2fa", u.Token, nil).want(200), true, 10)

		// A recovery code cannot renew the codes; a wrong or replayed code neither.
		h.do("POST", "/auth/2fa/recovery-codes", u.Token, map[string]string{"recovery_code": codes[0]}).wantError(400, "invalid_request")
		h.do("POST", "/auth/2fa/recovery-codes", u.Token, map[string]string{"code": totpCode(t, secret, *now)}).wantError(400, "invalid_request")
		*now = now.Add(30 * time.Second)
		r := h.do("POST", "/auth/2fa/recovery-codes", u.Token, map[string]string{"code": totpCode(t, secret, *now)}).want(200)
		fresh := r.list("recovery_codes")
		if len(fresh) != 10 {
			t.Fatalf("renewed codes %v", fresh)
		}
		wantTwoFactor(t, h.do("GET", "/auth/2fa", u.Token, nil).want(200), true, 10)
		h.do("POST", "/auth/login/2fa", "", map[string]string{"challenge_token": challenge(h, u), "recovery_code": codes[1]}).
			wantError(401, "unauthorized")
		h.do("POST", "/auth/login/2fa", "", map[string]string{"challenge_token": challenge(h, u), "recovery_code": fresh[1].(string)}).want(200)
		wantTwoFactor(t, h.do("GET", "/auth/2fa", u.Token, nil).want(200), true, 9)
		// Each change is audited once, in its own transaction; the refused attempts left nothing.
		for action, want := range map[string]int64{"auth.2fa.enabled": 1, "auth.2fa.recovery_codes_renewed": 1, "auth.2fa.recovery_code_used": 1} {
			if n := h.scalar("SELECT COUNT(*) FROM audit_entries WHERE account_id = ? AND action = ?", u.ID, action); n != want {
				t.Fatalf("%s audit entries: %d, want %d", action, n, want)
			}
		}

		// Expired challenges are purged by the sweep; live ones stay.
		live := h.scalar("SELECT COUNT(*) FROM auth_challenges WHERE expires_at > ?", *now)
		n, err := auth.PurgeExpiredChallenges(t.Context(), h.DB.DB, now.Add(auth.ChallengeTTL+time.Second), 1000)
		if err != nil || n < live {
			t.Fatalf("purged %d (live before %d): %v", n, live, err)
		}
		if left := h.scalar("SELECT COUNT(*) FROM auth_challenges"); left != 0 {
			t.Fatalf("%d challenges left after the purge", left)
		}
	})
}

func wantTwoFactor(t *testing.T, r *resp, on bool, left int64) {
	t.Helper()
	if r.get("two_factor") != on || r.num("recovery_codes_left") != left {
		t.Fatalf("GET /auth/2fa answered %s, want two_factor %v and %d codes left", r.Raw, on, left)
	}
}
