package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func do(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func checkSecurityHeaders(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	h := rec.Header()
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{
		"default-src 'self'", "connect-src 'self'", "img-src 'self' data:", "style-src 'self'",
		"script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'",
	} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP must not allow unsafe-*: %q", csp)
	}
	for k, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

var builtFS = fstest.MapFS{
	"dist/.keep":                       {Data: []byte{}},
	"dist/app/index.html":              {Data: []byte(`<!doctype html><html><head><script type="module" src="/assets/index-abc123.js"></script></head><body><div id="app"></div></body></html>`)},
	"dist/app/assets/index-abc123.js":  {Data: []byte(`console.log("beaver")`)},
	"dist/app/assets/index-def456.css": {Data: []byte(`body{margin:0}`)},
	"dist/app/favicon.svg":             {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"></svg>`)},
}

func TestNotBuiltServesInstructions(t *testing.T) {
	h := newHandler(fstest.MapFS{"dist/.keep": {Data: []byte{}}})
	for _, p := range []string{"/", "/dashboard", "/reset-password?token=x"} {
		rec := do(t, h, http.MethodGet, p, nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d", p, rec.Code)
		}
		body := rec.Body.String()
		if !strings.Contains(body, "npm ci && npm run build") && !strings.Contains(body, "npm ci &amp;&amp; npm run build") {
			t.Errorf("%s: fallback page does not say how to build: %s", p, body)
		}
		if !strings.Contains(body, "make web") {
			t.Errorf("%s: fallback page does not mention make web", p)
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("%s: content type %q", p, ct)
		}
		if strings.Contains(body, "<style") || strings.Contains(body, "style=") || strings.Contains(body, "<script") {
			t.Errorf("fallback page must not need CSP exceptions")
		}
		checkSecurityHeaders(t, rec)
	}
}

func TestEmbeddedStateConsistent(t *testing.T) {
	// Whatever the checkout has (built or not), Handler must work and Built must agree with it.
	rec := do(t, Handler(), http.MethodGet, "/", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	checkSecurityHeaders(t, rec)
	notBuilt := strings.Contains(rec.Body.String(), "was not built")
	if Built() == notBuilt {
		t.Errorf("Built() = %v but the fallback page shown = %v", Built(), notBuilt)
	}
}

func TestBuiltIndexAndSPAFallback(t *testing.T) {
	h := newHandler(builtFS)
	for _, p := range []string{"/", "/index.html", "/dashboard", "/keys", "/manage/accounts/acc_123", "/verify-email?token=abc", "/reset-password?token=x"} {
		rec := do(t, h, http.MethodGet, p, nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d", p, rec.Code)
		}
		if !strings.Contains(rec.Body.String(), `<div id="app">`) {
			t.Errorf("%s: not the app's index.html: %q", p, rec.Body.String())
		}
		if cc := rec.Header().Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("%s: Cache-Control %q, want no-cache", p, cc)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", p, ct)
		}
		checkSecurityHeaders(t, rec)
	}
}

func TestBuiltAssets(t *testing.T) {
	h := newHandler(builtFS)
	rec := do(t, h, http.MethodGet, "/assets/index-abc123.js", nil)
	if rec.Code != http.StatusOK || rec.Body.String() != `console.log("beaver")` {
		t.Fatalf("asset: %d %q", rec.Code, rec.Body.String())
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
		t.Errorf("asset Cache-Control %q", cc)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.Contains(ct, "javascript") {
		t.Errorf("asset Content-Type %q", ct)
	}
	checkSecurityHeaders(t, rec)

	css := do(t, h, http.MethodGet, "/assets/index-def456.css", nil)
	if ct := css.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/css") {
		t.Errorf("css Content-Type %q", ct)
	}

	// Revalidation with the ETag.
	etag := rec.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if rec2 := do(t, h, http.MethodGet, "/assets/index-abc123.js", map[string]string{"If-None-Match": etag}); rec2.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", rec2.Code)
	}

	// Non-hashed public files are revalidated.
	fav := do(t, h, http.MethodGet, "/favicon.svg", nil)
	if fav.Code != http.StatusOK || fav.Header().Get("Cache-Control") != "no-cache" || fav.Header().Get("Content-Type") != "image/svg+xml" {
		t.Errorf("favicon: %d %q %q", fav.Code, fav.Header().Get("Cache-Control"), fav.Header().Get("Content-Type"))
	}

	// Missing assets are 404s, not the app.
	for _, p := range []string{"/assets/index-old999.js", "/robots.txt", "/assets/"} {
		miss := do(t, h, http.MethodGet, p, nil)
		if miss.Code != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", p, miss.Code)
		}
		checkSecurityHeaders(t, miss)
	}

	// HEAD works and has no body.
	head := do(t, h, http.MethodHead, "/", nil)
	if head.Code != http.StatusOK || head.Body.Len() != 0 {
		t.Errorf("HEAD /: %d, %d bytes", head.Code, head.Body.Len())
	}
}

