package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/beaver-gateway/beaver/api"
	"github.com/beaver-gateway/beaver/internal/audit"
	"github.com/beaver-gateway/beaver/internal/config"
	fakegithub "github.com/beaver-gateway/beaver/internal/fakes/github"
	"github.com/beaver-gateway/beaver/internal/idp"
	"github.com/beaver-gateway/beaver/internal/testenv"
)

// idpEnv is a harness with all three providers on: generic OIDC and
// "Google" (the same OIDC path under another issuer) on two local
// mockoidc servers, GitHub on the fake; and a clock for the flows' and
// codes' lifetimes.
type idpEnv struct {
	*harness
	oidc, google *mockoidc.MockOIDC
	gh           *fakegithub.Server
	clock        *testenv.Clock
	browser      *http.Client // follows no redirects, keeps no cookies: the test carries them
}

func newIdPEnv(t *testing.T, dialect string) *idpEnv {
	t.Helper()
	e := &idpEnv{gh: fakegithub.New(t), clock: testenv.NewClock()}
	e.clock.Advance(time.Now().UTC().Sub(e.clock.Now())) // now, but moved only by the test
	for _, m := range []**mockoidc.MockOIDC{&e.oidc, &e.google} {
		srv, err := mockoidc.Run()
		if err != nil {
			t.Fatalf("mockoidc: %v", err)
		}
		t.Cleanup(func() { _ = srv.Shutdown() })
		*m = srv
	}
	e.harness = newHarness(t, dialect, harnessOpts{
		Config: func(c *config.Config) {
			c.OIDC = config.OAuthClient{ClientID: e.oidc.ClientID, ClientSecret: e.oidc.ClientSecret, Issuer: e.oidc.Issuer(), Name: "Acme SSO"}
			c.OAuthGoogle = config.OAuthClient{ClientID: e.google.ClientID, ClientSecret: e.google.ClientSecret, Issuer: e.google.Issuer(), Name: "Google"}
			c.OAuthGitHub = config.OAuthClient{ClientID: e.gh.ClientID, ClientSecret: e.gh.ClientSecret, Issuer: e.gh.URL, APIURL: e.gh.URL, Name: "GitHub"}
		},
		Deps: func(t *testing.T, h *harness, d *api.Deps) {
			d.IdP = idp.New(d.Config, d.DB, d.Auth, d.Log)
			d.IdP.Now = e.clock.Now
		},
	})
	e.browser = &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return e
}

// flow drives a browser through one flow: start (or link, with a session
// token), the provider's authorization (its URL first passed through
// tamper), and the callback (with the cookie from cookieFrom, normally the
// start's own). It returns the fragment of the dashboard URL it ends on.
type flowOpts struct {
	linkToken  string
	tamper     func(string) string
	cookieFrom func(own *http.Cookie) *http.Cookie
	callback   func(string) string // rewrites the callback URL
}

func (e *idpEnv) flow(provider string, o flowOpts) url.Values {
	e.t.Helper()
	var authURL string
	var cookie *http.Cookie
	if o.linkToken != "" {
		r := e.do("POST", "/auth/oauth/"+provider+"/link", o.linkToken, nil).want(200)
		authURL = r.str("url")
		cookie = flowCookie(e.t, r.Header)
	} else {
		res := e.get(e.URL+"/auth/oauth/"+provider+"/start", nil)
		if res.StatusCode != http.StatusFound {
			e.t.Fatalf("start: status %d", res.StatusCode)
		}
		authURL = res.Header.Get("Location")
		cookie = flowCookie(e.t, res.Header)
	}
	if o.tamper != nil {
		authURL = o.tamper(authURL)
	}
	res := e.get(authURL, nil)
	if res.StatusCode != http.StatusFound {
		e.t.Fatalf("provider authorize: status %d", res.StatusCode)
	}
	cb := res.Header.Get("Location")
	if !strings.HasPrefix(cb, testPublicURL+"/auth/oauth/"+provider+"/callback?") {
		e.t.Fatalf("provider sent the browser to %q", cb)
	}
	cb = e.URL + strings.TrimPrefix(cb, testPublicURL)
	if o.callback != nil {
		cb = o.callback(cb)
	}
	if o.cookieFrom != nil {
		cookie = o.cookieFrom(cookie)
	}
	res = e.get(cb, cookie)
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(loc, testPublicURL+"/oauth/done#") {
		e.t.Fatalf("callback: status %d, location %q", res.StatusCode, loc)
	}
	if c := flowCookie(e.t, res.Header); c.MaxAge >= 0 {
		e.t.Fatalf("callback left the flow cookie: %+v", c)
	}
	frag, err := url.ParseQuery(strings.SplitN(loc, "#", 2)[1])
	if err != nil {
		e.t.Fatalf("fragment: %v", err)
	}
	return frag
}

