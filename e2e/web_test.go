package e2e

import (
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/beaver-gateway/beaver/internal/db"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/web"
)

// browser returns node and Chromium for the browser tests, or skips the
// test (fails it under BEAVER_TEST_REQUIRE_BROWSER=1) when either, the web
// dependencies or the built dashboard are missing.
func browser(t *testing.T) (node, chromium string) {
	t.Helper()
	need := os.Getenv("BEAVER_TEST_REQUIRE_BROWSER") == "1"
	skip := func(why string) {
		t.Helper()
		if need {
			t.Fatalf("browser test required but %s", why)
		}
		t.Skipf("!!! SKIPPING browser test: %s", why)
	}
	chromium = os.Getenv("CHROMIUM_PATH")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		skip("no Chromium at " + chromium + " (apt-get install chromium)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("node is not installed")
	}
	if _, err := os.Stat("../web/node_modules/playwright-core"); err != nil {
		skip("web dependencies are not installed (make web)")
	}
	if !web.Built() {
		skip("the dashboard is not built into this binary (make web)")
	}
	return node, chromium
}

// runScript runs one of web/e2e's playwright-core scripts against p.
func runScript(t *testing.T, node, chromium, script string, p *proc, env ...string) {
	t.Helper()
	cmd := exec.Command(node, filepath.Join("e2e", script))
	cmd.Dir = "../web"
	cmd.Env = append(append(os.Environ(), "BEAVER_URL="+p.base, "ADMIN_EMAIL="+adminEmail, "ADMIN_PASSWORD="+adminPassword,
		"CHROMIUM_PATH="+chromium), env...)
	out, err := cmd.CombinedOutput()
	t.Logf("%s output:\n%s", script, out)
	if err != nil {
		t.Fatalf("%s failed: %v", script, err)
	}
}

// TestWebDashboardInChromium drives the dashboard in headless Chromium
// (web/e2e/run.mjs, playwright-core with the Debian browser) against a real
// `beaver api` whose providers point at the fake upstream: sign up, create
// a key, admin top-up, streamed chat with the balance dropping by the shown
// cost, key rotation, sign out. Screenshots land in web/e2e/artifacts/.
func TestWebDashboardInChromium(t *testing.T) {
	node, chromium := browser(t)
	_, dbURL := testenv.OpenURL(t, db.SQLite)
	fake := httptest.NewServer(fakeupstream.New(fakeupstream.Options{ChunkDelay: 30 * time.Millisecond}))
	defer fake.Close()
	p := start(t, dbURL, t.TempDir(), fake.URL)
	runScript(t, node, chromium, "run.mjs", p)
}

// TestWebCatalogAdminInChromium drives the catalog admin pages in headless
// Chromium (web/e2e/catalog.mjs): the admin adds an OpenAI-compatible
// provider on the fake upstream, tests it, adds a model on it, previews and
// applies an import, exports, and retires a model. Then the model added in
// the browser serves a chat through the API with the key typed into the
// form, and the retired one answers model_retired.
func TestWebCatalogAdminInChromium(t *testing.T) {
	node, chromium := browser(t)
	_, dbURL := testenv.OpenURL(t, db.SQLite)
	up := fakeupstream.New(fakeupstream.Options{})
	fake := httptest.NewServer(up)
	defer fake.Close()
	p := start(t, dbURL, t.TempDir(), fake.URL)
	const provider, providerKey = "e2e-compat", "sk-e2e-provider-key-0001"
	runScript(t, node, chromium, "catalog.mjs", p, "FAKE_UPSTREAM_URL="+fake.URL, "E2E_PROVIDER="+provider,
		"E2E_PROVIDER_KEY="+providerKey)

	_, login, _ := p.call("POST", "/auth/login", "", map[string]string{"email": adminEmail, "password": adminPassword})
	admin, _ := login["access_token"].(string)
	st, acct, _ := p.call("POST", "/admin/accounts", admin, map[string]any{"email": "catalog@e2e.test", "password": "catalog-test-password-1"})
	if st != 201 {
		t.Fatalf("create account: %d %v", st, acct)
	}
	id := acct["account"].(map[string]any)["id"].(string)
	if st, r, _ := p.call("POST", "/admin/top-up", admin, map[string]any{"account_id": id, "amount_usd": "5"}); st != 200 && st != 201 {
		t.Fatalf("top-up: %d %v", st, r)
	}
	_, k, _ := p.call("POST", "/admin/api-keys", admin, map[string]any{"account_id": id, "name": "catalog"})
	key, _ := k["key"].(string)

	// By its alias too: the alias was typed into the add form.
	for _, model := range []string{provider + "/fake-chat-1", "e2e-fake"} {
		st, r, _ := p.call("POST", "/v1/chat/completions", key, map[string]any{"model": model,
			"messages": []any{map[string]string{"role": "user", "content": "hello [[words:4]]"}}})
		if st != 200 || r["model"] != provider+"/fake-chat-1" {
			t.Fatalf("chat with %s: %d %v", model, st, r)
		}
		msg, _ := r["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"].(string)
		if strings.TrimSpace(msg) == "" {
			t.Fatalf("chat with %s: empty answer %v", model, r)
		}
		reqs := up.Requests()
		last := reqs[len(reqs)-1]
		if last.Path != "/v1/chat/completions" || last.Header.Get("Authorization") != "Bearer "+providerKey ||
			last.Header.Get("X-E2E") != "catalog" || !strings.Contains(string(last.Body), `"fake-chat-1"`) {
			t.Fatalf("the fake upstream got %s %v %s", last.Path, last.Header, last.Body)
		}
	}
	st, r, _ := p.call("POST", "/v1/chat/completions", key, map[string]any{"model": provider + "/imported-a",
		"messages": []any{map[string]string{"role": "user", "content": "hello"}}})
	if e, _ := r["error"].(map[string]any); st != 404 || e["code"] != "model_retired" {
		t.Fatalf("chat with the retired model: %d %v", st, r)
	}
}

