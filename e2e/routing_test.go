package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/db"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

// The routing settings reach the real binary: BEAVER_FALLBACKS,
// BEAVER_UPSTREAM_RETRIES and BEAVER_UPSTREAM_BREAKER_FAILURES steer a
// request that fails on its first model,
// several keys in ANTHROPIC_API_KEY are used in turn (equal weights: each
// gets exactly half of an even number of attempts) and shown only by
// fingerprint, and the charge is the answering model's, once.
func TestRoutingSettingsInTheBinary(t *testing.T) {
	t.Setenv("BEAVER_FALLBACKS", "openai/gpt-4o-mini=anthropic/claude-3-5-haiku-20241022")
	t.Setenv("BEAVER_UPSTREAM_RETRIES", "1")
	t.Setenv("BEAVER_UPSTREAM_BREAKER_FAILURES", "0") // off (openai fails 12 times in a row here, for one account)
	t.Setenv("ANTHROPIC_API_KEY", "sk-e2e-key-a,sk-e2e-key-b")
	_, dbURL := testenv.OpenURL(t, db.SQLite)
	fake := fakeupstream.New(fakeupstream.Options{})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	p := start(t, dbURL, t.TempDir(), srv.URL)

	_, login, _ := p.call("POST", "/auth/login", "", map[string]string{"email": adminEmail, "password": adminPassword})
	admin, _ := login["access_token"].(string)
	p.revive(t, admin, "anthropic/claude-3-5-haiku-20241022")
	st, acct, _ := p.call("POST", "/admin/accounts", admin, map[string]any{"email": "routing@e2e.test", "password": "routing-test-password-1"})
	if st != 201 {
		t.Fatalf("create account: %d %v", st, acct)
	}
	id := acct["account"].(map[string]any)["id"].(string)
	p.call("POST", "/admin/top-up", admin, map[string]any{"account_id": id, "amount_usd": "5"})
	_, k, _ := p.call("POST", "/admin/api-keys", admin, map[string]any{"account_id": id, "name": "routing"})
	key := k["key"].(string)

	for i := range 6 {
		text := "hi [[fail-first:2]] " + strconv.Itoa(i)
		st, r, h := p.call("POST", "/v1/chat/completions", key, map[string]any{"model": "openai/gpt-4o-mini",
			"messages": []any{map[string]string{"role": "user", "content": text}}})
		want := "openai/gpt-4o-mini:503, openai/gpt-4o-mini:503, anthropic/claude-3-5-haiku-20241022:200"
		if st != 200 || r["model"] != "anthropic/claude-3-5-haiku-20241022" || h.Get("X-Beaver-Attempts") != want {
			t.Fatalf("request %d: %d %v, attempts %q", i, st, r, h.Get("X-Beaver-Attempts"))
		}
		cost, _ := strconv.ParseInt(h.Get("X-Beaver-Cost-Micros"), 10, 64)
		d, err := db.Open(dbURL)
		if err != nil {
			t.Fatal(err)
		}
		var logs []models.UsageLog
		d.Where("account_id = ?", id).Order("created_at").Find(&logs)
		var e models.LedgerEntry
		lerr := d.Where("reference = ?", "charge:"+r["id"].(string)).Take(&e).Error
		d.Close()
		if len(logs) != i+1 || logs[i].Model != "anthropic/claude-3-5-haiku-20241022" || logs[i].ChargedMicros != cost || lerr != nil || -e.AmountMicros != cost {
			t.Fatalf("request %d: %d usage logs, last %+v, ledger %d (%v), shown %d", i, len(logs), logs[len(logs)-1], -e.AmountMicros, lerr, cost)
		}
	}
	keys := map[string]int{}
	for _, r := range fake.Requests() {
		if r.Path == "/v1/messages" {
			keys[r.Header.Get("x-api-key")]++
		}
	}
	if keys["sk-e2e-key-a"] != 3 || keys["sk-e2e-key-b"] != 3 || len(keys) != 2 {
		t.Errorf("anthropic keys used: %v, want 3 each (round robin)", keys)
	}
	res, err := httpGet(p.base + "/status/providers")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(res, "sk-e2e") || !strings.Contains(res, `"anthropic/claude-3-5-haiku-20241022"`) || strings.Count(res, `"index":`) < 7 {
		t.Errorf("/status/providers: %s", res)
	}
}

// A malformed routing setting stops the process at start with the
// config's error.
func TestBadRoutingSettingsStopTheStart(t *testing.T) {
	cmd := exec.Command(binary, "api")
	cmd.Env = append(cmd.Environ(), "BEAVER_FALLBACKS=gpt-4o-mini", "BEAVER_ADDR="+freeAddr(t), "BEAVER_DATA_DIR="+t.TempDir(),
		"BEAVER_DATABASE_URL=sqlite://"+t.TempDir()+"/b.db", "TEMPORAL_ADDRESS=127.0.0.1:1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "BEAVER_FALLBACKS") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
}

func httpGet(url string) (string, error) {
	res, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return string(b), err
}
