package auth_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

func newService(t testing.TB, dialect string) *auth.Service {
	t.Helper()
	d := testenv.Open(t, dialect)
	return auth.NewService(d, auth.Hasher{MemoryKiB: 1024, Time: 1, Threads: 1}, auth.NewKeyed("secret"), bus.NewLocal(),
		15*time.Minute, 24*time.Hour)
}

// startService joins svc to the replicas of its database (so it serves from
// its caches) until the test ends.
func startService(t testing.TB, svc *auth.Service) {
	t.Helper()
	stop, err := svc.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
}

func forEachDB(t *testing.T, body func(t *testing.T, svc *auth.Service)) {
	for _, d := range testenv.Dialects(t) {
		t.Run(testenv.Name(d), func(t *testing.T) { body(t, newService(t, d)) })
	}
}

func mustAccount(t *testing.T, svc *auth.Service, email string) *models.Account {
	t.Helper()
	a, err := svc.CreateAccount(context.Background(), auth.NewAccount{Email: email, Password: "a-good-passphrase"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	e, ok := apierr.As(err)
	if !ok || e.Code != code {
		t.Fatalf("err = %v, want code %s", err, code)
	}
}

func TestTokensSingleUseAndExpiry(t *testing.T) {
	forEachDB(t, func(t *testing.T, svc *auth.Service) {
		ctx := context.Background()
		a := mustAccount(t, svc, "t@example.com")
		tok, err := svc.IssueToken(ctx, a.ID, models.PurposeVerifyEmail, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		// Wrong purpose: refused, and the token stays usable.
		_, err = svc.ConsumeToken(ctx, models.PurposePasswordReset, tok)
		wantCode(t, err, "invalid_token")
		id, err := svc.ConsumeToken(ctx, models.PurposeVerifyEmail, tok)
		if err != nil || id != a.ID {
			t.Fatalf("consume: %q %v", id, err)
		}
		_, err = svc.ConsumeToken(ctx, models.PurposeVerifyEmail, tok)
		wantCode(t, err, "invalid_token")

		// A newer token invalidates the older unused one.
		old, _ := svc.IssueToken(ctx, a.ID, models.PurposePasswordReset, time.Hour)
		fresh, _ := svc.IssueToken(ctx, a.ID, models.PurposePasswordReset, time.Hour)
		_, err = svc.ConsumeToken(ctx, models.PurposePasswordReset, old)
		wantCode(t, err, "invalid_token")
		if _, err := svc.ConsumeToken(ctx, models.PurposePasswordReset, fresh); err != nil {
			t.Fatal(err)
		}

		// Expiry follows the service clock.
		exp, _ := svc.IssueToken(ctx, a.ID, models.PurposeVerifyEmail, time.Hour)
		real := svc.Now
		svc.Now = func() time.Time { return real().Add(time.Hour + time.Second) }
		_, err = svc.ConsumeToken(ctx, models.PurposeVerifyEmail, exp)
		wantCode(t, err, "invalid_token")
		svc.Now = real
		if _, err := svc.ConsumeToken(ctx, models.PurposeVerifyEmail, exp); err != nil {
			t.Fatalf("still valid before expiry: %v", err)
		}
		if _, err := svc.IssueToken(ctx, a.ID, "other", time.Hour); err == nil {
			t.Fatal("unknown purpose accepted")
		}
	})
}

// Of many concurrent consumers of one token, exactly one wins.
func TestConsumeTokenConcurrently(t *testing.T) {
	forEachDB(t, func(t *testing.T, svc *auth.Service) {
		ctx := context.Background()
		a := mustAccount(t, svc, "c@example.com")
		tok, _ := svc.IssueToken(ctx, a.ID, models.PurposeVerifyEmail, time.Hour)
		const n = 16
		wins := make(chan bool, n)
		for i := 0; i < n; i++ {
			go func() {
				_, err := svc.ConsumeToken(ctx, models.PurposeVerifyEmail, tok)
				if err != nil {
					if e, ok := apierr.As(err); !ok || e.Code != "invalid_token" {
						t.Errorf("unexpected error: %v", err)
					}
				}
				wins <- err == nil
			}()
		}
		won := 0
		for i := 0; i < n; i++ {
			if <-wins {
				won++
			}
		}
		if won != 1 {
			t.Fatalf("%d consumers won, want 1", won)
		}
	})
}

func TestResetPasswordKeepsTokenOnWeakPassword(t *testing.T) {
	forEachDB(t, func(t *testing.T, svc *auth.Service) {
		ctx := context.Background()
		a := mustAccount(t, svc, "r@example.com")
		login, err := svc.Login(ctx, "r@example.com", "a-good-passphrase")
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := svc.IssueToken(ctx, a.ID, models.PurposePasswordReset, time.Hour)
		_, err = svc.ResetPassword(ctx, tok, "weak")
		wantCode(t, err, "invalid_request")
		if _, err := svc.ResetPassword(ctx, tok, "another-good-passphrase"); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Authenticate(ctx, login.AccessToken); err == nil {
			t.Fatal("session survived the reset")
		}
		if _, err := svc.Login(ctx, "r@example.com", "another-good-passphrase"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestEnsureAdmin(t *testing.T) {
	forEachDB(t, func(t *testing.T, svc *auth.Service) {
		ctx := context.Background()
		created, pw, err := auth.EnsureAdmin(ctx, svc, "admin@localhost", "")
		if err != nil || !created || len(pw) < 20 {
			t.Fatalf("first: %v %q %v", created, pw, err)
		}
		a, _ := svc.AccountByEmail(ctx, "ADMIN@localhost")
		if a == nil || a.Role != models.RoleAdmin || !a.EmailVerified || !a.Active {
			t.Fatalf("admin: %+v", a)
		}
		if _, err := svc.Login(ctx, "admin@localhost", pw); err != nil {
			t.Fatalf("generated password does not work: %v", err)
		}
		// Later starts never change the password, whatever the environment says.
		created, pw2, err := auth.EnsureAdmin(ctx, svc, "admin@localhost", "a-different-passphrase")
		if err != nil || created || pw2 != "" {
			t.Fatalf("second: %v %q %v", created, pw2, err)
		}
		if _, err := svc.Login(ctx, "admin@localhost", pw); err != nil {
			t.Fatalf("password changed: %v", err)
		}
		// An existing account gets the admin role back.
		u := mustAccount(t, svc, "boss@example.com")
		if _, _, err := auth.EnsureAdmin(ctx, svc, "Boss@Example.com", ""); err != nil {
			t.Fatal(err)
		}
		if got, _ := svc.GetAccount(ctx, u.ID); got.Role != models.RoleAdmin {
			t.Fatalf("role %q", got.Role)
		}
		if _, _, err := auth.EnsureAdmin(ctx, svc, "not an email", ""); err == nil {
			t.Fatal("bad email accepted")
		}
		if _, _, err := auth.EnsureAdmin(ctx, svc, "new@example.com", "short"); err == nil {
			t.Fatal("weak password accepted")
		}
		// A given password is used as is.
		created, pw, err = auth.EnsureAdmin(ctx, svc, "ops@example.com", "ops-admin-passphrase")
		if err != nil || !created || pw != "" {
			t.Fatalf("given password: %v %q %v", created, pw, err)
		}
		if _, err := svc.Login(ctx, "ops@example.com", "ops-admin-passphrase"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestKeyServiceScopedToAccount(t *testing.T) {
	forEachDB(t, func(t *testing.T, svc *auth.Service) {
		ctx := context.Background()
		a, b := mustAccount(t, svc, "a@example.com"), mustAccount(t, svc, "b@example.com")
		k, secret, err := svc.CreateKey(ctx, a.ID, "k", auth.KeyPolicy{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.GetKey(ctx, b.ID, k.ID); err == nil {
			t.Fatal("B read A's key")
		}
		if _, err := svc.UpdateKey(ctx, b.ID, k.ID, auth.KeyUpdate{Active: auth.SetTo(false)}); err == nil {
			t.Fatal("B changed A's key")
		}
		if _, _, err := svc.RotateKey(ctx, b.ID, k.ID); err == nil {
			t.Fatal("B rotated A's key")
		}
		wantCode(t, svc.DeleteKey(ctx, b.ID, k.ID), "not_found")
		if p, err := svc.Authenticate(ctx, secret); err != nil || p.Account.ID != a.ID {
			t.Fatalf("A's key: %v", err)
		}
		if err := svc.DeleteKey(ctx, a.ID, k.ID); err != nil {
			t.Fatal(err)
		}
		_, err = svc.Authenticate(ctx, secret)
		wantCode(t, err, "invalid_api_key")
		wantCode(t, svc.DeleteKey(ctx, a.ID, k.ID), "not_found")
	})
}

func TestValidateAllowedModels(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		ok   bool
		want int
	}{
		{[]string{"openai/gpt-4o-mini"}, true, 1},
		{[]string{"google/gemini-1.5-flash", "x-ai/grok-2", "openai/gpt-4o-mini", "openai/gpt-4o-mini"}, true, 3},
		{[]string{"anthropic/claude-3-5-haiku-20241022"}, true, 1},
		{[]string{"gpt-4o"}, false, 0},
		{[]string{"OpenAI/gpt-4o"}, false, 0},
		{[]string{"openai/"}, false, 0},
		{[]string{"/gpt"}, false, 0},
		{[]string{"openai/gpt 4o"}, false, 0},
		{[]string{"openai//gpt"}, false, 0},
		{[]string{}, false, 0},
		{nil, false, 0},
	} {
		got, err := auth.ValidateAllowedModels(tc.in)
		if (err == nil) != tc.ok || len(got) != tc.want {
			t.Errorf("%q: got %q, %v", tc.in, got, err)
		}
	}
}

func TestValidateAllowedIPsAndMatch(t *testing.T) {
	got, err := auth.ValidateAllowedIPs([]string{"203.0.113.7", "10.9.8.7/8", "2001:DB8::/32", " 192.168.1.1 ", "203.0.113.7"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"203.0.113.7", "10.0.0.0/8", "2001:db8::/32", "192.168.1.1"}
	if len(got) != len(want) {
		t.Fatalf("%q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%q, want %q", got, want)
		}
	}
	for _, bad := range [][]string{{"1.2.3"}, {"1.2.3.4/40"}, {"fe80::1%eth0"}, {"host"}, {}, {""}} {
		if _, err := auth.ValidateAllowedIPs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, tc := range []struct {
		ip   string
		want bool
	}{
		{"203.0.113.7", true}, {"203.0.113.8", false}, {"10.200.0.1", true}, {"11.0.0.1", false},
		{"2001:db8:1::5", true}, {"::ffff:10.1.1.1", true}, {"192.168.1.1", true}, {"garbage", false},
	} {
		if got := auth.IPAllowed(want, tc.ip); got != tc.want {
			t.Errorf("IPAllowed(%s) = %v", tc.ip, got)
		}
	}
	if !auth.IPAllowed(nil, "1.2.3.4") {
		t.Error("nil list must allow any IP")
	}
}

func TestCurrentPeriodStart(t *testing.T) {
	now := time.Date(2026, 11, 27, 15, 4, 5, 0, time.UTC) // a Friday
	for _, tc := range []struct {
		reset string
		want  time.Time
	}{
		{"daily", time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)},
		{"weekly", time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)},
		{"monthly", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{"none", time.Time{}},
	} {
		if got := auth.CurrentPeriodStart(tc.reset, now); !got.Equal(tc.want) {
			t.Errorf("%s: %s, want %s", tc.reset, got, tc.want)
		}
	}
	sunday := time.Date(2026, 11, 29, 23, 0, 0, 0, time.UTC)
	if got := auth.CurrentPeriodStart("weekly", sunday); !got.Equal(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("weekly on Sunday: %s", got)
	}
}

func TestPatchDecoding(t *testing.T) {
	var v struct {
		A auth.Patch[int64]  `json:"a"`
		B auth.Patch[int64]  `json:"b"`
		C auth.Patch[string] `json:"c"`
	}
	if err := json.Unmarshal([]byte(`{"a":null,"c":"x"}`), &v); err != nil {
		t.Fatal(err)
	}
	if !v.A.Set || !v.A.Null || v.B.Set || !v.C.Set || v.C.Null || v.C.Value != "x" {
		t.Fatalf("%+v", v)
	}
	if err := json.Unmarshal([]byte(`{"a":"1"}`), &v); err == nil {
		t.Fatal("wrong type accepted")
	}
}
