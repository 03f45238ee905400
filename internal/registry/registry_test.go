package registry_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/internal/registry"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

const (
	secretKey   = "sk-operator-secret-key-123"
	headerValue = "header-secret-value-456"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// recorder is a stand-in upstream that lists two models (under any base
// path but /nowhere, where it answers 401 quoting the key it got, as a
// careless upstream might) and records what it was sent.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, r.Clone(context.Background()))
	rec.mu.Unlock()
	if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/models") && !strings.HasPrefix(r.URL.Path, "/nowhere") {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"object":"list","data":[{"id":"m-1"},{"id":"m-2"}]}`)
		return
	}
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = io.WriteString(w, `{"error":{"message":"bad key `+r.Header.Get("Authorization")+`"}}`)
}

func (rec *recorder) last() *http.Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.reqs[len(rec.reqs)-1]
}

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// newRegistry is a registry on d and b with the built-ins of vars.
func newRegistry(t *testing.T, d *db.DB, b bus.Bus, vars map[string]string) *registry.Registry {
	t.Helper()
	cfg, err := config.FromLookup(env(vars))
	if err != nil {
		t.Fatal(err)
	}
	r, err := registry.New(context.Background(), registry.Options{DB: d, Bus: b, Keyed: auth.NewKeyed("test-secret"),
		Builtins: registry.BuiltinConfigs(cfg, quiet), Template: registry.Tune(providers.Config{}, cfg, quiet),
		LookupEnv: env(vars), Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func wantCode(t *testing.T, err error, status int, param string) {
	t.Helper()
	e, ok := apierr.As(err)
	if !ok || e.Status != status || e.Param != param {
		t.Fatalf("error %v, want %d naming %q", err, status, param)
	}
	for _, secret := range []string{secretKey, headerValue} {
		if strings.Contains(e.Message, secret) {
			t.Fatalf("error %q quotes a secret", e.Message)
		}
	}
}

func TestBuiltinsComeFromTheEnvironment(t *testing.T) {
	r := newRegistry(t, testenv.Open(t, db.SQLite), bus.NewLocal(), map[string]string{
		"OPENAI_API_KEY": "sk-env", "DEEPSEEK_BASE_URL": "http://deepseek.internal/",
	})
	list := r.List()
	if len(list) != 6 {
		t.Fatalf("%d providers, want the six built-ins: %+v", len(list), list)
	}
	byID := map[string]registry.Info{}
	for _, in := range list {
		if !in.Builtin || in.CreatedAt != nil || len(in.Headers) != 0 {
			t.Fatalf("built-in %+v", in)
		}
		byID[in.ID] = in
		if _, ok := r.Get(in.ID); !ok || !r.Known(in.ID) {
			t.Fatalf("%s is listed but not served", in.ID)
		}
	}
	if o := byID["openai"]; !o.HasKey || o.Format != "openai" || o.BaseURLs[0] != "https://api.openai.com/v1" {
		t.Fatalf("openai %+v", o)
	}
	if d := byID["deepseek"]; d.HasKey || d.BaseURLs[0] != "http://deepseek.internal" || !d.Usage.SendReasoningBack {
		t.Fatalf("deepseek %+v", d)
	}
	if !byID["xai"].Usage.ReasoningOutsideCompletion || byID["google"].Format != "gemini" || byID["anthropic"].Format != "anthropic" {
		t.Fatalf("built-ins %+v", byID)
	}
	if r.Known("groq") {
		t.Fatal("an unknown provider is known")
	}
}

func TestAddPatchDeleteOperatorProvider(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			ctx := context.Background()
			rec := &recorder{}
			up := httptest.NewServer(rec)
			defer up.Close()
			d := testenv.Open(t, dialect)
			r := newRegistry(t, d, bus.NewLocal(), nil)

			in, err := r.Create(ctx, registry.Spec{ID: "groq", Format: "openai", BaseURL: []string{up.URL + "/openai/v1/"},
				APIKey: secretKey, Headers: map[string]string{"X-Team": headerValue}, Weights: []int{3}})
			if err != nil {
				t.Fatal(err)
			}
			if in.Builtin || !in.HasKey || in.BaseURLs[0] != up.URL+"/openai/v1" || in.Weights[0] != 3 ||
				len(in.Headers) != 1 || in.Headers[0] != "X-Team" || in.CreatedAt == nil {
				t.Fatalf("created %+v", in)
			}
			p, ok := r.Get("groq")
			if !ok || !r.Known("groq") {
				t.Fatal("the new provider is not served")
			}

			// Stored sealed: neither secret is in the row.
			var row models.Provider
			if err := d.Where("id = ?", "groq").Take(&row).Error; err != nil {
				t.Fatal(err)
			}
			for _, col := range []string{row.APIKeyCiphertext, row.Headers, row.BaseURLs, row.UsageSemantics} {
				if strings.Contains(col, secretKey) || strings.Contains(col, headerValue) {
					t.Fatalf("a secret is stored in the clear: %+v", row)
				}
			}

			// Test lists the models with the key and the headers.
			res, err := r.Test(ctx, "groq")
			if err != nil || !res.OK || res.ModelsListed != 2 || res.Error != nil {
				t.Fatalf("test %+v %v", res, err)
			}
			got := rec.last()
			if got.URL.Path != "/openai/v1/models" || got.Header.Get("Authorization") != "Bearer "+secretKey ||
				got.Header.Get("X-Team") != headerValue {
				t.Fatalf("listed models with %s %v", got.URL.Path, got.Header)
			}

			// A rebuild that changes nothing keeps the provider (its
			// connections and breakers).
			if err := r.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			if again, _ := r.Get("groq"); again != p {
				t.Fatal("an unchanged provider was rebuilt")
			}

			// PATCH: a new key, the rest kept; the failing upstream's
			// answer quotes the key, the result does not.
			in, err = r.Update(ctx, "groq", registry.Change{APIKey: ptr("sk-new-but-wrong"),
				BaseURL: &[]string{up.URL + "/nowhere"}})
			if err != nil || len(in.Headers) != 1 || !in.HasKey || in.Weights[0] != 1 {
				t.Fatalf("patched %+v %v", in, err)
			}
			if again, _ := r.Get("groq"); again == p {
				t.Fatal("a changed provider was not rebuilt")
			}
			res, err = r.Test(ctx, "groq")
			if err != nil || res.OK || res.Error == nil || !strings.Contains(*res.Error, "401") ||
				strings.Contains(*res.Error, "sk-new-but-wrong") {
				t.Fatalf("test of a rejected key %+v %v", res, err)
			}
			if _, err := r.Update(ctx, "groq", registry.Change{APIKey: ptr("")}); err != nil {
				t.Fatal(err)
			}
			if in, _ := r.Info("groq"); in.HasKey {
				t.Fatal("api_key \"\" kept the key")
			}

			// Built-ins are the environment's.
			wantCode(t, r.Delete(ctx, "openai"), 400, "id")
			_, err = r.Update(ctx, "openai", registry.Change{BaseURL: &[]string{up.URL}})
			wantCode(t, err, 400, "id")

			// A provider that active models use stays.
			now := time.Now().UTC()
			m := models.Model{ID: "groq/llama", Provider: "groq", ProviderModel: "llama", Name: "Llama", Capabilities: "[]", ContextLength: 8192, MaxOutputTokens: 4096,
				Active: true, CreatedAt: now, UpdatedAt: now}
			if err := d.Create(&m).Error; err != nil {
				t.Fatal(err)
			}
			err = r.Delete(ctx, "groq")
			wantCode(t, err, 409, "")
			if !strings.Contains(err.Error(), "groq/llama") {
				t.Fatalf("409 does not name the model: %v", err)
			}
			if err := d.Model(&m).Update("active", false).Error; err != nil {
				t.Fatal(err)
			}
			if err := r.Delete(ctx, "groq"); err != nil {
				t.Fatal(err)
			}
			if r.Known("groq") {
				t.Fatal("a deleted provider is still served")
			}
			wantCode(t, r.Delete(ctx, "groq"), 404, "")
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestValidationNamesTheField(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t, testenv.Open(t, db.SQLite), bus.NewLocal(), nil)
	ok := registry.Spec{ID: "mistral", Format: "openai", BaseURL: []string{"https://api.mistral.ai/v1"}, APIKey: secretKey}
	for _, tc := range []struct {
		name   string
		change func(s *registry.Spec)
		status int
		param  string
	}{
		{"unknown format", func(s *registry.Spec) { s.Format = "soap" }, 400, "format"},
		{"upper-case id", func(s *registry.Spec) { s.ID = "Mistral" }, 400, "id"},
		{"id with a slash", func(s *registry.Spec) { s.ID = "a/b" }, 400, "id"},
		{"empty id", func(s *registry.Spec) { s.ID = "" }, 400, "id"},
		{"a built-in's id", func(s *registry.Spec) { s.ID = "openai" }, 400, "id"},
		{"no base URL", func(s *registry.Spec) { s.BaseURL = nil }, 400, "base_urls"},
		{"ftp base URL", func(s *registry.Spec) { s.BaseURL = []string{"ftp://x"} }, 400, "base_urls"},
		{"relative base URL", func(s *registry.Spec) { s.BaseURL = []string{"/v1"} }, 400, "base_urls"},
		{"both keys", func(s *registry.Spec) { s.APIKeyEnv = "MISTRAL_KEY" }, 400, "api_key"},
		{"Beaver's own secret", func(s *registry.Spec) { s.APIKey, s.APIKeyEnv = "", "BEAVER_SECRET" }, 400, "api_key_env"},
		{"negative weight", func(s *registry.Spec) { s.Weights = []int{-1} }, 400, "weights"},
		{"weights not per base URL", func(s *registry.Spec) { s.Weights = []int{1, 2} }, 400, "weights"},
		{"bad header name", func(s *registry.Spec) { s.Headers = map[string]string{"X Bad": headerValue} }, 400, "headers"},
		{"framing header", func(s *registry.Spec) { s.Headers = map[string]string{"Host": headerValue} }, 400, "headers"},
		{"header value with a newline", func(s *registry.Spec) { s.Headers = map[string]string{"X-A": headerValue + "\n"} }, 400, "headers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			tc.change(&s)
			_, err := r.Create(ctx, s)
			wantCode(t, err, tc.status, tc.param)
		})
	}
	if _, err := r.Create(ctx, ok); err != nil {
		t.Fatal(err)
	}
	_, err := r.Create(ctx, ok)
	wantCode(t, err, 409, "id")
}

func TestAPIKeyFromTheEnvironment(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	up := httptest.NewServer(rec)
	defer up.Close()
	r := newRegistry(t, testenv.Open(t, db.SQLite), bus.NewLocal(), map[string]string{"TOGETHER_KEY": secretKey})
	in, err := r.Create(ctx, registry.Spec{ID: "together", Format: "openai", BaseURL: []string{up.URL}, APIKeyEnv: "TOGETHER_KEY"})
	if err != nil || !in.HasKey {
		t.Fatalf("%+v %v", in, err)
	}
	if res, _ := r.Test(ctx, "together"); !res.OK || rec.last().Header.Get("Authorization") != "Bearer "+secretKey {
		t.Fatalf("test %+v with %v", res, rec.last().Header)
	}
	in, err = r.Create(ctx, registry.Spec{ID: "vllm", Format: "openai", BaseURL: []string{up.URL}, APIKeyEnv: "UNSET_KEY"})
	if err != nil || in.HasKey {
		t.Fatalf("an unset api_key_env: %+v %v", in, err)
	}
}

// Another replica (its own registry on the same database) serves a change
// once the bus message reaches it: Local delivers in Publish, so the check
// needs no waiting.
func TestOtherReplicaRebuildsOnTheBusMessage(t *testing.T) {
	ctx := context.Background()
	d := testenv.Open(t, db.SQLite)
	shared := bus.NewLocal()
	a, b := newRegistry(t, d, shared, nil), newRegistry(t, d, shared, nil)
	lone := bus.NewLocal() // a replica whose message has not arrived yet
	c := newRegistry(t, d, lone, nil)

	if _, err := a.Create(ctx, registry.Spec{ID: "openrouter", Format: "openai", BaseURL: []string{"https://openrouter.ai/api/v1"}}); err != nil {
		t.Fatal(err)
	}
	if !b.Known("openrouter") {
		t.Fatal("the other replica did not rebuild on the bus message")
	}
	if c.Known("openrouter") {
		t.Fatal("a replica rebuilt without a message")
	}
	if err := lone.Publish(ctx, registry.Msg); err != nil {
		t.Fatal(err)
	}
	if !c.Known("openrouter") {
		t.Fatal("the replica did not rebuild on the message")
	}
	if err := a.Delete(ctx, "openrouter"); err != nil {
		t.Fatal(err)
	}
	if b.Known("openrouter") {
		t.Fatal("the other replica still serves a deleted provider")
	}
	_ = lone.Publish(ctx, bus.Flush) // a reconnect's flush rebuilds too
	if c.Known("openrouter") {
		t.Fatal("the flush did not rebuild")
	}
}

// A row this process cannot open (sealed under another BEAVER_SECRET) is
// left out; the others are served.
func TestUnopenableRowIsLeftOut(t *testing.T) {
	ctx := context.Background()
	d := testenv.Open(t, db.SQLite)
	r := newRegistry(t, d, bus.NewLocal(), nil)
	for _, id := range []string{"a", "b"} {
		if _, err := r.Create(ctx, registry.Spec{ID: id, Format: "openai", BaseURL: []string{"https://x.example"}, APIKey: secretKey}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Model(&models.Provider{}).Where("id = ?", "a").Update("api_key_ciphertext", "v1:AAAA").Error; err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if r.Known("a") || !r.Known("b") {
		t.Fatalf("known a=%v b=%v", r.Known("a"), r.Known("b"))
	}
	if _, err := r.Info("a"); err == nil {
		t.Fatal("an unbuilt provider has an Info")
	}
	// A PATCH that keeps the unreadable key says so; one that sets it again
	// brings the provider back.
	_, err := r.Update(ctx, "a", registry.Change{Usage: &registry.Usage{SendReasoningBack: true}})
	wantCode(t, err, 400, "api_key")
	if _, err := r.Update(ctx, "a", registry.Change{APIKey: ptr(secretKey)}); err != nil || !r.Known("a") {
		t.Fatalf("re-keyed: known %v, %v", r.Known("a"), err)
	}
}

// ListModels follows Anthropic's and Gemini's pagination: their first
// pages alone would make discovery report most of a catalogue missing.
func TestListModelsFollowsPages(t *testing.T) {
	pages := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		q := r.URL.Query()
		switch {
		case r.URL.Path == "/v1/models" && q.Get("after_id") == "":
			_, _ = io.WriteString(w, `{"data":[{"id":"claude-a"}],"has_more":true,"last_id":"claude-a"}`)
		case r.URL.Path == "/v1/models" && q.Get("after_id") == "claude-a" && q.Get("limit") == "1000":
			_, _ = io.WriteString(w, `{"data":[{"id":"claude-b"}],"has_more":false,"last_id":"claude-b"}`)
		case r.URL.Path == "/v1beta/models" && q.Get("pageToken") == "":
			_, _ = io.WriteString(w, `{"models":[{"name":"models/gemini-a"}],"nextPageToken":"p2"}`)
		case r.URL.Path == "/v1beta/models" && q.Get("pageToken") == "p2" && q.Get("pageSize") == "1000":
			_, _ = io.WriteString(w, `{"models":[{"name":"models/gemini-b"}]}`)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(pages.Close)
	r := newRegistry(t, testenv.Open(t, db.SQLite), bus.NewLocal(), map[string]string{
		"ANTHROPIC_BASE_URL": pages.URL, "GEMINI_BASE_URL": pages.URL, "ANTHROPIC_API_KEY": "k", "GEMINI_API_KEY": "k"})
	ctx := context.Background()
	for id, want := range map[string]string{"anthropic": "claude-a claude-b", "google": "gemini-a gemini-b"} {
		got, err := r.ListModels(ctx, id)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("%s: %v %v, want %s", id, got, err, want)
		}
	}
	if _, err := r.ListModels(ctx, "nope"); err == nil {
		t.Error("an unknown provider listed models")
	}
}
