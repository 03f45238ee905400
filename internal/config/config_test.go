package config_test

import (
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
	if !c.PGSynchronousCommit {
		t.Error("settlement commits must wait for PostgreSQL's disk by default")
	}
	if c.BodyReadTimeout != 30*time.Second || c.MaxBodiesPerIP != 32 || c.MaxBodiesInFlight != 1024 {
		t.Errorf("body defaults: timeout %s, per IP %d, in flight %d", c.BodyReadTimeout, c.MaxBodiesPerIP, c.MaxBodiesInFlight)
	}
}

func TestOverridesAndErrors(t *testing.T) {
	c, err := config.FromLookup(lookup(map[string]string{"GEMINI_BASE_URL": "http://127.0.0.1:9/", "GEMINI_API_KEY": "k",
		"BEAVER_CORS_ORIGINS": "https://a.example, https://b.example/", "TEMPORAL_ADDRESS": "t:7233",
		"BEAVER_UPSTREAM_IDLE_TIMEOUT": "5s", "BEAVER_REQUIRE_VERIFIED_EMAIL": "true",
		"BEAVER_BODY_READ_TIMEOUT": "2s", "BEAVER_MAX_BODIES_PER_IP": "0", "BEAVER_MAX_BODIES_IN_FLIGHT": "7",
		"BEAVER_PG_SYNCHRONOUS_COMMIT": "off"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Providers["google"].BaseURL != "http://127.0.0.1:9" || c.Providers["google"].APIKey != "k" || !c.TemporalAddrSet ||
		len(c.CORSOrigins) != 2 || c.CORSOrigins[1] != "https://b.example" || c.UpstreamIdleTimeout != 5*time.Second || !c.RequireVerifiedEmail ||
		c.BodyReadTimeout != 2*time.Second || c.MaxBodiesPerIP != 0 || c.MaxBodiesInFlight != 7 ||
		c.PGSynchronousCommit {
		t.Fatalf("overrides: %+v", c)
	}
	for k, v := range map[string]string{"BEAVER_MAX_BODY_BYTES": "-1", "BEAVER_AUTH_LIMIT": "ten",
		"BEAVER_REQUIRE_VERIFIED_EMAIL": "maybe", "BEAVER_UPSTREAM_IDLE_TIMEOUT": "soon",
		"BEAVER_BODY_READ_TIMEOUT": "0s", "BEAVER_MAX_BODIES_PER_IP": "-1", "BEAVER_MAX_BODIES_IN_FLIGHT": "many",
		"BEAVER_PG_SYNCHRONOUS_COMMIT": "false"} {
		if _, err := config.FromLookup(lookup(map[string]string{k: v})); err == nil {
			t.Errorf("%s=%s accepted", k, v)
		}
	}
}
