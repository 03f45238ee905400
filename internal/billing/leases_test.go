package billing_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

// expireLeases moves an instance's lease rows past their expiry, as if
// LeaseTTL had passed without a renewal.
func expireLeases(t *testing.T, d *db.DB, instance string) {
	t.Helper()
	r := d.Exec(`UPDATE balance_leases SET expires_at = ? WHERE instance_id = ?`, time.Now().UTC().Add(-time.Second), instance)
	if r.Error != nil || r.RowsAffected == 0 {
		t.Fatalf("expire leases of %s: %d rows, %v", instance, r.RowsAffected, r.Error)
	}
}

// replica opens a second connection pool on the database, as another
// process would.
func replica(t *testing.T, url string) *db.DB {
	t.Helper()
	d, err := db.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func finish(t *testing.T, e *billing.Engine, h *billing.Hold, completion int64) *billing.Settlement {
	t.Helper()
	s, err := e.Finish(context.Background(), h, billing.Outcome{GenerationID: ids.New("gen"), Model: "m", Provider: "p",
		PromptTokens: 10, CompletionTokens: completion})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func want402(t *testing.T, err error) {
	t.Helper()
	if ae, ok := apierr.As(err); !ok || ae.Status != 402 || ae.Code != "insufficient_balance" {
		t.Fatalf("want 402 insufficient_balance, got %v", err)
	}
}

// Issue 26: with two replicas, key A's request finished on replica 1, whose
// idle lease held the rest of the balance, and key B's request on replica 2
// got 402 although nothing was in flight. Replica 2 now takes the money
// back once replica 1 parked its lease; replica 1 never spends what was
// taken, and nothing in flight is taken.
func TestIdleLeaseOfAnotherReplicaIsTakenBack(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d, url := testenv.OpenURL(t, dialect)
			acct := newAccount(t, d, 1_000)
			keyA, keyB := newTestKey(t, d, acct), newTestKey(t, d, acct)
			// Idle leases stay for an hour: only parking can free them. Replica
			// 2 waits as long as it takes replica 1 to park (the test must not
			// depend on how fast that is); replica 1 waits briefly to refuse.
			r1 := billing.NewEngine(d, quiet, billing.EngineOptions{IdleReturn: time.Hour, ParkWait: 20 * time.Millisecond})
			defer r1.Close()
			r2 := billing.NewEngine(replica(t, url), quiet, billing.EngineOptions{IdleReturn: time.Hour, ParkWait: time.Minute})
			defer r2.Close()

			// Replica 1 leases 990 of 1000 and charges 20: its idle lease holds 970.
			finish(t, r1, mustAdmit(t, r1, acct, keyA, 980), 10)

			// Key B on replica 2 needs 910; 10 are free.
			hb := mustAdmit(t, r2, acct, keyB, 900)
			if hb.Clamped || hb.MaxTokens != 900 {
				t.Fatalf("replica 2 clamped to %d tokens while nothing is in flight", hb.MaxTokens)
			}
			check(t, d, acct, false)

			// Replica 1 still believes it holds 970: it must claim its lease
			// and find what is left (60) instead of spending from memory.
			ha := mustAdmit(t, r1, acct, keyA, 960)
			if !ha.Clamped || ha.Amount() > 70 {
				t.Fatalf("replica 1 held %d (clamped=%v) of the 70 not held by replica 2", ha.Amount(), ha.Clamped)
			}
			// Everything is held by requests in flight: refused, nothing taken.
			_, err := admit(r1, acct, keyA, 100)
			want402(t, err)
			check(t, d, acct, false)

			finish(t, r2, hb, 900)
			finish(t, r1, ha, ha.MaxTokens)
			r1.Close()
			r2.Close()
			if a := check(t, d, acct, true); a.BalanceMicros != 1_000-20-910-ha.Amount() {
				t.Fatalf("balance %d after charging 20, 910 and %d", a.BalanceMicros, ha.Amount())
			}
		})
	}
}

func mustAdmit(t *testing.T, e *billing.Engine, acct string, key *models.APIKey, maxTok int64) *billing.Hold {
	t.Helper()
	h, err := admit(e, acct, key, maxTok)
	if err != nil {
		t.Fatalf("admit %d tokens: %v", maxTok, err)
	}
	return h
}

// Issue 26: an instance killed mid-request leaves a lease that nobody
// renews. Once it expired, an admission of the account takes it back
// itself instead of refusing (no sweeper needed).
func TestExpiredLeaseOfDeadInstanceIsTakenBackAtAdmission(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d, url := testenv.OpenURL(t, dialect)
			acct := newAccount(t, d, 3_000)
			dead := billing.NewEngine(d, quiet, billing.EngineOptions{})
			if h := mustAdmit(t, dead, acct, nil, 4_000); !h.Clamped {
				t.Fatal("expected the request to hold the whole balance")
			}
			dead.Crash() // mid-request
			live := billing.NewEngine(replica(t, url), quiet, billing.EngineOptions{SweepEvery: time.Hour, ParkWait: 10 * time.Millisecond})
			defer live.Close()

			// Not expired yet: the dead instance may still be alive.
			_, err := admit(live, acct, nil, 100)
			want402(t, err)

			expireLeases(t, d, dead.InstanceID())
			finish(t, live, mustAdmit(t, live, acct, nil, 100), 100)
			live.Close()
			if a := check(t, d, acct, true); a.BalanceMicros != 3_000-110 {
				t.Fatalf("balance %d", a.BalanceMicros)
			}
		})
	}
}

