package api_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/db"
)

func TestKeyLifecycle(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		exp := time.Now().UTC().Add(48 * time.Hour).Truncate(time.Second)
		r := h.do("POST", "/api-keys", u.Token, map[string]any{
			"name": "ci", "spend_limit_usd": "12.345678", "limit_reset": "monthly", "rpm_limit": 30,
			"expires_at": exp.Format(time.RFC3339), "allowed_models": []string{"openai/gpt-4o-mini", "anthropic/claude-3-5-haiku"},
			"allowed_ips": []string{"203.0.113.7", "10.0.0.0/8", "2001:db8::/32"},
		}).want(201)
		id, secret := r.str("id"), r.str("key")
		if !strings.HasPrefix(secret, "sk-beaver-") || !strings.HasPrefix(secret, r.str("prefix")) || len(r.str("prefix")) >= len(secret) {
			t.Fatalf("key/prefix: %s", r.Raw)
		}
		for _, want := range []string{`"spend_limit_usd":12.345678`, `"spend_limit_micros":12345678`, `"limit_reset":"monthly"`,
			`"rpm_limit":30`, `"active":true`, `"last_used_at":null`, `"expires_at":"` + exp.Format(time.RFC3339) + `"`,
			`"allowed_models":["openai/gpt-4o-mini","anthropic/claude-3-5-haiku"]`,
			`"allowed_ips":["203.0.113.7","10.0.0.0/8","2001:db8::/32"]`, `"name":"ci"`} {
			if !bytes.Contains(r.Raw, []byte(want)) {
				t.Errorf("create answer lacks %s: %s", want, r.Raw)
			}
		}
		// The secret is stored hashed only and never shown again.
		if n := h.scalar("SELECT COUNT(*) FROM api_keys WHERE key_hash = ?", secret); n != 0 {
			t.Fatal("secret stored in clear")
		}
		g := h.do("GET", "/api-keys/"+id, u.Token, nil).want(200)
		if _, ok := g.JSON["key"]; ok {
			t.Fatalf("GET shows the secret: %s", g.Raw)
		}
		if g.num("usage.spent_micros") != 0 || g.num("usage.requests_this_minute") != 0 || g.str("usage.period_start") == "" ||
			!bytes.Contains(g.Raw, []byte(`"spent_usd":0`)) {
			t.Fatalf("usage: %s", g.Raw)
		}
		// requests_this_minute reads the inference limiter's counter of the key.
		for i := 0; i < 3; i++ {
			h.Limiter.Allow(context.Background(), "key:"+id, 30, time.Minute)
		}
		if g := h.do("GET", "/api-keys/"+id, u.Token, nil).want(200); g.num("usage.requests_this_minute") != 3 {
			t.Fatalf("requests_this_minute: %s", g.Raw)
		}
		// The secret authenticates, and last_used_at gets recorded.
		h.do("GET", "/auth/me", secret, nil).want(200)
		eventually(t, 5*time.Second, "last_used_at set", func() bool {
			return h.do("GET", "/api-keys/"+id, u.Token, nil).get("last_used_at") != nil
		})

		// A plain key, both create routes; the body is optional for /generate.
		plain := h.do("POST", "/api-keys/generate", u.Token, nil).want(201)
		for _, want := range []string{`"spend_limit_usd":null`, `"spend_limit_micros":null`, `"limit_reset":"none"`,
			`"rpm_limit":null`, `"expires_at":null`, `"allowed_models":null`, `"allowed_ips":null`} {
			if !bytes.Contains(plain.Raw, []byte(want)) {
				t.Errorf("plain key lacks %s: %s", want, plain.Raw)
			}
		}

		// PATCH: null clears a policy, absent leaves it alone.
		p := h.do("PATCH", "/api-keys/"+id, u.Token, `{"name":"renamed","spend_limit_usd":null,"allowed_ips":null,"rpm_limit":0}`).want(200)
		for _, want := range []string{`"name":"renamed"`, `"spend_limit_usd":null`, `"allowed_ips":null`, `"rpm_limit":0`,
			`"limit_reset":"monthly"`, `"allowed_models":["openai/gpt-4o-mini","anthropic/claude-3-5-haiku"]`} {
			if !bytes.Contains(p.Raw, []byte(want)) {
				t.Errorf("patch answer lacks %s: %s", want, p.Raw)
			}
		}
		h.do("PATCH", "/api-keys/"+id, u.Token, `{"expires_at":null,"allowed_models":null,"limit_reset":null,"spend_limit_usd":5}`).want(200)
		g = h.do("GET", "/api-keys/"+id, u.Token, nil).want(200)
		if g.get("expires_at") != nil || g.get("allowed_models") != nil || g.str("limit_reset") != "none" || g.num("spend_limit_micros") != 5_000_000 {
			t.Fatalf("after clearing: %s", g.Raw)
		}

		// Deactivated keys are refused at once, and come back.
		h.do("PATCH", "/api-keys/"+id, u.Token, `{"active":false}`).want(200)
		h.do("GET", "/auth/me", secret, nil).wantError(401, "invalid_api_key")
		h.do("PATCH", "/api-keys/"+id, u.Token, `{"active":true}`).want(200)
		h.do("GET", "/auth/me", secret, nil).want(200)

		// Rotate: same id, new secret; the old one is refused at once.
		rot := h.do("POST", "/api-keys/"+id+"/rotate", u.Token, nil).want(200)
		if rot.str("id") != id || rot.str("key") == secret || rot.str("name") != "renamed" {
			t.Fatalf("rotate: %s", rot.Raw)
		}
		h.do("GET", "/auth/me", secret, nil).wantError(401, "invalid_api_key")
		secret2 := rot.str("key")
		h.do("GET", "/auth/me", secret2, nil).want(200)

		// Delete: refused at once, gone from the list, 404 afterwards.
		if n := len(h.do("GET", "/api-keys", u.Token, nil).want(200).list("data")); n != 2 {
			t.Fatalf("%d keys listed, want 2", n)
		}
		h.do("DELETE", "/api-keys/"+id, u.Token, nil).want(204)
		h.do("GET", "/auth/me", secret2, nil).wantError(401, "invalid_api_key")
		l := h.do("GET", "/api-keys", u.Token, nil).want(200)
		if data := l.list("data"); len(data) != 1 || l.str("data.0.id") != plain.str("id") {
			t.Fatalf("list after delete: %s", l.Raw)
		}
		for _, c := range []struct{ method, path string }{{"GET", ""}, {"PATCH", ""}, {"DELETE", ""}, {"POST", "/rotate"}} {
			h.do(c.method, "/api-keys/"+id+c.path, u.Token, `{"name":"x"}`).wantError(404, "not_found")
		}
	})
}

