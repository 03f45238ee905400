package e2e

import (
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/db"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

// fundedAccount creates an account with balance usd and one API key per
// name, through p's admin API (enterprise: polling stays under its RPM).
func fundedAccount(t *testing.T, p *proc, email, usd string, keys ...string) (string, []string) {
	t.Helper()
	_, login, _ := p.call("POST", "/auth/login", "", map[string]string{"email": adminEmail, "password": adminPassword})
	admin, _ := login["access_token"].(string)
	st, acct, _ := p.call("POST", "/admin/accounts", admin, map[string]any{"email": email, "password": "lease-test-password-1", "plan": "enterprise"})
	if st != 201 {
		t.Fatalf("create account: %d %v", st, acct)
	}
	id := acct["account"].(map[string]any)["id"].(string)
	if st, r, _ := p.call("POST", "/admin/top-up", admin, map[string]any{"account_id": id, "amount_usd": usd}); st != 201 {
		t.Fatalf("top-up: %d %v", st, r)
	}
	var out []string
	for _, name := range keys {
		st, k, _ := p.call("POST", "/admin/api-keys", admin, map[string]any{"account_id": id, "name": name})
		if st != 201 {
			t.Fatalf("create key: %d %v", st, k)
		}
		out = append(out, k["key"].(string))
	}
	return id, out
}

func chat(p *proc, key, text string) (int, map[string]any) {
	st, r, _ := p.call("POST", "/v1/chat/completions", key, map[string]any{"model": "openai/gpt-4o-mini",
		"messages": []any{map[string]string{"role": "user", "content": text}}})
	return st, r
}

// checkBooks asserts balance = sum(ledger) ≥ 0 and reserved = sum(leases).
func checkBooks(t *testing.T, d *db.DB, account string) models.Account {
	t.Helper()
	var a models.Account
	if err := d.Where("id = ?", account).Take(&a).Error; err != nil {
		t.Fatal(err)
	}
	var sum, leases int64
	d.Model(&models.LedgerEntry{}).Where("account_id = ?", account).Select("COALESCE(SUM(amount_micros),0)").Scan(&sum)
	d.Model(&models.BalanceLease{}).Where("account_id = ?", account).Select("COALESCE(SUM(amount_micros),0)").Scan(&leases)
	if sum != a.BalanceMicros || leases != a.ReservedMicros || a.BalanceMicros < 0 {
		t.Fatalf("balance %d, sum(ledger) %d, reserved %d, sum(leases) %d", a.BalanceMicros, sum, a.ReservedMicros, leases)
	}
	return a
}

// leaseSetup gives a test a fresh database (its URL and a handle closed at
// the end), a fake upstream and a data directory for beaver processes.
func leaseSetup(t *testing.T, dialect string) (d *db.DB, dbURL, fakeURL, dataDir string) {
	t.Helper()
	_, dbURL = testenv.OpenURL(t, dialect)
	d, err := db.Open(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	fake := httptest.NewServer(fakeupstream.New(fakeupstream.Options{DisableRecording: true}))
	t.Cleanup(fake.Close)
	return d, dbURL, fake.URL, t.TempDir()
}

// Issue 26: `beaver api` killed mid-request, no Temporal worker running.
// The dead instance's lease held the whole balance ($0.005), and another
// instance answered 402 for 16 minutes. Its lease now expires within
// LeaseTTL (15 s) and the next request of the account takes it back.
func TestKilledInstanceReservationReturnsWithoutWorker(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d, dbURL, fakeURL, dataDir := leaseSetup(t, dialect)
			p1 := start(t, dbURL, dataDir, fakeURL)
			account, keys := fundedAccount(t, p1, "killed@e2e.test", "0.005", "k")

			go chat(p1, keys[0], "hi [[slow:60000]]") // in flight until the kill
			deadline := time.Now().Add(20 * time.Second)
			for {
				var a models.Account
				if err := d.Where("id = ?", account).Take(&a).Error; err != nil {
					t.Fatal(err)
				}
				if a.ReservedMicros == a.BalanceMicros && a.BalanceMicros > 0 {
					break // the request holds the whole balance
				}
				if time.Now().After(deadline) {
					t.Fatalf("the request was not admitted: balance %d, reserved %d", a.BalanceMicros, a.ReservedMicros)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err := p1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_, _ = p1.cmd.Process.Wait()
			killed := time.Now()

			p2 := start(t, dbURL, dataDir, fakeURL)
			// Bounded well under a minute: LeaseTTL (15 s) plus start-up.
			deadline = killed.Add(40 * time.Second)
			for {
				st, r := chat(p2, keys[0], "after the kill")
				if st == 200 {
					break
				}
				if st != 402 {
					t.Fatalf("after the kill: %d %v", st, r)
				}
				if time.Now().After(deadline) {
					t.Fatalf("still 402 %s after the kill: %v", time.Since(killed).Round(time.Second), r)
				}
				time.Sleep(250 * time.Millisecond)
			}
			t.Logf("admitted %s after the kill", time.Since(killed).Round(100*time.Millisecond))
			checkBooks(t, d, account)
		})
	}
}

// Issue 26: two replicas on one database. A request with key A finished on
// replica 1, whose idle lease held the rest of the balance; a request with
// key B on replica 2 got 402 until replica 1 returned it 2 s later. The
// account here is funded for one request's hold (the first request leases
// all of it), and the replicas take turns.
func TestReplicasAdmitWhatAnotherReplicaHoldsIdle(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d, dbURL, fakeURL, dataDir := leaseSetup(t, dialect) // dataDir shared: both replicas need the same BEAVER_SECRET
			r1 := start(t, dbURL, dataDir, fakeURL)
			r2 := start(t, dbURL, dataDir, fakeURL)
			account, keys := fundedAccount(t, r1, "replicas@e2e.test", "0.005", "a", "b")

			for round := range 3 {
				if st, r := chat(r1, keys[0], "hi"); st != 200 {
					t.Fatalf("round %d, replica 1, key A: %d %v", round, st, r)
				}
				if st, r := chat(r2, keys[1], "hi"); st != 200 {
					t.Fatalf("round %d, replica 2, key B, right after key A finished on replica 1: %d %v", round, st, r)
				}
			}
			a := checkBooks(t, d, account)
			var logs int64
			d.Model(&models.UsageLog{}).Where("account_id = ?", account).Count(&logs)
			if logs != 6 || a.BalanceMicros >= 5_000 {
				t.Fatalf("%d usage logs, balance %d after 6 requests", logs, a.BalanceMicros)
			}
		})
	}
}