// Every instance returns expired leases of any instance, periodically, with
// no Temporal worker and no request of the account.
func TestInstancesSweepExpiredLeasesOfAnyInstance(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d, url := testenv.OpenURL(t, dialect)
			acct := newAccount(t, d, 5_000)
			dead := billing.NewEngine(d, quiet, billing.EngineOptions{})
			mustAdmit(t, dead, acct, nil, 100)
			dead.Crash()
			expireLeases(t, d, dead.InstanceID())
			live := billing.NewEngine(replica(t, url), quiet, billing.EngineOptions{SweepEvery: 10 * time.Millisecond})
			defer live.Close()
			deadline := time.Now().Add(10 * time.Second)
			for {
				var n int64
				if err := d.Model(&models.BalanceLease{}).Where("account_id = ?", acct).Count(&n).Error; err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the expired lease of a dead instance was not returned by the live instance")
				}
				time.Sleep(10 * time.Millisecond)
			}
			check(t, d, acct, true)
		})
	}
}

// A renewal moves a live instance's leases past expiry, and notices a row
// that was returned as expired anyway (a stalled instance): its open holds
// are then charged straight from the balance.
func TestRenewalKeepsLeasesAndNoticesLostOnes(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d := testenv.Open(t, dialect)
			acct := newAccount(t, d, 5_000)
			e := billing.NewEngine(d, quiet, billing.EngineOptions{IdleReturn: time.Hour})
			defer e.Close()
			h := mustAdmit(t, e, acct, nil, 100)
			expireLeases(t, d, e.InstanceID())
			if err := e.Renew(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n, err := billing.SweepExpiredLeases(context.Background(), d); err != nil || n != 0 {
				t.Fatalf("renewed lease swept: %d, %v", n, err)
			}
			finish(t, e, h, 50)

			h = mustAdmit(t, e, acct, nil, 100)
			expireLeases(t, d, e.InstanceID())
			if n, err := billing.SweepExpiredLeases(context.Background(), d); err != nil || n != 1 {
				t.Fatalf("sweep: %d, %v", n, err)
			}
			if err := e.Renew(context.Background()); err != nil {
				t.Fatal(err)
			}
			if s := finish(t, e, h, 50); s.ChargedMicros != 60 {
				t.Fatalf("charged %d", s.ChargedMicros)
			}
			e.Close()
			if a := check(t, d, acct, true); a.BalanceMicros != 5_000-120 {
				t.Fatalf("balance %d", a.BalanceMicros)
			}
		})
	}
}

// Two replicas, two keys each, leases parked after a millisecond and
// requests paced so that leases go idle between them. Each request holds
// two fifths of the balance and is charged next to nothing, so the leases
// hold it all and admissions take money back from each other's leases all
// the time; still nothing is overspent and the books balance.
func TestReplicasTakingBackNeverOverspend(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d, url := testenv.OpenURL(t, dialect)
			const balance = 5_000
			acct := newAccount(t, d, balance)
			keys := []*models.APIKey{newTestKey(t, d, acct), newTestKey(t, d, acct)}
			o := billing.EngineOptions{IdleReturn: time.Hour, ParkAfter: time.Millisecond, ParkWait: 20 * time.Millisecond}
			engines := []*billing.Engine{billing.NewEngine(d, quiet, o), billing.NewEngine(replica(t, url), quiet, o)}
			var charged, admitted atomic.Int64
			var wg sync.WaitGroup
			for i := range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					e, key := engines[i%2], keys[i/2%2]
					for range 40 {
						time.Sleep(2 * time.Millisecond) // pacing only: lets leases park
						h, err := e.Admit(context.Background(), billing.AdmitRequest{AccountID: acct, Key: key, Price: price,
							PriceVersion: 1, PromptTokens: 1_000, MaxTokens: 1_000, ModelMax: 4096})
						if err != nil {
							if ae, ok := apierr.As(err); !ok || ae.Status != 402 {
								t.Error(err)
							}
							continue
						}
						admitted.Add(1)
						time.Sleep(time.Millisecond)
						s, err := e.Finish(context.Background(), h, billing.Outcome{GenerationID: ids.New("gen"), Model: "m", Provider: "p",
							PromptTokens: 1})
						if err != nil {
							t.Error(err)
							continue
						}
						charged.Add(s.ChargedMicros)
					}
				}()
			}
			wg.Wait()
			for _, e := range engines {
				e.Close()
			}
			a := check(t, d, acct, true)
			if charged.Load() > balance || a.BalanceMicros != balance-charged.Load() {
				t.Fatalf("charged %d of %d, balance now %d", charged.Load(), balance, a.BalanceMicros)
			}
			t.Logf("%d requests admitted, %d µ$ charged", admitted.Load(), charged.Load())
		})
	}
}