func (e *idpEnv) get(u string, cookie *http.Cookie) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		e.t.Fatalf("request: %v", err)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	res, err := e.browser.Do(req)
	if err != nil {
		e.t.Fatalf("GET %s: %v", u, err)
	}
	res.Body.Close()
	return res
}

func flowCookie(t *testing.T, h http.Header) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == idp.CookieName {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", idp.CookieName, h.Values("Set-Cookie"))
	return nil
}

// signIn exchanges a flow's code for the usual login answer.
func (e *idpEnv) signIn(frag url.Values) *resp {
	e.t.Helper()
	if frag.Get("code") == "" {
		e.t.Fatalf("no code in the fragment: %v", frag)
	}
	return e.do("POST", "/auth/oauth/exchange", "", map[string]string{"code": frag.Get("code")}).want(200)
}

func wantFlowError(t *testing.T, frag url.Values, code string) {
	t.Helper()
	if frag.Get("error") != code || frag.Get("message") == "" || frag.Get("code") != "" {
		t.Fatalf("fragment %v, want error %s with a message and no code", frag, code)
	}
}

func TestOAuthProvidersAndStart(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		e := newIdPEnv(t, dialect)
		r := e.do("GET", "/auth/oauth/providers", "", nil).want(200)
		var got []string
		for _, p := range r.list("data") {
			got = append(got, p.(map[string]any)["id"].(string))
		}
		if strings.Join(got, ",") != "google,github,oidc" {
			t.Fatalf("providers %v", got)
		}
		e.do("GET", "/auth/oauth/facebook/start", "", nil).wantError(404, "not_found")

		res := e.get(e.URL+"/auth/oauth/oidc/start", nil)
		u, _ := url.Parse(res.Header.Get("Location"))
		q := u.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" ||
			q.Get("redirect_uri") != testPublicURL+"/auth/oauth/oidc/callback" || !strings.Contains(q.Get("scope"), "email") {
			t.Fatalf("authorization URL %s", u)
		}
		c := flowCookie(t, res.Header)
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/auth/oauth/" || c.MaxAge != 600 ||
			strings.Contains(c.Value, q.Get("state")) {
			t.Fatalf("flow cookie %+v", c)
		}
	})
}

func TestOAuthOIDCSignInCreatesVerifiedAccountAndCodeIsSingleUse(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		e := newIdPEnv(t, dialect)
		e.oidc.QueueUser(&mockoidc.MockUser{Subject: "sub-ada", Email: "Ada@Example.com", EmailVerified: true})
		frag := e.flow("oidc", flowOpts{})
		r := e.signIn(frag)
		if r.str("account.email") != "Ada@Example.com" || r.get("account.email_verified") != true || r.str("token_type") != "Bearer" {
			t.Fatalf("login answer %s", r.Raw)
		}
		tok := r.str("access_token")
		e.do("GET", "/auth/me", tok, nil).want(200)
		// The code is single use.
		e.do("POST", "/auth/oauth/exchange", "", map[string]string{"code": frag.Get("code")}).wantError(400, "invalid_token")
		e.do("POST", "/auth/oauth/exchange", "", map[string]string{"code": "boc_made-up-code-000000"}).wantError(400, "invalid_token")

		ids := e.do("GET", "/auth/identities", tok, nil).want(200)
		if len(ids.list("data")) != 1 || ids.get("has_password") != false || ids.str("data.0.provider") != "oidc" {
			t.Fatalf("identities %s", ids.Raw)
		}
		// The same subject signs in to the same account, even with a changed address.
		e.oidc.QueueUser(&mockoidc.MockUser{Subject: "sub-ada", Email: "ada.new@example.com", EmailVerified: false})
		again := e.signIn(e.flow("oidc", flowOpts{}))
		if again.str("account.id") != r.str("account.id") {
			t.Fatalf("second sign-in reached %s, want %s", again.str("account.id"), r.str("account.id"))
		}
		// Password sign-in to an account without a password fails like a wrong one.
		e.do("POST", "/auth/login", "", map[string]string{"email": "ada@example.com", "password": ""}).wantError(401, "unauthorized")
	})
}

