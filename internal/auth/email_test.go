package auth_test

import (
	"context"
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/auth"
)

func TestNormalizeEmail(t *testing.T) {
	cases := []struct {
		in, email, lower string // email "" = refused
	}{
		{"ann@example.com", "ann@example.com", "ann@example.com"},
		{"  Ann.Lee@Example.COM \t", "Ann.Lee@Example.COM", "ann.lee@example.com"},
		{"admin@localhost", "admin@localhost", "admin@localhost"},
		// Compatibility look-alikes fold to the address they imitate.
		{"\u212Aelvin@example.com", "Kelvin@example.com", "kelvin@example.com"},           // KELVIN SIGN
		{"\uFF58@example.com", "x@example.com", "x@example.com"},                          // FULLWIDTH x
		{"\uFB01nn@example.com", "finn@example.com", "finn@example.com"},                  // fi ligature
		{"x@ex\u0430mple.com", "x@ex\u0430mple.com", "x@ex\u0430mple.com"},                // Cyrillic a: a different letter, kept
		{"jos\u0065\u0301@example.com", "jos\u00e9@example.com", "jos\u00e9@example.com"}, // composed
		// Invisible and control characters are refused, wherever they are.
		{"x@example.com\u200b", "", ""},  // zero-width space
		{"x\u200c@example.com", "", ""},  // zero-width non-joiner
		{"x\u200d@example.com", "", ""},  // zero-width joiner
		{"x@exa\u2060mple.com", "", ""},  // word joiner
		{"\ufeffx@example.com", "", ""},  // BOM
		{"x\u00ad@example.com", "", ""},  // soft hyphen
		{"x\u202e@example.com", "", ""},  // right-to-left override
		{"x\u2066@example.com", "", ""},  // left-to-right isolate
		{"x\u200f@example.com", "", ""},  // right-to-left mark
		{"x\u00a0y@example.com", "", ""}, // no-break space inside
		{"x\u3000y@example.com", "", ""}, // ideographic space inside
		{"x@example.com\u2028y", "", ""}, // line separator
		{"x@example.com\u2029y", "", ""}, // paragraph separator
		{"x\u0000@example.com", "", ""},  // NUL
		{"x\u007f@example.com", "", ""},  // DEL
		{"x\u0085@example.com", "", ""},  // NEL (C1 control)
		{"x\u3164@example.com", "", ""},  // Hangul filler
		{"x\u034f@example.com", "", ""},  // combining grapheme joiner
		{"x\ufe0f@example.com", "", ""},  // variation selector
		{"x\ue000@example.com", "", ""},  // private use
		{"x\ufffd@example.com", "", ""},  // what invalid UTF-8 became
		{"x\xff@example.com", "", ""},    // invalid UTF-8
		// The existing validation still holds.
		{"", "", ""},
		{"not-an-email", "", ""},
		{"Ann <ann@example.com>", "", ""},
		{"ann@example", "", ""},
		{"a b@example.com", "", ""},
		{strings.Repeat("a", 250) + "@example.com", "", ""}, // over 254 bytes
	}
	for _, c := range cases {
		email, lower, err := auth.NormalizeEmail(c.in)
		if c.email == "" {
			if err == nil {
				t.Errorf("NormalizeEmail(%+q) = %+q, %+q; want refused", c.in, email, lower)
			} else {
				wantCode(t, err, "invalid_request")
			}
			continue
		}
		if err != nil || email != c.email || lower != c.lower {
			t.Errorf("NormalizeEmail(%+q) = %+q, %+q, %v; want %+q, %+q", c.in, email, lower, err, c.email, c.lower)
		}
		// The throttle's key is the same form for every valid address.
		if k := auth.EmailKey(c.in); k != c.lower {
			t.Errorf("EmailKey(%+q) = %+q, want %+q", c.in, k, c.lower)
		}
	}
}

// A look-alike variant of an address, even one NormalizeEmail refuses, is
// counted under the address it imitates.
func TestEmailKeyFoldsLookAlikes(t *testing.T) {
	for _, in := range []string{"x@example.com", " X@EXAMPLE.COM ", "x@example.com\u200b", "\ufeffx@example.com",
		"x\u200d@example.com", "\uFF58@example.com", "\uFF38@\uFF25xample.com", "x@exa\u2060mple.com"} {
		if k := auth.EmailKey(in); k != "x@example.com" {
			t.Errorf("EmailKey(%+q) = %+q, want x@example.com", in, k)
		}
	}
}

// Registration refuses look-alikes of a taken address (409) and invisible
// characters (400); login finds the account whatever the spelling. Rows
// stored earlier keep their email as written.
func TestLookAlikeEmails(t *testing.T) {
	forEachDB(t, func(t *testing.T, svc *auth.Service) {
		ctx := context.Background()
		a := mustAccount(t, svc, "Kelvin@Example.com")
		if a.Email != "Kelvin@Example.com" || a.EmailLower != "kelvin@example.com" {
			t.Fatalf("stored %q / %q", a.Email, a.EmailLower)
		}
		for _, e := range []string{"\u212Aelvin@example.com", "KELVIN@EXAMPLE.COM", "\uFF4Belvin@example.com"} {
			_, err := svc.CreateAccount(ctx, auth.NewAccount{Email: e, Password: "a-good-passphrase"})
			wantCode(t, err, "conflict")
		}
		_, err := svc.CreateAccount(ctx, auth.NewAccount{Email: "kelvin@example.com\u200b", Password: "a-good-passphrase"})
		wantCode(t, err, "invalid_request")
		for _, e := range []string{"\u212Aelvin@example.com", " kelvin@EXAMPLE.com", "\uFF4Belvin@example.com"} {
			res, err := svc.Login(ctx, e, "a-good-passphrase")
			if err != nil || res.Account.ID != a.ID {
				t.Fatalf("login as %+q: %v", e, err)
			}
			if got, err := svc.AccountByEmail(ctx, e); err != nil || got == nil || got.ID != a.ID {
				t.Fatalf("AccountByEmail(%+q) = %v, %v", e, got, err)
			}
		}
		// An address that cannot exist is an unknown one: the same 401.
		_, err = svc.Login(ctx, "kelvin@example.com\u200b", "a-good-passphrase")
		wantCode(t, err, "unauthorized")
	})
}