func TestMethodsAndAPIPaths(t *testing.T) {
	for name, h := range map[string]http.Handler{"built": newHandler(builtFS), "not built": newHandler(fstest.MapFS{})} {
		rec := do(t, h, http.MethodPost, "/dashboard", nil)
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: POST: %d allow=%q", name, rec.Code, rec.Header().Get("Allow"))
		}
		for _, p := range []string{"/v1/nope", "/admin/accounts", "/auth", "/api-keys/x", "/metrics"} {
			rec := do(t, h, http.MethodGet, p, nil)
			if rec.Code != http.StatusNotFound || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
				t.Errorf("%s: %s: %d %q", name, p, rec.Code, rec.Header().Get("Content-Type"))
			}
			body, _ := io.ReadAll(rec.Body)
			if !strings.Contains(string(body), `"code":"not_found"`) {
				t.Errorf("%s: %s: body %s", name, p, body)
			}
		}
	}
	// Client routes that merely start like an API prefix are not API paths.
	for _, p := range []string{"/accounts", "/v1x", "/healthy", "/keys", "/manage/accounts"} {
		if IsAPIPath(p) {
			t.Errorf("IsAPIPath(%q) = true", p)
		}
	}
	// The API's paths are the API's in any case.
	for _, p := range []string{"/ADMIN/accounts", "/Admin", "/V1/chat/completions", "/METRICS"} {
		if !IsAPIPath(p) {
			t.Errorf("IsAPIPath(%q) = false", p)
		}
	}
}

// Serves tells the API's fallback which unknown paths are the app's: the
// root, files of the build, and browser navigations outside the API.
func TestServes(t *testing.T) {
	req := func(method, p, accept string) *http.Request {
		r := httptest.NewRequest(method, p, nil)
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		return r
	}
	const browser = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"
	built, bare := newHandler(builtFS), newHandler(fstest.MapFS{})
	for _, c := range []struct {
		app  *App
		r    *http.Request
		want bool
	}{
		{built, req("GET", "/", ""), true},
		{bare, req("GET", "/", ""), true},
		{built, req("GET", "/dashboard", browser), true},
		{built, req("HEAD", "/dashboard", "TEXT/HTML"), true},
		{bare, req("GET", "/dashboard", browser), true},
		{built, req("GET", "/dashboard", ""), false},
		{built, req("GET", "/dashboard", "application/json"), false},
		{built, req("GET", "/dashboard", "*/*"), false},
		{built, req("POST", "/dashboard", browser), false},
		{built, req("GET", "/index.html", ""), true},
		{built, req("GET", "/ADMIN/accounts", browser), false},
		{built, req("GET", "/v1/nope", browser), false},
	} {
		if got := c.app.Serves(c.r); got != c.want {
			t.Errorf("Serves(%s %s, Accept %q) = %v, want %v", c.r.Method, c.r.URL.Path, c.r.Header.Get("Accept"), got, c.want)
		}
	}
	// A file of the build is served to anyone.
	for name := range builtFS {
		if p, ok := strings.CutPrefix(name, appDir+"/"); ok && !strings.HasSuffix(p, "/") {
			if !built.Serves(req("GET", "/"+p, "")) {
				t.Errorf("build file %s not served", p)
			}
		}
	}
}

func TestPathTraversalStaysInside(t *testing.T) {
	h := newHandler(builtFS)
	for _, p := range []string{"/../dist/.keep", "/assets/../../dist/.keep", "/%2e%2e/embed.go"} {
		rec := do(t, h, http.MethodGet, p, nil)
		if strings.Contains(rec.Body.String(), "package web") {
			t.Errorf("%s leaked a file", p)
		}
	}
}