func TestOAuthCodeExpires(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		e := newIdPEnv(t, dialect)
		e.oidc.QueueUser(&mockoidc.MockUser{Subject: "sub-late", Email: "late@example.com", EmailVerified: true})
		frag := e.flow("oidc", flowOpts{})
		e.clock.Advance(idp.CodeTTL)
		e.do("POST", "/auth/oauth/exchange", "", map[string]string{"code": frag.Get("code")}).wantError(400, "invalid_token")
	})
}

func TestOAuthHostileCallbacks(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		e := newIdPEnv(t, dialect)
		replace := func(param, value string) func(string) string {
			return func(s string) string {
				u, _ := url.Parse(s)
				q := u.Query()
				q.Set(param, value)
				u.RawQuery = q.Encode()
				return u.String()
			}
		}
		t.Run("state mismatch", func(t *testing.T) {
			wantFlowError(t, e.flow("oidc", flowOpts{callback: replace("state", "forged-state")}), "invalid_state")
		})
		t.Run("cookie of another flow", func(t *testing.T) {
			other := flowCookie(t, e.get(e.URL+"/auth/oauth/oidc/start", nil).Header)
			wantFlowError(t, e.flow("oidc", flowOpts{cookieFrom: func(*http.Cookie) *http.Cookie { return other }}), "invalid_state")
		})
		t.Run("no cookie", func(t *testing.T) {
			wantFlowError(t, e.flow("oidc", flowOpts{cookieFrom: func(*http.Cookie) *http.Cookie { return nil }}), "invalid_state")
		})
		t.Run("forged cookie", func(t *testing.T) {
			wantFlowError(t, e.flow("oidc", flowOpts{cookieFrom: func(c *http.Cookie) *http.Cookie {
				return &http.Cookie{Name: c.Name, Value: c.Value[:len(c.Value)-4] + "AAAA"}
			}}), "invalid_state")
		})
		t.Run("flow expired", func(t *testing.T) {
			wantFlowError(t, e.flow("oidc", flowOpts{cookieFrom: func(c *http.Cookie) *http.Cookie {
				e.clock.Advance(idp.FlowTTL)
				return c
			}}), "invalid_state")
		})
		t.Run("nonce mismatch", func(t *testing.T) {
			wantFlowError(t, e.flow("oidc", flowOpts{tamper: replace("nonce", "someone-elses-nonce")}), "invalid_nonce")
		})
		t.Run("PKCE verifier checked", func(t *testing.T) {
			// A challenge that is not our verifier's: the provider refuses our verifier.
			wantFlowError(t, e.flow("oidc", flowOpts{tamper: replace("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")}), "invalid_grant")
			wantFlowError(t, e.flow("github", flowOpts{tamper: func(s string) string {
				e.gh.SignInNext(&fakegithub.User{ID: 1, Login: "x", Emails: []fakegithub.Email{{Email: "x@example.com", Primary: true, Verified: true}}})
				return replace("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")(s)
			}}), "invalid_grant")
		})
		t.Run("provider declined", func(t *testing.T) {
			wantFlowError(t, e.flow("oidc", flowOpts{callback: func(s string) string {
				u, _ := url.Parse(s)
				q := u.Query()
				q.Del("code")
				q.Set("error", "access_denied")
				u.RawQuery = q.Encode()
				return u.String()
			}}), "access_denied")
		})
		if n := e.scalar("SELECT COUNT(*) FROM accounts WHERE email_lower <> ?", testAdminEmail); n != 0 {
			t.Fatalf("hostile callbacks made %d accounts", n)
		}
	})
}

