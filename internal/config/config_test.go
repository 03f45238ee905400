package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/config"
)

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// The defaults are the contract's.
func TestDefaults(t *testing.T) {
	c, err := config.FromLookup(lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]string{
		"addr":      {c.Addr, "127.0.0.1:8080"},
		"database":  {c.DatabaseURL, "sqlite://./data/beaver.db"},
		"temporal":  {c.TemporalAddress, "127.0.0.1:7233"},
		"namespace": {c.TemporalNamespace, "default"},
		"queue":     {c.TaskQueue, "beaver"},
		"mailer":    {c.Mailer, "log"},
		"openai":    {c.Providers["openai"].BaseURL, "https://api.openai.com/v1"},
		"deepseek":  {c.Providers["deepseek"].BaseURL, "https://api.deepseek.com"},
		"anthropic": {c.Providers["anthropic"].BaseURL, "https://api.anthropic.com"},
		"google":    {c.Providers["google"].BaseURL, "https://generativelanguage.googleapis.com"},
	}
	for name, v := range checks {
		if v[0] != v[1] {
			t.Errorf("%s = %q, want %q", name, v[0], v[1])
		}
	}
	if c.MaxBodyBytes != 10485760 || c.AuthLimit != 10 || c.RequireVerifiedEmail || c.RedisURL != "" || c.TemporalAddrSet {
		t.Errorf("defaults: %+v", c)
	}
	if c.CommitGather != time.Millisecond {
		t.Errorf("commit gather %s, want 1ms", c.CommitGather)
	}
	if !c.PGSynchronousCommit {
		t.Error("settlement commits must wait for PostgreSQL's disk by default")
	}
	if !c.ResponsesStoreDefault || c.ResponsesRetention != 30*24*time.Hour {
		t.Errorf("responses: store by default %v, retention %s; want true, 30 days", c.ResponsesStoreDefault, c.ResponsesRetention)
	}
	if c.DatabaseListenURL != c.DatabaseURL {
		t.Errorf("listen URL %q, want the database URL %q", c.DatabaseListenURL, c.DatabaseURL)
	}
	if c.UsageLogRetentionDays != 0 {
		t.Errorf("usage logs kept %d days by default, want 0 (forever)", c.UsageLogRetentionDays)
	}
	if c.BodyReadTimeout != 30*time.Second || c.MaxBodiesPerIP != 8 || c.MaxAnonBodies != 128 || c.MaxWebhookBodies != 32 ||
		c.MaxBodiesPerAccount != 64 || c.MaxBodiesInFlight != 1024 {
		t.Errorf("body defaults: timeout %s, per IP %d, anonymous %d, webhook %d, per account %d, in flight %d", c.BodyReadTimeout,
			c.MaxBodiesPerIP, c.MaxAnonBodies, c.MaxWebhookBodies, c.MaxBodiesPerAccount, c.MaxBodiesInFlight)
	}
}

