package api_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/api"
	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/db"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/models"
)

// Providers as data: an admin adds an OpenAI-compatible provider pointing at
// the fake upstream, a model on it, and chats with it.

const (
	opKey         = "sk-groq-operator-secret-0001"
	opHeaderValue = "org-header-secret-0002"
)

// syncBuffer is a log sink tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// withLoggedServer serves inf through a new API whose log (debug level) is
// returned, on the same database, catalog, billing and providers.
func withLoggedServer(t *testing.T, inf *inference) *syncBuffer {
	t.Helper()
	buf := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	inf.Server = api.New(api.Deps{Config: inf.Cfg, DB: inf.DB, Auth: inf.Auth, Ledger: inf.Ledger, Log: log,
		Mailer: inf.Mail, Limiter: inf.Limiter, Catalog: inf.Catalog, Billing: inf.Engine, ProviderRegistry: inf.Registry})
	srv := httptest.NewServer(inf.Server.Handler())
	t.Cleanup(srv.Close)
	inf.URL = srv.URL
	return buf
}

// noSecrets fails when any answer or log holds the key or the header value.
func noSecrets(t *testing.T, what string, text string) {
	t.Helper()
	for _, s := range []string{opKey, opHeaderValue} {
		if strings.Contains(text, s) {
			t.Fatalf("%s holds a secret: %s", what, text)
		}
	}
}

// addModel puts a model on provider into the catalog, as POST /admin/models
// will, and publishes a price version with it.
func addModel(t *testing.T, inf *inference, provider, model string) string {
	t.Helper()
	now := time.Now().UTC()
	id := provider + "/" + model
	m := models.Model{ID: id, Provider: provider, ProviderModel: model, Name: model, ContextLength: 8192,
		MaxOutputTokens: 1024, Capabilities: `["chat"]`, Active: true, BaseInputMicros: 100_000, BaseOutputMicros: 200_000,
		CreatedAt: now, UpdatedAt: now}
	if err := inf.DB.Create(&m).Error; err != nil {
		t.Fatal(err)
	}
	if _, err := inf.Catalog.Recalculate(context.Background(), "model on "+provider); err != nil {
		t.Fatal(err)
	}
	return id
}

func groqBody(inf *inference) map[string]any {
	return map[string]any{"id": "groq", "format": "openai", "base_url": inf.fakeURL() + "/v1", "api_key": opKey,
		"headers": map[string]string{"X-Org": opHeaderValue}}
}

// fakeURL is the fake upstream's base URL (every built-in points at it).
func (inf *inference) fakeURL() string {
	inf.t.Helper()
	in, err := inf.Registry.Info("openai")
	if err != nil {
		inf.t.Fatal(err)
	}
	return in.BaseURLs[0]
}