func TestOAuthEmailMatchingExistingAccount(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		e := newIdPEnv(t, dialect)
		// An account whose address is verified.
		id := e.register("grace@example.com", testPassword)
		if err := e.DB.Exec("UPDATE accounts SET email_verified = ? WHERE id = ?", true, id).Error; err != nil {
			t.Fatal(err)
		}
		// An unverified identity address never signs in to it, nor links.
		e.oidc.QueueUser(&mockoidc.MockUser{Subject: "mallory", Email: "GRACE@example.com", EmailVerified: false})
		wantFlowError(t, e.flow("oidc", flowOpts{}), "account_exists")
		if n := e.scalar("SELECT COUNT(*) FROM identities"); n != 0 {
			t.Fatalf("an unverified address linked %d identities", n)
		}
		// GitHub's emails API: a verified but secondary address is used over an unverified primary.
		e.gh.SignInNext(&fakegithub.User{ID: 4242, Login: "grace", Emails: []fakegithub.Email{
			{Email: "other@example.com", Primary: true, Verified: false},
			{Email: "grace@example.com", Primary: false, Verified: true}}})
		r := e.signIn(e.flow("github", flowOpts{}))
		if r.str("account.id") != id {
			t.Fatalf("verified GitHub address signed in to %s, want %s", r.str("account.id"), id)
		}
		ids := e.do("GET", "/auth/identities", r.str("access_token"), nil).want(200)
		if len(ids.list("data")) != 1 || ids.str("data.0.provider") != "github" || ids.get("has_password") != true {
			t.Fatalf("identities %s", ids.Raw)
		}
		// Google (OIDC under another issuer), verified: links too.
		e.google.QueueUser(&mockoidc.MockUser{Subject: "g-grace", Email: "grace@example.com", EmailVerified: true})
		if g := e.signIn(e.flow("google", flowOpts{})); g.str("account.id") != id {
			t.Fatalf("Google reached %s", g.str("account.id"))
		}

		// An account that never verified its address is not handed over, even to a verified identity.
		e.register("pre@example.com", testPassword)
		e.oidc.QueueUser(&mockoidc.MockUser{Subject: "pre-owner", Email: "pre@example.com", EmailVerified: true})
		wantFlowError(t, e.flow("oidc", flowOpts{}), "account_exists")

		// No account with the address: a new one, unverified as the provider said, and a verification email.
		e.gh.SignInNext(&fakegithub.User{ID: 7, Login: "newbie", Emails: []fakegithub.Email{{Email: "newbie@example.com", Primary: true, Verified: false}}})
		n := e.signIn(e.flow("github", flowOpts{}))
		if n.get("account.email_verified") != false || n.str("account.email") != "newbie@example.com" || n.str("account.name") != "newbie" {
			t.Fatalf("new account %s", n.Raw)
		}
		e.mailToken("newbie@example.com", "/verify-email", 1)
	})
}