// TestWebSecurityInChromium drives the security page and the sign-in steps
// it adds (web/e2e/security.mjs) against a real `beaver api`: a passkey
// added with Chromium's virtual authenticator (DevTools protocol), TOTP
// enrolment with its QR code and recovery codes, a password sign-in that
// asks for the code, a passkey sign-in that does not, removing the passkey.
// The browser uses http://localhost:<port>: the relying party of the
// default public URL http://127.0.0.1:<port>.
func TestWebSecurityInChromium(t *testing.T) {
	node, chromium := browser(t)
	_, dbURL := testenv.OpenURL(t, db.SQLite)
	fake := httptest.NewServer(fakeupstream.New(fakeupstream.Options{}))
	defer fake.Close()
	p := start(t, dbURL, t.TempDir(), fake.URL)
	runScript(t, node, chromium, "security.mjs", p)
}

// TestWebOIDCSignInChromium signs in through the dashboard's "Sign in with
// Acme SSO" button (web/e2e/oidc.mjs) against a real `beaver api` whose
// generic OIDC provider is a local mockoidc: the provider's redirect, the
// callback, the code in the fragment exchanged for a session, the
// dashboard, and the Security page's identity list.
func TestWebOIDCSignInChromium(t *testing.T) {
	node, chromium := browser(t)
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Shutdown() }()
	m.QueueUser(&mockoidc.MockUser{Subject: "e2e-sso", Email: "sso@e2e.test", EmailVerified: true})
	t.Setenv("BEAVER_OIDC_ISSUER", m.Issuer())
	t.Setenv("BEAVER_OIDC_CLIENT_ID", m.ClientID)
	t.Setenv("BEAVER_OIDC_CLIENT_SECRET", m.ClientSecret)
	t.Setenv("BEAVER_OIDC_NAME", "Acme SSO")
	t.Setenv("BEAVER_PUBLIC_URL", "") // the callback is on the API's own address
	_, dbURL := testenv.OpenURL(t, db.SQLite)
	p := start(t, dbURL, t.TempDir(), "http://127.0.0.1:1")
	runScript(t, node, chromium, "oidc.mjs", p, "E2E_OIDC_EMAIL=sso@e2e.test")
}

// TestWebOperationsInChromium drives the live operations view
// (web/e2e/ops.mjs) against a real `beaver api` on the fake upstream: the
// requests made before show with their model and charge, and a request
// made while the page is open arrives through the event stream, without a
// reload.
func TestWebOperationsInChromium(t *testing.T) {
	node, chromium := browser(t)
	t.Setenv("BEAVER_OPS_STREAM_INTERVAL", "300ms")
	_, dbURL := testenv.OpenURL(t, db.SQLite)
	fake := httptest.NewServer(fakeupstream.New(fakeupstream.Options{}))
	defer fake.Close()
	p := start(t, dbURL, t.TempDir(), fake.URL)

	_, login, _ := p.call("POST", "/auth/login", "", map[string]string{"email": adminEmail, "password": adminPassword})
	admin, _ := login["access_token"].(string)
	st, acct, _ := p.call("POST", "/admin/accounts", admin, map[string]any{"email": "ops@e2e.test", "password": "ops-test-password-1"})
	if st != 201 {
		t.Fatalf("create account: %d %v", st, acct)
	}
	id := acct["account"].(map[string]any)["id"].(string)
	if st, r, _ := p.call("POST", "/admin/top-up", admin, map[string]any{"account_id": id, "amount_usd": "5"}); st != 200 && st != 201 {
		t.Fatalf("top-up: %d %v", st, r)
	}
	_, k, _ := p.call("POST", "/admin/api-keys", admin, map[string]any{"account_id": id, "name": "ops"})
	key, _ := k["key"].(string)
	for range 2 {
		if st, r, _ := p.call("POST", "/v1/chat/completions", key, map[string]any{"model": "openai/gpt-4o-mini",
			"messages": []any{map[string]string{"role": "user", "content": "hello [[words:4]]"}}}); st != 200 {
			t.Fatalf("chat: %d %v", st, r)
		}
	}
	runScript(t, node, chromium, "ops.mjs", p, "E2E_KEY="+key, "E2E_REQUESTS=2")
}
