package api_test

// The HTTP test harness: a real router over a fresh migrated database
// (SQLite, and PostgreSQL when it answers), a running httptest server, a
// signed-in bootstrap admin and helpers to call the API. Every test runs
// against both databases through forEachDB.
//
// Extend it through harnessOpts: Config tweaks the configuration, Bus picks
// the invalidation bus, and Deps sets what the API needs beyond auth (e.g.
// Providers, Catalog, Billing, Workflows) before api.New is called.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/api"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/mail"
	"github.com/beaver-gateway/beaver/internal/ratelimit"
	"github.com/beaver-gateway/beaver/internal/testenv"
)

// forEachDB runs body once per database dialect, as subtests.
func forEachDB(t *testing.T, body func(t *testing.T, dialect string)) {
	t.Helper()
	for _, d := range testenv.Dialects(t) {
		t.Run(testenv.Name(d), func(t *testing.T) { body(t, d) })
	}
}

// harnessOpts customises newHarness. The zero value is a working setup.
type harnessOpts struct {
	// Config runs after the test defaults are set (cheap argon2, a high auth
	// limit, a public URL) and before anything is wired.
	Config func(c *config.Config)
	// Bus returns the invalidation bus for a replica; default bus.NewLocal().
	Bus func(t *testing.T, d *db.DB, url string) bus.Bus
	// Deps runs just before api.New: set Providers, Catalog, Billing,
	// Workflows... The harness fills Config, DB, Auth, Ledger, Log,
	// Mailer and Limiter.
	Deps func(t *testing.T, h *harness, d *api.Deps)
}

// harness is one API replica under test, plus shortcuts.
type harness struct {
	t       *testing.T
	opts    harnessOpts
	Dialect string
	DB      *db.DB
	DBURL   string
	Cfg     *config.Config
	Bus     bus.Bus
	Auth    *auth.Service
	Ledger  *billing.Ledger
	Limiter *ratelimit.Limiter
	Mail    *mail.Recorder
	Log     *slog.Logger
	Server  *api.Server
	URL     string // the running server's base URL
	Client  *http.Client
	Admin   *user // the bootstrap admin, signed in
}

// user is an account and, when signed in, its session tokens.
type user struct {
	ID, Email, Password string
	Token, Refresh      string
}

const (
	testSecret        = "test-secret-0123456789abcdef"
	testAdminEmail    = "admin@beaver.test"
	testAdminPassword = "admin-password-for-tests"
	testPassword      = "correct-horse-battery-9"
	testPublicURL     = "http://beaver.test"
)