func TestOAuthLinkAndUnlink(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		e := newIdPEnv(t, dialect)
		u := e.newUser()
		// Linking needs a session; the identity's address need not match.
		e.do("POST", "/auth/oauth/github/link", "", nil).wantError(401, "unauthorized")
		_, key := e.createKey(u, map[string]string{"name": "k"})
		e.do("POST", "/auth/oauth/github/link", key, nil).wantError(403, "forbidden")
		e.gh.SignInNext(&fakegithub.User{ID: 99, Login: "octo", Emails: []fakegithub.Email{{Email: "octo@elsewhere.example", Primary: true, Verified: false}}})
		frag := e.flow("github", flowOpts{linkToken: u.Token})
		if frag.Get("linked") != "github" || frag.Get("code") != "" {
			t.Fatalf("link fragment %v", frag)
		}
		ids := e.do("GET", "/auth/identities", u.Token, nil).want(200)
		if len(ids.list("data")) != 1 {
			t.Fatalf("identities %s", ids.Raw)
		}
		ghID := ids.str("data.0.id")
		// The linked identity now signs in to the account.
		e.gh.SignInNext(&fakegithub.User{ID: 99, Login: "octo"})
		if r := e.signIn(e.flow("github", flowOpts{})); r.str("account.id") != u.ID {
			t.Fatalf("linked identity signed in to %s", r.str("account.id"))
		}
		// Another account cannot link the same identity.
		v := e.newUser()
		e.gh.SignInNext(&fakegithub.User{ID: 99, Login: "octo"})
		wantFlowError(t, e.flow("github", flowOpts{linkToken: v.Token}), "identity_in_use")
		// A link whose session ended meanwhile is refused.
		e.oidc.QueueUser(&mockoidc.MockUser{Subject: "late-link", Email: "l@example.com", EmailVerified: true})
		frag = e.flow("oidc", flowOpts{linkToken: v.Token, tamper: func(s string) string {
			e.do("POST", "/auth/logout", v.Token, nil).want(204)
			return s
		}})
		wantFlowError(t, frag, "unauthorized")

		// Unlinking: someone else's identity is not found; with a password left, it goes.
		e.do("DELETE", "/auth/identities/"+ghID, e.Admin.Token, nil).wantError(404, "not_found")
		e.do("DELETE", "/auth/identities/"+ghID, u.Token, nil).want(204)
		e.do("DELETE", "/auth/identities/"+ghID, u.Token, nil).wantError(404, "not_found")

		// An account made by a provider has no password: its last identity stays.
		e.oidc.QueueUser(&mockoidc.MockUser{Subject: "only-sso", Email: "sso@example.com", EmailVerified: true})
		s := e.signIn(e.flow("oidc", flowOpts{}))
		tok := s.str("access_token")
		e.gh.SignInNext(&fakegithub.User{ID: 100, Login: "sso"})
		if f := e.flow("github", flowOpts{linkToken: tok}); f.Get("linked") != "github" {
			t.Fatalf("link %v", f)
		}
		list := e.do("GET", "/auth/identities", tok, nil).want(200).list("data")
		if len(list) != 2 {
			t.Fatalf("identities %v", list)
		}
		first := list[0].(map[string]any)["id"].(string)
		second := list[1].(map[string]any)["id"].(string)
		e.do("DELETE", "/auth/identities/"+first, tok, nil).want(204)
		r := e.do("DELETE", "/auth/identities/"+second, tok, nil).wantError(409, "last_sign_in_method")
		if !strings.Contains(r.str("error.message"), "only way to sign in") {
			t.Fatalf("message %s", r.Raw)
		}
		if len(e.do("GET", "/auth/identities", tok, nil).want(200).list("data")) != 1 {
			t.Fatal("the last identity was removed")
		}
	})
}

// The identities answer carries no secret of the provider.
func TestOAuthIdentityViewShape(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		e := newIdPEnv(t, dialect)
		e.oidc.QueueUser(&mockoidc.MockUser{Subject: "shape", Email: "shape@example.com", EmailVerified: true})
		tok := e.signIn(e.flow("oidc", flowOpts{})).str("access_token")
		r := e.do("GET", "/auth/identities", tok, nil).want(200)
		var body struct {
			Data []map[string]any `json:"data"`
		}
		if err := json.Unmarshal(r.Raw, &body); err != nil || len(body.Data) != 1 {
			t.Fatalf("body %s", r.Raw)
		}
		for _, k := range []string{"id", "provider", "email", "email_verified", "created_at", "last_used_at"} {
			if _, ok := body.Data[0][k]; !ok {
				t.Fatalf("identity lacks %s: %v", k, body.Data[0])
			}
		}
		if _, ok := body.Data[0]["subject"]; ok {
			t.Fatalf("identity shows its subject: %v", body.Data[0])
		}
	})
}