func TestKeyValidation(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		past := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
		bad := []string{
			`{"name":"x","expires_at":"` + past + `"}`,
			`{"name":"x","expires_at":"tomorrow"}`,
			`{"name":"x","allowed_ips":["300.1.1.1"]}`,
			`{"name":"x","allowed_ips":["10.0.0.0/33"]}`,
			`{"name":"x","allowed_ips":["example.com"]}`,
			`{"name":"x","allowed_ips":[]}`,
			`{"name":"x","allowed_models":["gpt-4o"]}`,
			`{"name":"x","allowed_models":["openai/"]}`,
			`{"name":"x","allowed_models":["/gpt-4o"]}`,
			`{"name":"x","allowed_models":["openai/gpt 4o"]}`,
			`{"name":"x","allowed_models":[]}`,
			`{"name":"x","allowed_models":"openai/gpt-4o"}`,
			`{"name":"x","limit_reset":"hourly"}`,
			`{"name":"x","rpm_limit":-1}`,
			`{"name":"x","rpm_limit":1.5}`,
			`{"name":"x","spend_limit_usd":-1}`,
			`{"name":"x","spend_limit_usd":"1.0000001"}`,
			`{"name":"x","spend_limit_usd":"abc"}`,
			`{"name":"` + strings.Repeat("k", 201) + `"}`,
		}
		for _, b := range bad {
			r := h.do("POST", "/api-keys", u.Token, b)
			if r.Status != 400 {
				t.Errorf("create %s: status %d: %s", b, r.Status, r.Raw)
				continue
			}
			r.wantError(400, "invalid_request")
		}
		if n := h.scalar("SELECT COUNT(*) FROM api_keys"); n != 0 {
			t.Fatalf("%d keys created by refused requests", n)
		}
		id, _ := h.createKey(u, nil)
		for _, b := range append(bad[:len(bad)-1],
			`{"key_hash":"x"}`, `{"account_id":"acct_x"}`, `{"spent_micros":0}`, `{"prefix":"sk"}`, `{"id":"key_x"}`,
			`{"active":null}`, `{"active":"yes"}`, `{"created_at":"2020-01-01T00:00:00Z"}`) {
			r := h.do("PATCH", "/api-keys/"+id, u.Token, b)
			if r.Status != 400 {
				t.Errorf("patch %s: status %d: %s", b, r.Status, r.Raw)
				continue
			}
			r.wantError(400, "invalid_request")
		}
		// Addresses are kept in canonical form.
		r := h.do("PATCH", "/api-keys/"+id, u.Token, `{"allowed_ips":["10.1.2.3/8"," ::ffff:1.2.3.4 ","2001:DB8::1"]}`).want(200)
		if !bytes.Contains(r.Raw, []byte(`"allowed_ips":["10.0.0.0/8","::ffff:1.2.3.4","2001:db8::1"]`)) {
			t.Fatalf("canonical IPs: %s", r.Raw)
		}
	})
}

