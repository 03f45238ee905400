// Package e2e runs the real beaver binary as a child process.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/db"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "beaver-e2e-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "beaver")
	build := exec.Command("go", "build", "-tags", "nomsgpack", "-o", binary, "../cmd/beaver") // as the Makefile builds it
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build beaver:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

const adminEmail, adminPassword = "admin@e2e.test", "e2e-admin-password-1"

// start runs `beaver api` against dbURL with every provider on upstream.
func start(t *testing.T, dbURL, dataDir, upstream string) *proc {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(binary, "api")
	cmd.Env = append(os.Environ(), "BEAVER_ADDR="+addr, "BEAVER_DATABASE_URL="+dbURL, "BEAVER_DATA_DIR="+dataDir,
		"BEAVER_ADMIN_EMAIL="+adminEmail, "BEAVER_ADMIN_PASSWORD="+adminPassword, "BEAVER_AUTH_LIMIT=1000",
		"BEAVER_ARGON2_MEMORY_KIB=1024", "BEAVER_ARGON2_TIME=1", "BEAVER_ARGON2_THREADS=1",
		"OPENAI_BASE_URL="+upstream, "ANTHROPIC_BASE_URL="+upstream, "GEMINI_BASE_URL="+upstream,
		"TEMPORAL_ADDRESS=127.0.0.1:1")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, base: "http://" + addr}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		if t.Failed() {
			t.Logf("beaver output:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if res, err := http.Get(p.base + "/health"); err == nil {
			res.Body.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("beaver did not start:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// revive returns retired models of the default catalog to service (PATCH
// active: true, as an admin would): the e2e tests use the 2024 models,
// which the fake upstream answers.
func (p *proc) revive(t *testing.T, admin string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if st, r, _ := p.call("PATCH", "/admin/models/"+id, admin, map[string]any{"active": true}); st != 200 {
			t.Fatalf("revive %s: %d %v", id, st, r)
		}
	}
}

func (p *proc) call(method, path, token string, body any) (int, map[string]any, http.Header) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out, res.Header
}

// A charge a client was shown is committed before it was shown: killing
// the process right after loses none of them.
func TestKillAfterResponsesLosesNoShownCharge(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			_, dbURL := testenv.OpenURL(t, dialect)
			fake := httptest.NewServer(fakeupstream.New(fakeupstream.Options{DisableRecording: true}))
			defer fake.Close()
			dataDir := t.TempDir() // holds the generated BEAVER_SECRET: the restart needs the same
			p := start(t, dbURL, dataDir, fake.URL)

			_, login, _ := p.call("POST", "/auth/login", "", map[string]string{"email": adminEmail, "password": adminPassword})
			admin, _ := login["access_token"].(string)
			p.revive(t, admin, "anthropic/claude-3-5-haiku-20241022", "google/gemini-1.5-flash")
			st, acct, _ := p.call("POST", "/admin/accounts", admin, map[string]any{"email": "kill@e2e.test", "password": "kill-test-password-1", "plan": "enterprise"})
			if st != 201 {
				t.Fatalf("create account: %d %v", st, acct)
			}
			id := acct["account"].(map[string]any)["id"].(string)
			p.call("POST", "/admin/top-up", admin, map[string]any{"account_id": id, "amount_usd": "50"})
			_, k, _ := p.call("POST", "/admin/api-keys", admin, map[string]any{"account_id": id, "name": "kill"})
			key := k["key"].(string)

			type shown struct {
				gen  string
				cost int64
			}
			var mu sync.Mutex
			var seen []shown
			var wg sync.WaitGroup
			for i := 0; i < 60; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					model := []string{"openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-20241022", "google/gemini-1.5-flash"}[i%3]
					st, r, h := p.call("POST", "/v1/chat/completions", key, map[string]any{"model": model,
						"messages": []any{map[string]string{"role": "user", "content": "hi [[words:4]]"}}})
					if st != 200 {
						return
					}
					cost, _ := strconv.ParseInt(h.Get("X-Beaver-Cost-Micros"), 10, 64)
					mu.Lock()
					seen = append(seen, shown{r["id"].(string), cost})
					mu.Unlock()
				}(i)
			}
			wg.Wait()
			// No graceful shutdown: nothing gets a chance to flush.
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_, _ = p.cmd.Process.Wait()
			if len(seen) < 50 {
				t.Fatalf("only %d of 60 requests succeeded", len(seen))
			}
			d, err := db.Open(dbURL)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			for _, s := range seen {
				var log models.UsageLog
				if err := d.Where("id = ?", s.gen).Take(&log).Error; err != nil {
					t.Fatalf("shown generation %s has no usage log after the kill", s.gen)
				}
				var e models.LedgerEntry
				if err := d.Where("reference = ?", "charge:"+s.gen).Take(&e).Error; err != nil || -e.AmountMicros != s.cost || log.ChargedMicros != s.cost {
					t.Fatalf("generation %s: shown %d, ledger %d, log %d (%v)", s.gen, s.cost, -e.AmountMicros, log.ChargedMicros, err)
				}
			}
			var a models.Account
			d.Where("id = ?", id).Take(&a)
			var sum, leases int64
			d.Model(&models.LedgerEntry{}).Where("account_id = ?", id).Select("COALESCE(SUM(amount_micros),0)").Scan(&sum)
			d.Model(&models.BalanceLease{}).Where("account_id = ?", id).Select("COALESCE(SUM(amount_micros),0)").Scan(&leases)
			if sum != a.BalanceMicros || leases != a.ReservedMicros {
				t.Fatalf("after kill: balance %d sum %d reserved %d leases %d", a.BalanceMicros, sum, a.ReservedMicros, leases)
			}
			// The dead instance's lease is returned once it expires; a new
			// process serves the same account at once meanwhile.
			p2 := start(t, dbURL, dataDir, fake.URL)
			st, _, _ = p2.call("POST", "/v1/chat/completions", key, map[string]any{"model": "openai/gpt-4o-mini",
				"messages": []any{map[string]string{"role": "user", "content": "after"}}})
			if st != 200 {
				t.Fatalf("restarted instance: %d", st)
			}
		})
	}
}
