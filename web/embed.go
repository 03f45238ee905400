// Package web serves Beaver's single-page web app, embedded into the binary.
//
// The app is built with Node (`make web`, or `cd web && npm ci && npm run build`)
// into web/dist/app/. Only web/dist/.keep is in git, so a clean checkout
// without Node still compiles; Handler then serves a short page that says how
// to build the UI.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed all:dist
var distFS embed.FS

// appDir is where `npm run build` writes the app inside distFS.
const appDir = "dist/app"

// ContentSecurityPolicy is sent with every response of Handler. The build has
// no inline scripts or styles (Vite emits external files; Preact sets styles
// through the CSSOM, which style-src does not restrict), and the app only
// talks to its own origin. object-src 'none' is added on top of the default.
const ContentSecurityPolicy = "default-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"style-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; " +
	"base-uri 'none'; form-action 'self'"

// apiPrefixes are the API's path prefixes. The SPA uses none of them as a
// client route, and Handler answers them with a JSON 404 instead of the app in
// case it is mounted as a catch-all in front of them.
var apiPrefixes = []string{"/v1", "/auth", "/users", "/api-keys", "/account", "/admin", "/webhooks", "/health", "/status", "/metrics"}

// IsAPIPath reports whether p belongs to the API rather than to the web app.
// Case does not matter: "/ADMIN/accounts" is the API's (a 404 there), never
// the dashboard's shell.
func IsAPIPath(p string) bool {
	for _, pre := range apiPrefixes {
		if len(p) >= len(pre) && strings.EqualFold(p[:len(pre)], pre) && (len(p) == len(pre) || p[len(pre)] == '/') {
			return true
		}
	}
	return false
}

// IsNavigation reports whether r is a browser loading a page: a GET or HEAD
// outside the API whose Accept names text/html. Only navigations get the
// app's index.html for a path the build has no file for; an API client with
// a typo in its path gets a 404 instead of a 200 page.
func IsNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if IsAPIPath(r.URL.Path) {
		return false
	}
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(mt), "text/html") {
				return true
			}
		}
	}
	return false
}

// Built reports whether a built app is embedded (web/dist/app/index.html existed at compile time).
func Built() bool {
	return isBuilt(distFS)
}

func isBuilt(fsys fs.FS) bool {
	st, err := fs.Stat(fsys, appDir+"/index.html")
	return err == nil && !st.IsDir()
}

// App is the web app as a handler: files from the build, index.html for
// client routes, long-lived caching for hashed assets, no-cache for
// index.html, and security headers on every response. Without a build it
// serves a page that explains how to build the app.
type App struct {
	http.Handler
	spa *spa // nil when the app was not built
}

// Handler serves the embedded build.
func Handler() *App {
	return newHandler(distFS)
}

// Serves reports whether r is the app's to answer: the root, a file of the
// build, or a browser navigation (IsNavigation). A server mounting the app as its
// fallback answers everything else with its own 404.
func (a *App) Serves(r *http.Request) bool {
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || IsAPIPath(r.URL.Path) {
		return false
	}
	name := fileName(r)
	if name == "" || IsNavigation(r) {
		return true
	}
	if a.spa == nil {
		return false
	}
	_, ok := a.spa.files[name]
	return ok
}

// newHandler builds the handler over an FS laid out like distFS (tests pass fstest.MapFS).
func newHandler(fsys fs.FS) *App {
	if !isBuilt(fsys) {
		return &App{Handler: withHeaders(notBuilt{})}
	}
	sub, err := fs.Sub(fsys, appDir)
	if err != nil {
		return &App{Handler: withHeaders(notBuilt{})}
	}
	h, err := newSPA(sub)
	if err != nil {
		return &App{Handler: withHeaders(notBuilt{})}
	}
	return &App{Handler: withHeaders(h), spa: h}
}

// fileName is r's path as a key of spa.files ("" for the root).
func fileName(r *http.Request) string {
	return strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
}

func withHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		// no-referrer: verify/reset links carry tokens in the query string; never leak them to other sites.
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if IsAPIPath(r.URL.Path) {
			h.Set("Content-Type", "application/json")
			h.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"message":"Unknown API route.","type":"invalid_request_error","param":null,"code":"not_found"}}` + "\n"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

type file struct {
	data  []byte
	etag  string
	ctype string
}

type spa struct {
	files map[string]*file // by slash path without leading "/", e.g. "assets/index-abc.js"
	index *file
}

func newSPA(fsys fs.FS) (*spa, error) {
	s := &spa{files: map[string]*file{}}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = http.DetectContentType(data)
		}
		s.files[p] = &file{data: data, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`, ctype: ctype}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.index = s.files["index.html"]
	if s.index == nil {
		return nil, fs.ErrNotExist
	}
	s.index.ctype = "text/html; charset=utf-8"
	return s, nil
}

func (s *spa) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := fileName(r)
	if name == "" || name == "index.html" {
		s.serve(w, r, s.index, "no-cache")
		return
	}
	if f, ok := s.files[name]; ok {
		cache := "no-cache"
		if strings.HasPrefix(name, "assets/") {
			// Vite puts a content hash in every file name under assets/.
			cache = "public, max-age=31536000, immutable"
		}
		s.serve(w, r, f, cache)
		return
	}
	// A missing file (an old hashed asset, a typo'd favicon) is a 404, not the app:
	// serving HTML as JavaScript would only produce confusing errors.
	if name == "assets" || strings.HasPrefix(name, "assets/") || strings.Contains(path.Base(name), ".") {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	// Client-side route: the app's router takes over.
	s.serve(w, r, s.index, "no-cache")
}

func (s *spa) serve(w http.ResponseWriter, r *http.Request, f *file, cache string) {
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("Cache-Control", cache)
	h.Set("ETag", f.etag)
	// ServeContent answers If-None-Match (304), HEAD and Range requests.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.data))
}

// notBuilt explains how to build the app. Plain HTML without inline styles, so
// the CSP needs no exception.
type notBuilt struct{}

const notBuiltPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Beaver — web UI not built</title>
</head>
<body>
<h1>Beaver is running, but its web UI was not built into this binary</h1>
<p>The API works as usual (see <a href="/v1/models">/v1/models</a> and <a href="/health">/health</a>).</p>
<p>To include the web UI, build it with Node.js 20 or newer, then rebuild the Go binary:</p>
<pre>make web
# or, by hand:
cd web &amp;&amp; npm ci &amp;&amp; npm run build
cd .. &amp;&amp; go build ./cmd/beaver</pre>
<p>The build goes to <code>web/dist/app/</code> and is embedded with <code>go:embed</code>.</p>
</body>
</html>
`

func (notBuilt) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write([]byte(notBuiltPage))
}