// Account A can never read, change, rotate or delete B's keys: 404, as if
// the key did not exist.
func TestKeysObjectLevelAuthorization(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		a, b := h.newUser(), h.newUser()
		bKey, bSecret := h.createKey(b, map[string]any{"name": "b's"})
		_, aSecret := h.createKey(a, nil)
		for _, tok := range []string{a.Token, aSecret} {
			h.do("GET", "/api-keys/"+bKey, tok, nil).wantError(404, "not_found")
		}
		h.do("PATCH", "/api-keys/"+bKey, a.Token, `{"name":"mine now","active":false}`).wantError(404, "not_found")
		h.do("POST", "/api-keys/"+bKey+"/rotate", a.Token, nil).wantError(404, "not_found")
		h.do("DELETE", "/api-keys/"+bKey, a.Token, nil).wantError(404, "not_found")
		unknown := h.do("GET", "/api-keys/key_doesnotexist", a.Token, nil).wantError(404, "not_found")
		_ = unknown
		for _, tok := range []string{a.Token, aSecret} {
			l := h.do("GET", "/api-keys", tok, nil).want(200)
			if bytes.Contains(l.Raw, []byte(bKey)) {
				t.Fatalf("A's list shows B's key: %s", l.Raw)
			}
		}
		// B's key is untouched and works.
		g := h.do("GET", "/api-keys/"+bKey, b.Token, nil).want(200)
		if g.str("name") != "b's" || g.get("active") != true {
			t.Fatalf("B's key changed: %s", g.Raw)
		}
		if me := h.do("GET", "/auth/me", bSecret, nil).want(200); me.str("account.id") != b.ID {
			t.Fatalf("B's key acts as %s", me.str("account.id"))
		}
	})
}

// Deleting, rotating or deactivating a key on one replica makes every
// replica refuse it by the time the change is answered: a second API server
// over the same database, with its own caches, has applied it. For
// PostgreSQL the same runs over LISTEN/NOTIFY between two buses, as between
// two processes, without waiting for their listeners to connect: the bus
// only speeds up what the replicas' heartbeats guarantee.
func TestKeyInvalidationAcrossReplicas(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		t.Run("local bus", func(t *testing.T) {
			h := newHarness(t, dialect)
			testReplicaInvalidation(t, h, h.replica(h.Bus))
		})
		if dialect != db.Postgres {
			return
		}
		t.Run("postgres bus", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			h := newHarness(t, dialect, harnessOpts{Bus: func(t *testing.T, d *db.DB, url string) bus.Bus {
				return bus.NewPostgres(ctx, d.DB, url, testLogger())
			}})
			d2, err := db.Open(h.DBURL)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d2.Close() })
			testReplicaInvalidation(t, h, h.replica(bus.NewPostgres(ctx, d2.DB, h.DBURL, testLogger())))
		})
	})
}

func testReplicaInvalidation(t *testing.T, h, r *harness) {
	u := h.newUser()
	refused := func(secret string) {
		t.Helper()
		r.do("GET", "/auth/me", secret, nil).wantError(401, "invalid_api_key")
	}
	// Both replicas have served (and cached) each key before it changes.
	keys := map[string][2]string{}
	for _, name := range []string{"deleted", "rotated", "deactivated"} {
		id, secret := h.createKey(u, map[string]any{"name": name})
		h.do("GET", "/auth/me", secret, nil).want(200)
		r.do("GET", "/auth/me", secret, nil).want(200)
		keys[name] = [2]string{id, secret}
	}
	h.do("DELETE", "/api-keys/"+keys["deleted"][0], u.Token, nil).want(204)
	refused(keys["deleted"][1])

	rot := h.do("POST", "/api-keys/"+keys["rotated"][0]+"/rotate", u.Token, nil).want(200)
	refused(keys["rotated"][1])
	r.do("GET", "/auth/me", rot.str("key"), nil).want(200)

	h.do("PATCH", "/api-keys/"+keys["deactivated"][0], u.Token, `{"active":false}`).want(200)
	refused(keys["deactivated"][1])

	// Logout on one replica ends the session on the other.
	s := h.login(u.Email, testPassword)
	r.do("GET", "/auth/me", s.Token, nil).want(200)
	h.do("POST", "/auth/logout", s.Token, nil).want(204)
	r.do("GET", "/auth/me", s.Token, nil).wantError(401, "unauthorized")
}

// A replica on a bus of its own hears of no change, yet refuses a deleted
// key once the delete is answered: the delete waited for its heartbeat to
// acknowledge it.
func TestReplicaWithoutBusRefusesOnceAnswered(t *testing.T) {
	h := newHarness(t, db.SQLite)
	isolated := h.replica(bus.NewLocal())
	u := h.newUser()
	id, secret := h.createKey(u, nil)
	isolated.do("GET", "/auth/me", secret, nil).want(200)
	h.do("DELETE", "/api-keys/"+id, u.Token, nil).want(204)
	h.do("GET", "/auth/me", secret, nil).wantError(401, "invalid_api_key")
	isolated.do("GET", "/auth/me", secret, nil).wantError(401, "invalid_api_key")
}