func testConfig(t *testing.T, o harnessOpts) *config.Config {
	t.Helper()
	cfg, err := config.FromLookup(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.Secret = testSecret
	cfg.ArgonMemoryKiB, cfg.ArgonTime, cfg.ArgonThreads = 1024, 1, 1
	cfg.AuthLimit = 1000 // tests that exercise the throttle lower it
	cfg.PublicURL = testPublicURL
	cfg.AdminEmail, cfg.AdminPassword = testAdminEmail, testAdminPassword
	if o.Config != nil {
		o.Config(cfg)
	}
	return cfg
}

func testLogger() *slog.Logger {
	if os.Getenv("BEAVER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newHarness starts one API replica on a fresh database of dialect, with the
// bootstrap admin signed in.
func newHarness(t *testing.T, dialect string, opts ...harnessOpts) *harness {
	t.Helper()
	var o harnessOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	d, url := testenv.OpenURL(t, dialect)
	h := &harness{t: t, opts: o, Dialect: dialect, DB: d, DBURL: url, Cfg: testConfig(t, o),
		Mail: &mail.Recorder{}, Log: testLogger()}
	h.start(d)
	created, _, err := auth.EnsureAdmin(context.Background(), h.Auth, h.Cfg.AdminEmail, h.Cfg.AdminPassword)
	if err != nil || !created {
		t.Fatalf("bootstrap admin: created=%v err=%v", created, err)
	}
	h.Admin = h.login(h.Cfg.AdminEmail, h.Cfg.AdminPassword)
	return h
}

// start wires a replica over d and serves it.
func (h *harness) start(d *db.DB) {
	t := h.t
	h.DB = d
	if h.opts.Bus != nil {
		h.Bus = h.opts.Bus(t, d, h.DBURL)
	} else {
		h.Bus = bus.NewLocal()
	}
	h.wire()
}

// wire builds the service graph on h.DB and h.Bus and serves it.
func (h *harness) wire() {
	t, cfg := h.t, h.Cfg
	h.Auth = auth.NewService(h.DB, auth.Hasher{MemoryKiB: cfg.ArgonMemoryKiB, Time: cfg.ArgonTime, Threads: cfg.ArgonThreads},
		auth.NewKeyed(cfg.Secret), h.Bus, cfg.AccessTokenTTL, cfg.RefreshTokenTTL)
	h.Auth.Log = h.Log
	stop, err := h.Auth.Start(context.Background())
	if err != nil {
		t.Fatalf("auth: %v", err)
	}
	t.Cleanup(stop) // before the database closes
	h.Ledger = &billing.Ledger{DB: h.DB}
	lim, err := ratelimit.New(ratelimit.Options{Logger: h.Log})
	if err != nil {
		t.Fatalf("limiter: %v", err)
	}
	h.Limiter = lim
	deps := api.Deps{Config: cfg, DB: h.DB, Auth: h.Auth, Ledger: h.Ledger, Log: h.Log, Mailer: h.Mail, Limiter: lim}
	if h.opts.Deps != nil {
		h.opts.Deps(t, h, &deps)
	}
	h.Server = api.New(deps)
	srv := httptest.NewServer(h.Server.Handler())
	t.Cleanup(srv.Close)
	h.URL = srv.URL
	h.Client = srv.Client()
	h.Client.Timeout = 30 * time.Second
}

// replica starts a second API server on the same database with its own
// caches (its own auth.Service), as another process would be. b is its bus:
// pass h.Bus to share one in-process bus, or a new bus.NewPostgres.
func (h *harness) replica(b bus.Bus) *harness {
	h.t.Helper()
	d, err := db.Open(h.DBURL)
	if err != nil {
		h.t.Fatalf("replica db: %v", err)
	}
	h.t.Cleanup(func() { _ = d.Close() })
	r := &harness{t: h.t, opts: h.opts, Dialect: h.Dialect, DB: d, DBURL: h.DBURL, Cfg: h.Cfg, Bus: b,
		Mail: h.Mail, Log: h.Log, Admin: h.Admin}
	r.wire()
	return r
}

// ---- requests ----

// resp is an HTTP answer: status, headers, raw body and, when the body is a
// JSON object, its decoded form (numbers as json.Number, exact).
type resp struct {
	t      *testing.T
	req    string
	Status int
	Header http.Header
	Raw    []byte
	JSON   map[string]any
}

type reqOpt func(*reqConf)

type reqConf struct {
	header   http.Header
	remoteIP string
}

// withHeader sets a request header.
func withHeader(k, v string) reqOpt { return func(c *reqConf) { c.header.Set(k, v) } }

// fromIP sends the request in-process with this client address.
func fromIP(ip string) reqOpt { return func(c *reqConf) { c.remoteIP = ip } }

// do calls the API. body may be nil, a string or []byte (sent as is), an
// io.Reader (sent chunked, without Content-Length), or anything else (sent
// as JSON). token, when set, goes in Authorization: Bearer.
func (h *harness) do(method, path, token string, body any, opts ...reqOpt) *resp {
	h.t.Helper()
	conf := reqConf{header: http.Header{}}
	for _, o := range opts {
		o(&conf)
	}
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = struct{ io.Reader }{b} // hide the length: chunked
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatalf("marshal body: %v", err)
		}
		rd = bytes.NewReader(j)
	}
	var (
		req *http.Request
		err error
	)
	if conf.remoteIP != "" {
		req = httptest.NewRequest(method, path, rd)
		req.RemoteAddr = conf.remoteIP + ":40000"
	} else if req, err = http.NewRequest(method, h.URL+path, rd); err != nil {
		h.t.Fatalf("new request: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range conf.header {
		req.Header[k] = v
	}
	r := &resp{t: h.t, req: method + " " + path}
	if conf.remoteIP != "" {
		rec := httptest.NewRecorder()
		h.Server.Handler().ServeHTTP(rec, req)
		r.Status, r.Header, r.Raw = rec.Code, rec.Result().Header, rec.Body.Bytes()
	} else {
		res, err := h.Client.Do(req)
		if err != nil {
			h.t.Fatalf("%s: %v", r.req, err)
		}
		defer res.Body.Close()
		r.Status, r.Header = res.StatusCode, res.Header
		if r.Raw, err = io.ReadAll(res.Body); err != nil {
			h.t.Fatalf("%s: read body: %v", r.req, err)
		}
	}
	if len(r.Raw) > 0 && r.Raw[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(r.Raw))
		dec.UseNumber()
		_ = dec.Decode(&r.JSON)
	}
	return r
}

// want fails the test unless the status is one of codes.
func (r *resp) want(codes ...int) *resp {
	r.t.Helper()
	for _, c := range codes {
		if r.Status == c {
			return r
		}
	}
	r.t.Fatalf("%s: status %d, want %v; body: %s", r.req, r.Status, codes, r.Raw)
	return r
}

// wantError checks status, the contract's error shape (message, type and
// code all non-empty strings) and the code.
func (r *resp) wantError(status int, code string) *resp {
	r.t.Helper()
	r.want(status)
	e, ok := r.JSON["error"].(map[string]any)
	if !ok {
		r.t.Fatalf("%s: no error object in %s", r.req, r.Raw)
	}
	for _, f := range []string{"message", "type", "code"} {
		if s, _ := e[f].(string); s == "" {
			r.t.Fatalf("%s: error.%s is not a non-empty string: %s", r.req, f, r.Raw)
		}
	}
	// OpenAI's schema requires param too: null, or the field at fault.
	if p, ok := e["param"]; !ok {
		r.t.Fatalf("%s: error.param is missing: %s", r.req, r.Raw)
	} else if s, isString := p.(string); p != nil && (!isString || s == "") {
		r.t.Fatalf("%s: error.param is neither null nor a field name: %s", r.req, r.Raw)
	}
	if e["code"] != code {
		r.t.Fatalf("%s: error.code %v, want %s; body: %s", r.req, e["code"], code, r.Raw)
	}
	return r
}

// get walks a dotted path ("account.id", "data.0.id") through the JSON.
func (r *resp) get(path string) any {
	r.t.Helper()
	var cur any = r.JSON
	for _, p := range strings.Split(path, ".") {
		switch v := cur.(type) {
		case map[string]any:
			cur = v[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(v) {
				r.t.Fatalf("%s: no %s in %s", r.req, path, r.Raw)
			}
			cur = v[i]
		default:
			r.t.Fatalf("%s: no %s in %s", r.req, path, r.Raw)
		}
	}
	return cur
}

// str returns a string at path.
func (r *resp) str(path string) string {
	r.t.Helper()
	s, ok := r.get(path).(string)
	if !ok {
		r.t.Fatalf("%s: %s is not a string in %s", r.req, path, r.Raw)
	}
	return s
}

// num returns an integer at path.
func (r *resp) num(path string) int64 {
	r.t.Helper()
	n, ok := r.get(path).(json.Number)
	if !ok {
		r.t.Fatalf("%s: %s is not a number in %s", r.req, path, r.Raw)
	}
	i, err := n.Int64()
	if err != nil {
		r.t.Fatalf("%s: %s = %s is not an integer", r.req, path, n)
	}
	return i
}

// list returns an array at path.
func (r *resp) list(path string) []any {
	r.t.Helper()
	l, ok := r.get(path).([]any)
	if !ok {
		r.t.Fatalf("%s: %s is not an array in %s", r.req, path, r.Raw)
	}
	return l
}

// ---- accounts and sessions ----

var userSeq atomic.Int64

// newUser registers a fresh account through the API and signs it in.
func (h *harness) newUser() *user {
	h.t.Helper()
	email := fmt.Sprintf("user%d-%d@example.com", userSeq.Add(1), time.Now().UnixNano()%1e6)
	id := h.register(email, testPassword)
	u := h.login(email, testPassword)
	if u.ID != id {
		h.t.Fatalf("login answered account %s, registered %s", u.ID, id)
	}
	return u
}

// register creates an account through POST /auth/register; returns its id.
func (h *harness) register(email, password string) string {
	h.t.Helper()
	r := h.do("POST", "/auth/register", "", map[string]string{"email": email, "password": password}).want(201)
	return r.str("account.id")
}

// login signs in through POST /auth/login.
func (h *harness) login(email, password string) *user {
	h.t.Helper()
	r := h.do("POST", "/auth/login", "", map[string]string{"email": email, "password": password}).want(200)
	return &user{ID: r.str("account.id"), Email: email, Password: password,
		Token: r.str("access_token"), Refresh: r.str("refresh_token")}
}

// topUp credits an account through the admin API (amount as a decimal string).
func (h *harness) topUp(accountID, usd string) *resp {
	h.t.Helper()
	return h.do("POST", "/admin/top-up", h.Admin.Token,
		map[string]any{"account_id": accountID, "amount_usd": usd}).want(201)
}

// createKey makes an API key for u with the given body (nil = {"name":"test"});
// returns its id and secret.
func (h *harness) createKey(u *user, body any) (id, secret string) {
	h.t.Helper()
	if body == nil {
		body = map[string]any{"name": "test"}
	}
	r := h.do("POST", "/api-keys", u.Token, body).want(201)
	return r.str("id"), r.str("key")
}

var tokenRE = regexp.MustCompile(`[?&]token=([A-Za-z0-9_-]+)`)

// mailToken waits (up to 5s: some emails are sent in the background) for the
// n-th email (1-based) to address whose link path contains linkPath, and
// returns the token its link carries.
func (h *harness) mailToken(address, linkPath string, n int) string {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var found []string
		for _, m := range h.Mail.To(address) {
			for _, l := range mail.Links(m.Text) {
				if strings.Contains(l, linkPath) {
					if mm := tokenRE.FindStringSubmatch(l); mm != nil {
						found = append(found, mm[1])
					}
				}
			}
		}
		if len(found) >= n {
			return found[n-1]
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("no email #%d to %s with a %s link (got %d)", n, address, linkPath, len(found))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// scalar reads one integer from SQL.
func (h *harness) scalar(query string, args ...any) int64 {
	h.t.Helper()
	var n int64
	if err := h.DB.Raw(query, args...).Row().Scan(&n); err != nil {
		h.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// eventually polls cond every 20ms until it is true or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