// Two unlinks racing for an account's last two identities (no password):
// one goes, the other is refused, and one way in remains.
func TestOAuthConcurrentUnlinkKeepsOneWayIn(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		e := newIdPEnv(t, dialect)
		e.oidc.QueueUser(&mockoidc.MockUser{Subject: "race", Email: "race@example.com", EmailVerified: true})
		tok := e.signIn(e.flow("oidc", flowOpts{})).str("access_token")
		e.gh.SignInNext(&fakegithub.User{ID: 555, Login: "race"})
		if f := e.flow("github", flowOpts{linkToken: tok}); f.Get("linked") != "github" {
			t.Fatalf("link %v", f)
		}
		list := e.do("GET", "/auth/identities", tok, nil).want(200).list("data")
		statuses := make(chan int, len(list))
		for _, it := range list {
			id := it.(map[string]any)["id"].(string)
			go func() {
				req, _ := http.NewRequest("DELETE", e.URL+"/auth/identities/"+id, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				res, err := e.Client.Do(req)
				if err != nil {
					statuses <- 0
					return
				}
				res.Body.Close()
				statuses <- res.StatusCode
			}()
		}
		got := map[int]int{}
		for range list {
			got[<-statuses]++
		}
		if got[204] != 1 || got[409] != 1 {
			t.Fatalf("statuses %v, want one 204 and one 409", got)
		}
		if n := len(e.do("GET", "/auth/identities", tok, nil).want(200).list("data")); n != 1 {
			t.Fatalf("%d identities left", n)
		}
	})
}

// TestOAuthSignInIsAFirstFactor: an identity provider proves who signs in
// as a password does. An account with two-factor on gets the challenge and
// no tokens, and its code completes the sign-in; a passkey counts as a way
// in, so the identity can be unlinked while one remains, and the last
// passkey of an account without a password or identity cannot be removed.
func TestOAuthSignInIsAFirstFactor(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		e := newIdPEnv(t, dialect)
		now := freezeClock(e.harness)
		e.oidc.QueueUser(&mockoidc.MockUser{Subject: "sub-mfa", Email: "mfa@example.com", EmailVerified: true})
		first := e.signIn(e.flow("oidc", flowOpts{}))
		u := &user{ID: first.str("account.id"), Email: "mfa@example.com", Token: first.str("access_token")}
		secret, _ := enable2FA(e.harness, u, *now)

		e.oidc.QueueUser(&mockoidc.MockUser{Subject: "sub-mfa", Email: "mfa@example.com", EmailVerified: true})
		r := e.signIn(e.flow("oidc", flowOpts{}))
		if r.get("mfa_required") != true || r.get("access_token") != nil || r.str("challenge_token") == "" {
			t.Fatalf("provider sign-in with 2FA on answered %s", r.Raw)
		}
		*now = now.Add(30 * time.Second) // the confirm spent this step's code
		done := e.do("POST", "/auth/login/2fa", "", map[string]string{"challenge_token": r.str("challenge_token"),
			"code": totpCode(t, secret, *now)}).want(200)
		if done.str("account.id") != u.ID || done.str("access_token") == "" {
			t.Fatalf("second step answered %s", done.Raw)
		}

		// A passkey is a way in: the only identity can go, then the only passkey cannot.
		dev := &softAuthn{t: t, rpID: "beaver.test", origin: testPublicURL}
		b := e.do("POST", "/auth/passkeys/register/begin", u.Token, nil).want(200)
		_, cred := dev.create(b.get("options").(map[string]any))
		pk := e.do("POST", "/auth/passkeys/register/finish", u.Token,
			map[string]any{"ceremony_token": b.str("ceremony_token"), "credential": cred, "name": "laptop"}).want(201)
		ids := e.do("GET", "/auth/identities", u.Token, nil).want(200)
		e.do("DELETE", "/auth/identities/"+ids.str("data.0.id"), u.Token, nil).want(204)
		e.do("DELETE", "/auth/passkeys/"+pk.str("id"), u.Token, nil).wantError(409, "last_sign_in_method")
		if n := len(e.do("GET", "/auth/passkeys", u.Token, nil).want(200).list("data")); n != 1 {
			t.Fatalf("passkeys after the refused removal: %d", n)
		}
		// Each act is in the account's audit log.
		seen := map[string]bool{}
		for _, x := range e.do("GET", "/account/audit", u.Token, nil).want(200).list("data") {
			seen[x.(map[string]any)["action"].(string)] = true
		}
		for _, a := range []string{audit.ActionIdentityLinked, audit.Action2FAEnabled, audit.ActionLoginSucceeded,
			audit.ActionPasskeyAdded, audit.ActionIdentityUnlinked} {
			if !seen[a] {
				t.Errorf("no %s entry in the audit log: %v", a, seen)
			}
		}
	})
}