func TestProviderAddedAtRunTimeServesChat(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		logs := withLoggedServer(t, inf)
		admin := inf.Admin.Token

		// The six built-ins are listed, from the environment.
		r := inf.do("GET", "/admin/providers", admin, nil).want(200)
		if n := len(r.list("data")); n != 6 {
			t.Fatalf("%d providers before any was added: %s", n, r.Raw)
		}
		for i := range 6 {
			if r.get(fmt.Sprintf("data.%d.builtin", i)) != true || r.get(fmt.Sprintf("data.%d.created_at", i)) != nil ||
				len(r.list(fmt.Sprintf("data.%d.headers", i))) != 0 || len(r.list(fmt.Sprintf("data.%d.base_urls", i))) != 1 {
				t.Fatalf("built-in %d: %s", i, r.Raw)
			}
		}

		r = inf.do("POST", "/admin/providers", admin, groqBody(inf)).want(201)
		noSecrets(t, "POST answer", string(r.Raw))
		if r.str("id") != "groq" || r.str("format") != "openai" || r.get("builtin") != false || r.get("has_key") != true ||
			r.str("base_urls.0") != inf.fakeURL()+"/v1" || r.str("headers.0") != "X-Org" || r.str("created_at") == "" ||
			r.get("usage_semantics.reasoning_outside_completion") != false {
			t.Fatalf("created: %s", r.Raw)
		}
		r = inf.do("GET", "/admin/providers", admin, nil).want(200)
		noSecrets(t, "GET answer", string(r.Raw))
		if n := len(r.list("data")); n != 7 {
			t.Fatalf("%d providers after one was added: %s", n, r.Raw)
		}
		noSecrets(t, "GET one", string(inf.do("GET", "/admin/providers/groq", admin, nil).want(200).Raw))

		// /test lists the fake's models with the stored key and headers.
		r = inf.do("POST", "/admin/providers/groq/test", admin, nil).want(200)
		if r.get("ok") != true || r.num("models_listed") != int64(len(fakeupstream.FakeModels)) || r.get("error") != nil {
			t.Fatalf("test: %s", r.Raw)
		}
		reqs := inf.Fake.Requests()
		last := reqs[len(reqs)-1]
		if last.Method != "GET" || last.Path != "/v1/models" || last.Header.Get("Authorization") != "Bearer "+opKey ||
			last.Header.Get("X-Org") != opHeaderValue {
			t.Fatalf("listed models with %s %s %v", last.Method, last.Path, last.Header)
		}

		// A model on it is served, the request sent with the key and headers.
		model := addModel(t, inf, "groq", "llama-3.1-8b-instant")
		_, key := inf.fundedKey("5", nil)
		r = inf.do("POST", "/v1/chat/completions", key, chatBody(model, "hello [[words:4]]")).want(200)
		if r.str("model") != model || r.num("usage.completion_tokens") != 4 || r.num("usage.cost_micros") <= 0 {
			t.Fatalf("chat: %s", r.Raw)
		}
		reqs = inf.Fake.Requests()
		last = reqs[len(reqs)-1]
		if last.Path != "/v1/chat/completions" || last.Header.Get("Authorization") != "Bearer "+opKey ||
			last.Header.Get("X-Org") != opHeaderValue || !strings.Contains(string(last.Body), `"llama-3.1-8b-instant"`) {
			t.Fatalf("upstream got %s %v %s", last.Path, last.Header, last.Body)
		}
		st := inf.do("GET", "/status/providers", "", nil).want(200)
		if st.get("providers.groq.endpoints.0.base_url") != inf.fakeURL()+"/v1" {
			t.Fatalf("/status/providers: %s", st.Raw)
		}
		noSecrets(t, "/status/providers", string(st.Raw))

		// PATCH: new headers and usage semantics; the key stays.
		r = inf.do("PATCH", "/admin/providers/groq", admin, map[string]any{
			"headers":         map[string]string{"X-Org": opHeaderValue, "X-Region": "eu"},
			"usage_semantics": map[string]any{"reasoning_outside_completion": true},
		}).want(200)
		noSecrets(t, "PATCH answer", string(r.Raw))
		if r.get("has_key") != true || len(r.list("headers")) != 2 || r.get("usage_semantics.reasoning_outside_completion") != true {
			t.Fatalf("patched: %s", r.Raw)
		}
		inf.do("POST", "/v1/chat/completions", key, chatBody(model, "again")).want(200)
		reqs = inf.Fake.Requests()
		if h := reqs[len(reqs)-1].Header; h.Get("Authorization") != "Bearer "+opKey || h.Get("X-Region") != "eu" {
			t.Fatalf("after PATCH the upstream got %v", h)
		}

		// In use by an active model: 409; built-ins: 400.
		inf.do("DELETE", "/admin/providers/groq", admin, nil).wantError(409, "conflict")
		inf.do("DELETE", "/admin/providers/openai", admin, nil).wantError(400, "invalid_request")
		inf.do("PATCH", "/admin/providers/openai", admin, map[string]any{"base_url": "http://x.test"}).wantError(400, "invalid_request")

		// A failing upstream: ok false, the error never quoting the key.
		inf.do("PATCH", "/admin/providers/groq", admin, map[string]any{"base_url": inf.fakeURL() + "/nowhere"}).want(200)
		r = inf.do("POST", "/admin/providers/groq/test", admin, nil).want(200)
		if r.get("ok") != false || r.str("error") == "" {
			t.Fatalf("test of a wrong base URL: %s", r.Raw)
		}
		noSecrets(t, "failed test", string(r.Raw))
		inf.do("POST", "/admin/providers/nope/test", admin, nil).wantError(404, "not_found")

		noSecrets(t, "the server log", logs.String())
		if !strings.Contains(logs.String(), "admin added provider") {
			t.Fatalf("the log does not show the change: %s", logs.String())
		}
	})
}