func TestOverridesAndErrors(t *testing.T) {
	c, err := config.FromLookup(lookup(map[string]string{"GEMINI_BASE_URL": "http://127.0.0.1:9/", "GEMINI_API_KEY": "k",
		"BEAVER_CORS_ORIGINS": "https://a.example, https://b.example/", "TEMPORAL_ADDRESS": "t:7233",
		"BEAVER_UPSTREAM_IDLE_TIMEOUT": "5s", "BEAVER_REQUIRE_VERIFIED_EMAIL": "true",
		"BEAVER_BODY_READ_TIMEOUT": "2s", "BEAVER_MAX_BODIES_PER_IP": "0", "BEAVER_MAX_BODIES_IN_FLIGHT": "7",
		"BEAVER_MAX_ANON_BODIES": "3", "BEAVER_MAX_WEBHOOK_BODIES": "4", "BEAVER_MAX_BODIES_PER_ACCOUNT": "5",
		"BEAVER_PG_SYNCHRONOUS_COMMIT": "off", "BEAVER_COMMIT_GATHER": "0s",
		"BEAVER_RESPONSES_STORE_DEFAULT": "false", "BEAVER_RESPONSES_RETENTION_DAYS": "2",
		"BEAVER_USAGE_LOG_RETENTION_DAYS": "90", "BEAVER_DATABASE_LISTEN_URL": "postgres://direct/db"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Providers["google"].BaseURL != "http://127.0.0.1:9" || c.Providers["google"].APIKey != "k" || !c.TemporalAddrSet ||
		len(c.CORSOrigins) != 2 || c.CORSOrigins[1] != "https://b.example" || c.UpstreamIdleTimeout != 5*time.Second || !c.RequireVerifiedEmail ||
		c.BodyReadTimeout != 2*time.Second || c.MaxBodiesPerIP != 0 || c.MaxBodiesInFlight != 7 ||
		c.MaxAnonBodies != 3 || c.MaxWebhookBodies != 4 || c.MaxBodiesPerAccount != 5 ||
		c.PGSynchronousCommit || c.CommitGather != 0 || c.ResponsesStoreDefault || c.ResponsesRetention != 48*time.Hour ||
		c.UsageLogRetentionDays != 90 || c.DatabaseListenURL != "postgres://direct/db" {
		t.Fatalf("overrides: %+v", c)
	}
	for k, v := range map[string]string{"BEAVER_MAX_BODY_BYTES": "-1", "BEAVER_AUTH_LIMIT": "ten",
		"BEAVER_REQUIRE_VERIFIED_EMAIL": "maybe", "BEAVER_UPSTREAM_IDLE_TIMEOUT": "soon",
		"BEAVER_BODY_READ_TIMEOUT": "0s", "BEAVER_MAX_BODIES_PER_IP": "-1", "BEAVER_MAX_BODIES_IN_FLIGHT": "many",
		"BEAVER_MAX_ANON_BODIES": "-3", "BEAVER_MAX_WEBHOOK_BODIES": "x", "BEAVER_MAX_BODIES_PER_ACCOUNT": "1.5",
		"BEAVER_PG_SYNCHRONOUS_COMMIT": "false", "BEAVER_COMMIT_GATHER": "5s",
		"BEAVER_RESPONSES_STORE_DEFAULT": "sometimes", "BEAVER_RESPONSES_RETENTION_DAYS": "-1",
		"BEAVER_USAGE_LOG_RETENTION_DAYS": "a year"} {
		if _, err := config.FromLookup(lookup(map[string]string{k: v})); err == nil {
			t.Errorf("%s=%s accepted", k, v)
		}
	}
}

// Routing defaults; a single key and base URL per provider work as they
// always did (one endpoint).
func TestRoutingDefaults(t *testing.T) {
	c, err := config.FromLookup(lookup(map[string]string{"OPENAI_API_KEY": "sk-one", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1/"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.UpstreamRetries != 2 || c.UpstreamRetryBudget != 10*time.Second || c.BreakerFailures != 5 ||
		c.BreakerMinRequests != 10 || c.BreakerFailureRate != 0.5 || c.BreakerMinAccounts != 3 || c.BreakerWindow != time.Minute ||
		c.BreakerCooldown != 30*time.Second || c.Quick500 != 2*time.Second ||
		c.KeyCooldown != time.Minute || c.Fallbacks != nil || c.RoutingFile != "" {
		t.Errorf("routing defaults: %+v", c)
	}
	p := c.Providers["openai"]
	if p.APIKey != "sk-one" || p.BaseURL != "http://127.0.0.1:9/v1" || len(p.Endpoints) != 1 ||
		p.Endpoints[0] != (config.Endpoint{BaseURL: "http://127.0.0.1:9/v1", APIKey: "sk-one", Weight: 1}) {
		t.Errorf("single key: %+v", p)
	}
	if g := c.Providers["google"]; g.APIKey != "" || len(g.Endpoints) != 1 || g.Endpoints[0].BaseURL != "https://generativelanguage.googleapis.com" {
		t.Errorf("no key: %+v", g)
	}
	c, err = config.FromLookup(lookup(map[string]string{"BEAVER_UPSTREAM_RETRIES": "0", "BEAVER_UPSTREAM_BREAKER_FAILURES": "0",
		"BEAVER_UPSTREAM_RETRY_BUDGET": "3s", "BEAVER_UPSTREAM_BREAKER_COOLDOWN": "5s", "BEAVER_UPSTREAM_KEY_COOLDOWN": "2m",
		"BEAVER_UPSTREAM_BREAKER_MIN_REQUESTS": "20", "BEAVER_UPSTREAM_BREAKER_FAILURE_RATE": "25%",
		"BEAVER_UPSTREAM_BREAKER_MIN_ACCOUNTS": "1", "BEAVER_UPSTREAM_BREAKER_WINDOW": "2m", "BEAVER_UPSTREAM_QUICK_500": "0"}))
	if err != nil || c.UpstreamRetries != 0 || c.BreakerFailures != 0 || c.UpstreamRetryBudget != 3*time.Second ||
		c.BreakerCooldown != 5*time.Second || c.KeyCooldown != 2*time.Minute || c.BreakerMinRequests != 20 ||
		c.BreakerFailureRate != 0.25 || c.BreakerMinAccounts != 1 || c.BreakerWindow != 2*time.Minute || c.Quick500 != 0 {
		t.Errorf("overrides: %+v %v", c, err)
	}
	if c, err := config.FromLookup(lookup(map[string]string{"BEAVER_UPSTREAM_BREAKER_FAILURE_RATE": "0.75"})); err != nil || c.BreakerFailureRate != 0.75 {
		t.Errorf("rate 0.75: %v %v", c, err)
	}
}

// Comma-separated keys and base URLs are several endpoints: one base URL
// with several keys, several base URLs with one key, or pairs.
func TestSeveralKeysAndBaseURLs(t *testing.T) {
	c, err := config.FromLookup(lookup(map[string]string{
		"OPENAI_API_KEY":     "sk-a, sk-b,",
		"ANTHROPIC_API_KEY":  "sk-ant",
		"ANTHROPIC_BASE_URL": "http://127.0.0.1:1/,http://127.0.0.1:2",
		"GEMINI_API_KEY":     "g1,g2",
		"GEMINI_BASE_URL":    "http://127.0.0.1:3,http://127.0.0.1:4",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]config.Endpoint{
		"openai":    {{BaseURL: "https://api.openai.com/v1", APIKey: "sk-a", Weight: 1}, {BaseURL: "https://api.openai.com/v1", APIKey: "sk-b", Weight: 1}},
		"anthropic": {{BaseURL: "http://127.0.0.1:1", APIKey: "sk-ant", Weight: 1}, {BaseURL: "http://127.0.0.1:2", APIKey: "sk-ant", Weight: 1}},
		"google":    {{BaseURL: "http://127.0.0.1:3", APIKey: "g1", Weight: 1}, {BaseURL: "http://127.0.0.1:4", APIKey: "g2", Weight: 1}},
	}
	for name, eps := range want {
		p := c.Providers[name]
		if !reflect.DeepEqual(p.Endpoints, eps) || p.APIKey != eps[0].APIKey || p.BaseURL != eps[0].BaseURL {
			t.Errorf("%s: %+v", name, p)
		}
	}
	for k, v := range map[string]map[string]string{
		"mismatch":  {"OPENAI_API_KEY": "a,b", "OPENAI_BASE_URL": "http://x,http://y,http://z"},
		"bad URL":   {"XAI_BASE_URL": "http://x,not a url"},
		"no URL":    {"XAI_BASE_URL": ",,"},
		"retries":   {"BEAVER_UPSTREAM_RETRIES": "-1"},
		"budget":    {"BEAVER_UPSTREAM_RETRY_BUDGET": "0s"},
		"breaker":   {"BEAVER_UPSTREAM_BREAKER_FAILURES": "five"},
		"rate 0":    {"BEAVER_UPSTREAM_BREAKER_FAILURE_RATE": "0"},
		"rate 150%": {"BEAVER_UPSTREAM_BREAKER_FAILURE_RATE": "150%"},
		"rate word": {"BEAVER_UPSTREAM_BREAKER_FAILURE_RATE": "half"},
		"accounts":  {"BEAVER_UPSTREAM_BREAKER_MIN_ACCOUNTS": "-2"},
		"window":    {"BEAVER_UPSTREAM_BREAKER_WINDOW": "0s"},
		"quick 500": {"BEAVER_UPSTREAM_QUICK_500": "-1s"},
		"cooldown":  {"BEAVER_UPSTREAM_KEY_COOLDOWN": "soon"},
		"no file":   {"BEAVER_ROUTING_FILE": filepath.Join(t.TempDir(), "missing.json")},
		"fallbacks": {"BEAVER_FALLBACKS": "openai/gpt-4o-mini"},
	} {
		if _, err := config.FromLookup(lookup(v)); err == nil {
			t.Errorf("%s: %v accepted", k, v)
		}
	}
}

// Fallback chains come from BEAVER_FALLBACKS and the routing file, which
// can also give a provider's endpoints with weights and keys named by
// environment variable.
func TestFallbacksAndRoutingFile(t *testing.T) {
	c, err := config.FromLookup(lookup(map[string]string{"BEAVER_FALLBACKS": " openai/gpt-4o-mini = anthropic/claude-3-5-haiku-20241022, google/gemini-1.5-flash ; openai/gpt-4o=anthropic/claude-3-5-sonnet-20241022"}))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Fallbacks, map[string][]string{
		"openai/gpt-4o-mini": {"anthropic/claude-3-5-haiku-20241022", "google/gemini-1.5-flash"},
		"openai/gpt-4o":      {"anthropic/claude-3-5-sonnet-20241022"},
	}) {
		t.Errorf("fallbacks %v", c.Fallbacks)
	}
	for _, bad := range []string{"gpt-4o=anthropic/claude", "openai/gpt-4o=claude", "openai/gpt-4o=openai/gpt-4o",
		"openai/gpt-4o=a/1,a/2,a/3,a/4,a/5,a/6", "openai/gpt-4o=a/1,a/1"} {
		if _, err := config.FromLookup(lookup(map[string]string{"BEAVER_FALLBACKS": bad})); err == nil {
			t.Errorf("BEAVER_FALLBACKS=%s accepted", bad)
		}
	}

	dir := t.TempDir()
	file := func(body string) string {
		p := filepath.Join(dir, "routing.json")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	path := file(`{
		"providers": {"openai": {"endpoints": [
			{"api_key_env": "KEY_A", "weight": 3},
			{"base_url": "http://127.0.0.1:5/v1/", "api_key": "sk-inline"}
		]}},
		"fallbacks": {"openai/gpt-4o-mini": ["google/gemini-1.5-flash"], "openai/gpt-4o": ["openai/gpt-4o-mini"]}
	}`)
	c, err = config.FromLookup(lookup(map[string]string{"BEAVER_ROUTING_FILE": path, "KEY_A": "sk-from-env",
		"OPENAI_API_KEY": "sk-ignored", "BEAVER_FALLBACKS": "openai/gpt-4o=anthropic/claude-3-5-haiku-20241022"}))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Providers["openai"]
	if !reflect.DeepEqual(p.Endpoints, []config.Endpoint{{BaseURL: "https://api.openai.com/v1", APIKey: "sk-from-env", Weight: 3},
		{BaseURL: "http://127.0.0.1:5/v1", APIKey: "sk-inline", Weight: 1}}) || p.APIKey != "sk-from-env" {
		t.Errorf("file endpoints: %+v", p)
	}
	if !reflect.DeepEqual(c.Fallbacks, map[string][]string{"openai/gpt-4o-mini": {"google/gemini-1.5-flash"},
		"openai/gpt-4o": {"anthropic/claude-3-5-haiku-20241022"}}) {
		t.Errorf("file + env fallbacks: %v", c.Fallbacks)
	}
	for _, bad := range []string{
		`{"providers": {"cohere": {"endpoints": [{"api_key": "k"}]}}}`,
		`{"providers": {"openai": {"endpoints": [{"api_key_env": "UNSET_KEY"}]}}}`,
		`{"providers": {"openai": {"endpoints": [{"api_key": "k", "api_key_env": "KEY_A"}]}}}`,
		`{"providers": {"openai": {"endpoints": [{"api_key": "k", "weight": 0}]}}}`,
		`{"providers": {"openai": {"endpoints": [{"base_url": "ftp://x"}]}}}`,
		`{"providers": {"openai": {"endpoints": []}}}`,
		`{"providers": {"openai": {"keys": ["k"]}}}`,
		`{"fallbacks": {"openai/gpt-4o": "anthropic/claude"}}`,
		`not json`,
	} {
		if _, err := config.FromLookup(lookup(map[string]string{"BEAVER_ROUTING_FILE": file(bad), "KEY_A": "x"})); err == nil {
			t.Errorf("routing file %s accepted", bad)
		}
	}
}

// PERPLEXITY_API_FORMAT picks Perplexity's API: its Agent API
// (openai-responses, the default) or its legacy Chat Completions (openai);
// a routing file's endpoints keep it. No other provider has the choice.
func TestPerplexityAPIFormat(t *testing.T) {
	c, err := config.FromLookup(lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Providers["perplexity"].Format; got != "openai-responses" {
		t.Errorf("default format %q", got)
	}
	if got := c.Providers["openai"].Format; got != "" {
		t.Errorf("openai format %q", got)
	}
	path := filepath.Join(t.TempDir(), "routing.json")
	if err := os.WriteFile(path, []byte(`{"providers": {"perplexity": {"endpoints": [{"api_key": "k1"}, {"api_key": "k2"}]}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = config.FromLookup(lookup(map[string]string{"PERPLEXITY_API_FORMAT": "openai", "BEAVER_ROUTING_FILE": path}))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Providers["perplexity"]; p.Format != "openai" || len(p.Endpoints) != 2 {
		t.Errorf("legacy format: %+v", p)
	}
	for _, bad := range []string{"anthropic", "responses", "OPENAI"} {
		_, err := config.FromLookup(lookup(map[string]string{"PERPLEXITY_API_FORMAT": bad}))
		if err == nil || !strings.Contains(err.Error(), "PERPLEXITY_API_FORMAT") {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
}

func TestFineTuningPollInterval(t *testing.T) {
	c, err := config.FromLookup(lookup(nil))
	if err != nil || c.FineTuningPollInterval != time.Minute {
		t.Fatalf("default %v (%v), want 1m", c.FineTuningPollInterval, err)
	}
	if c, err = config.FromLookup(lookup(map[string]string{"BEAVER_FINE_TUNING_POLL_INTERVAL": "200ms"})); err != nil ||
		c.FineTuningPollInterval != 200*time.Millisecond {
		t.Fatalf("200ms: %v (%v)", c.FineTuningPollInterval, err)
	}
	for _, v := range []string{"0s", "-1s", "often"} {
		if _, err := config.FromLookup(lookup(map[string]string{"BEAVER_FINE_TUNING_POLL_INTERVAL": v})); err == nil {
			t.Errorf("BEAVER_FINE_TUNING_POLL_INTERVAL=%s accepted", v)
		}
	}
}

func TestIdentityProviders(t *testing.T) {
	c, err := config.FromLookup(lookup(nil))
	if err != nil || c.OAuthGoogle.Enabled() || c.OAuthGitHub.Enabled() || c.OIDC.Enabled() {
		t.Fatalf("providers on by default: %+v %v", c, err)
	}
	if c.OAuthGoogle.Issuer != "https://accounts.google.com" || c.OAuthGitHub.Issuer != "https://github.com" || c.OAuthGitHub.APIURL != "https://api.github.com" {
		t.Fatalf("defaults %+v %+v", c.OAuthGoogle, c.OAuthGitHub)
	}
	c, err = config.FromLookup(lookup(map[string]string{"BEAVER_OIDC_ISSUER": "https://id.example.com", "BEAVER_OIDC_CLIENT_ID": "a",
		"BEAVER_OIDC_CLIENT_SECRET": "b", "BEAVER_OAUTH_GITHUB_CLIENT_ID": "c", "BEAVER_OAUTH_GITHUB_CLIENT_SECRET": "d"}))
	if err != nil || !c.OIDC.Enabled() || !c.OAuthGitHub.Enabled() || c.OIDC.Issuer != "https://id.example.com" {
		t.Fatalf("configured: %+v %v", c, err)
	}
	for _, bad := range []map[string]string{
		{"BEAVER_OAUTH_GOOGLE_CLIENT_ID": "x"},
		{"BEAVER_OAUTH_GITHUB_CLIENT_SECRET": "x"},
		{"BEAVER_OIDC_CLIENT_ID": "x", "BEAVER_OIDC_CLIENT_SECRET": "y"},
	} {
		if _, err := config.FromLookup(lookup(bad)); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