func TestProviderValidation(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		admin := inf.Admin.Token
		with := func(k string, v any) map[string]any {
			b := groqBody(inf)
			if v == nil {
				delete(b, k)
			} else {
				b[k] = v
			}
			return b
		}
		for _, tc := range []struct {
			name  string
			body  map[string]any
			param string
		}{
			{"unknown format", with("format", "soap"), "format"},
			{"upper-case id", with("id", "Groq"), "id"},
			{"id with a slash", with("id", "groq/x"), "id"},
			{"a built-in's id", with("id", "openai"), "id"},
			{"no base URL", with("base_url", nil), "base_urls"},
			{"base URL not http(s)", with("base_url", "file:///etc/passwd"), "base_urls"},
			{"both base_url and base_urls", with("base_urls", []string{"http://a.test"}), "base_url"},
			{"api_key and api_key_env", with("api_key_env", "GROQ_API_KEY"), "api_key"},
			{"negative weight", with("weights", []int{-2}), "weights"},
			{"unknown field", with("apikey", "x"), "apikey"},
		} {
			r := inf.do("POST", "/admin/providers", admin, tc.body).wantError(400, "invalid_request")
			if p, _ := r.get("error.param").(string); p != tc.param {
				t.Fatalf("%s: param %q, want %q: %s", tc.name, p, tc.param, r.Raw)
			}
			noSecrets(t, tc.name, string(r.Raw))
		}
		inf.do("POST", "/admin/providers", admin, groqBody(inf)).want(201)
		r := inf.do("POST", "/admin/providers", admin, groqBody(inf)).wantError(409, "conflict")
		if r.get("error.param") != "id" {
			t.Fatalf("duplicate: %s", r.Raw)
		}
		r = inf.do("PATCH", "/admin/providers/groq", admin, map[string]any{"weights": []int{1, 2}}).wantError(400, "invalid_request")
		if r.get("error.param") != "weights" {
			t.Fatalf("weights of another length: %s", r.Raw)
		}
		inf.do("PATCH", "/admin/providers/nope", admin, map[string]any{"api_key": "x"}).wantError(404, "not_found")

		// Admins only.
		u := inf.newUser()
		inf.do("GET", "/admin/providers", u.Token, nil).want(403)
		inf.do("POST", "/admin/providers", u.Token, groqBody(inf)).want(403)

		// Deleting an unused provider: 204, gone.
		inf.do("DELETE", "/admin/providers/groq", admin, nil).want(204)
		inf.do("GET", "/admin/providers/groq", admin, nil).wantError(404, "not_found")
	})
}

// A second replica (its own registry on the same database) serves a
// provider added on the first, over a shared in-process bus and over the
// real one (LISTEN/NOTIFY, or the polled table on SQLite).
func TestProviderSeenByOtherReplica(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		t.Run("shared bus", func(t *testing.T) {
			a := newInference(t, dialect, fakeupstream.Options{})
			b := a.replica(a.Bus)
			a.do("POST", "/admin/providers", a.Admin.Token, groqBody(a)).want(201)
			r := b.do("GET", "/admin/providers/groq", b.Admin.Token, nil).want(200)
			noSecrets(t, "replica's answer", string(r.Raw))
			model := addModel(t, a, "groq", "mixtral")
			_, key := a.fundedKey("5", nil)
			b.do("POST", "/v1/chat/completions", key, chatBody(model, "hi")).want(200)
			a.do("PATCH", "/admin/models/"+model, a.Admin.Token, map[string]any{"active": false}).want(200)
			a.do("DELETE", "/admin/providers/groq", a.Admin.Token, nil).want(204)
			b.do("GET", "/admin/providers/groq", b.Admin.Token, nil).wantError(404, "not_found")
		})
		t.Run("bus per replica", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel) // before the databases close
			a := newInferenceOn(t, dialect, func(t *testing.T, d *db.DB, url string) bus.Bus {
				return realBus(t, ctx, d, url)
			}, fakeupstream.Options{}, nil)
			d2, err := db.Open(a.DBURL)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d2.Close() })
			b := a.replica(realBus(t, ctx, d2, a.DBURL))
			a.do("POST", "/admin/providers", a.Admin.Token, groqBody(a)).want(201)
			eventually(t, 5*time.Second, "the other replica serves the new provider", func() bool {
				return b.do("GET", "/admin/providers/groq", b.Admin.Token, nil).Status == 200
			})
		})
	})
}
