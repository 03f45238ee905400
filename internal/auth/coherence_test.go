package auth

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

// replicas are auth services over one database, each with its own pool,
// caches, monotonic clock (the test moves it) and a bus of its own, so no
// announcement passes between them and nothing syncs unless the test says
// so (the heartbeat is an hour).
type replicas struct {
	t   *testing.T
	url string
}

type testReplica struct {
	*Service
	clock atomic.Int64 // the cache's monotonic clock, ns
}

func newReplicas(t *testing.T, dialect string) (*replicas, *db.DB) {
	d, url := testenv.OpenURL(t, dialect)
	return &replicas{t: t, url: url}, d
}

// add starts a replica with lease (its clock at 0) until the test ends.
func (rs *replicas) add(lease time.Duration) *testReplica {
	rs.t.Helper()
	r := rs.unstarted(lease)
	stop, err := r.Start(context.Background())
	if err != nil {
		rs.t.Fatal(err)
	}
	rs.t.Cleanup(stop)
	return r
}

func (rs *replicas) unstarted(lease time.Duration) *testReplica {
	t := rs.t
	t.Helper()
	d, err := db.Open(rs.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	r := &testReplica{Service: NewService(d, Hasher{MemoryKiB: 1024, Time: 1, Threads: 1}, NewKeyed("secret"), bus.NewLocal(),
		15*time.Minute, 24*time.Hour)}
	r.Lease, r.Heartbeat = lease, time.Hour
	r.Log = slog.New(slog.NewTextHandler(t.Output(), nil))
	r.cache.mono = func() time.Duration { return time.Duration(r.clock.Load()) }
	return r
}

func (r *testReplica) advance(d time.Duration) { r.clock.Add(int64(d)) }

func (r *testReplica) authOK(t *testing.T, token string) {
	t.Helper()
	if _, err := r.Authenticate(context.Background(), token); err != nil {
		t.Fatalf("refused: %v", err)
	}
}

func (r *testReplica) authRefused(t *testing.T, token, code string) {
	t.Helper()
	_, err := r.Authenticate(context.Background(), token)
	if e, ok := apierr.As(err); !ok || e.Code != code {
		t.Fatalf("err = %v, want code %s", err, code)
	}
}

func (r *testReplica) mustSync(t *testing.T, wantLease bool) {
	t.Helper()
	got, err := r.sync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got != wantLease {
		t.Fatalf("sync renewed the lease: %v, want %v", got, wantLease)
	}
}

// keyFor makes an account and a key through r.
func keyFor(t *testing.T, r *testReplica, email string) (accountID, keyID, secret string) {
	t.Helper()
	ctx := context.Background()
	a, err := r.CreateAccount(ctx, NewAccount{Email: email, Password: "a-good-passphrase"})
	if err != nil {
		t.Fatal(err)
	}
	k, secret, err := r.CreateKey(ctx, a.ID, "k", KeyPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	return a.ID, k.ID, secret
}

func ackedEpoch(t *testing.T, d *db.DB, instance string) int64 {
	t.Helper()
	var n []int64
	if err := d.Raw("SELECT acked_epoch FROM auth_replicas WHERE instance_id = ?", instance).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	if len(n) != 1 {
		return -1
	}
	return n[0]
}

func forEachDialect(t *testing.T, body func(t *testing.T, dialect string)) {
	for _, d := range testenv.Dialects(t) {
		t.Run(testenv.Name(d), func(t *testing.T) { body(t, d) })
	}
}

// A change returns only once every other live replica has applied its
// epoch: while B has not synced, A's DeleteKey waits and B still serves
// the key from its cache; B's sync drops it and acknowledges, and A
// returns.
func TestChangeWaitsForAcknowledgement(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect string) {
		rs, d := newReplicas(t, dialect)
		a, b := rs.add(time.Hour), rs.add(time.Hour)
		acct, keyID, secret := keyFor(t, a, "ack@example.com")
		b.authOK(t, secret) // cached by B

		committed := make(chan struct{}, 1)
		a.OnChange(func(string) {
			select {
			case committed <- struct{}{}:
			default:
			}
		})
		done := make(chan error, 1)
		go func() { done <- a.DeleteKey(context.Background(), acct, keyID) }()
		<-committed // A applied it locally, after the commit, before waiting

		var epoch int64
		if err := d.Raw("SELECT epoch FROM auth_epoch WHERE id = 1").Scan(&epoch).Error; err != nil {
			t.Fatal(err)
		}
		if got := ackedEpoch(t, d, b.instance); got >= epoch {
			t.Fatalf("B acknowledged epoch %d without syncing (change %d)", got, epoch)
		}
		b.authOK(t, secret) // B has not heard: its cache is what the wait protects
		select {
		case err := <-done:
			t.Fatalf("the change returned (%v) before B acknowledged it", err)
		default:
		}
		waiting, err := a.laggards(context.Background(), epoch, a.instance)
		if err != nil || len(waiting) != 1 || waiting[0] != b.instance {
			t.Fatalf("A waits for %v (%v), want B %s", waiting, err, b.instance)
		}

		b.mustSync(t, true)
		if got := ackedEpoch(t, d, b.instance); got != epoch {
			t.Fatalf("B acknowledged %d, want %d", got, epoch)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second): // A's lease is an hour: only the acknowledgement ends the wait
			t.Fatal("the change still waits after B acknowledged it")
		}
		b.authRefused(t, secret, "invalid_api_key")
	})
}

// A change that finds nothing to do, because an attempt that was cut off
// while waiting already made it, still returns only once it holds on every
// replica: a retried logout or password reset must not answer early.
func TestRepeatedChangeWaitsToo(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect string) {
		rs, _ := newReplicas(t, dialect)
		a, b := rs.add(time.Hour), rs.add(time.Hour)
		keyFor(t, a, "again@example.com")
		login, err := a.Login(context.Background(), "again@example.com", "a-good-passphrase")
		if err != nil {
			t.Fatal(err)
		}
		b.authOK(t, login.AccessToken)
		sid := mustClaims(t, a, login.AccessToken)
		// B never syncs here and A's lease is an hour: each attempt can only
		// end by its context. The first is cut off once it has committed.
		first, cutOff := context.WithCancel(context.Background())
		a.OnChange(func(m string) {
			if m == SessionMsg(sid) {
				cutOff()
			}
		})
		if err := a.RevokeSession(first, sid, "logout"); !errors.Is(err, context.Canceled) {
			t.Fatalf("first attempt: %v, want it cut off while waiting for B", err)
		}
		retry, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = a.RevokeSession(retry, sid, "logout")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the retry returned %v before B applied the revocation", err)
		}
		b.authOK(t, login.AccessToken) // what the waiting protects
		b.mustSync(t, true)
		if err := a.RevokeSession(context.Background(), sid, "logout"); err != nil {
			t.Fatal(err)
		}
		b.authRefused(t, login.AccessToken, "unauthorized")
	})
}

func mustClaims(t *testing.T, s *testReplica, token string) string {
	t.Helper()
	c, ok := s.parseAccess(token)
	if !ok {
		t.Fatal("unreadable access token")
	}
	return c.SID
}

// Acknowledgements are cumulative and in epoch order: B applies every
// change past the last one it applied, so acknowledging epoch n means
// every change up to n is gone from its caches, including the earlier
// change by another replica.
func TestAcknowledgementCoversEarlierEpochs(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect string) {
		rs, d := newReplicas(t, dialect)
		a, b := rs.add(time.Hour), rs.add(time.Hour)
		c := rs.add(time.Hour)
		acct1, key1, secret1 := keyFor(t, a, "one@example.com")
		acct2, key2, secret2 := keyFor(t, a, "two@example.com")
		b.authOK(t, secret1)
		b.authOK(t, secret2)
		errs := make(chan error, 2)
		go func() { errs <- a.DeleteKey(context.Background(), acct1, key1) }()
		// C's change gets the next epoch only once A's has committed.
		waitEpoch(t, d, 1)
		go func() { errs <- c.DeleteKey(context.Background(), acct2, key2) }()
		waitEpoch(t, d, 2)
		for _, r := range []*testReplica{b, c, a} {
			r.mustSync(t, true)
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if got := ackedEpoch(t, d, b.instance); got != 2 {
			t.Fatalf("B acknowledged %d, want 2", got)
		}
		b.authRefused(t, secret1, "invalid_api_key")
		b.authRefused(t, secret2, "invalid_api_key")
	})
}

// waitEpoch returns once the change with epoch n has committed.
func waitEpoch(t *testing.T, d *db.DB, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var e int64
		if err := d.Raw("SELECT epoch FROM auth_epoch WHERE id = 1").Scan(&e).Error; err != nil {
			t.Fatal(err)
		}
		if e >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("epoch %d never committed (at %d)", n, e)
		}
		time.Sleep(time.Millisecond)
	}
}

// A replica whose lease ran out (it could not sync) reads the database on
// every request, and keeps nothing it read, until a sync renews the lease.
func TestStaleReplicaReadsTheDatabase(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect string) {
		rs, d := newReplicas(t, dialect)
		b := rs.add(time.Minute)
		_, keyID, secret := keyFor(t, b, "stale@example.com")
		b.authOK(t, secret)
		deleteKeyBehindTheBack := func(deleted bool) {
			t.Helper()
			v := any(nil)
			if deleted {
				v = time.Now()
			}
			if err := d.Model(&models.APIKey{}).Where("id = ?", keyID).Update("deleted_at", v).Error; err != nil {
				t.Fatal(err)
			}
		}
		deleteKeyBehindTheBack(true)
		b.authOK(t, secret) // within the lease: served from the cache

		b.advance(time.Minute) // the lease has ended
		b.authRefused(t, secret, "invalid_api_key")
		deleteKeyBehindTheBack(false)
		b.authOK(t, secret)
		deleteKeyBehindTheBack(true)
		b.authRefused(t, secret, "invalid_api_key") // nothing was kept

		b.mustSync(t, true) // a lease again: the cache is used and filled
		deleteKeyBehindTheBack(false)
		b.authOK(t, secret)
		deleteKeyBehindTheBack(true)
		b.authOK(t, secret)
	})
}

// A replica whose heartbeat lapsed is not waited for: the change fences it
// out (deletes its row), so that its next sync, whose read may predate the
// change, cannot renew its lease. It rejoins, and only the sync after that
// renews the lease, having read the change.
func TestLapsedReplicaIsFencedOut(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect string) {
		rs, d := newReplicas(t, dialect)
		a, b := rs.add(time.Hour), rs.add(time.Minute)
		acct, keyID, secret := keyFor(t, a, "lapsed@example.com")
		b.authOK(t, secret)
		// B stopped syncing long ago, by its clock and the database's.
		b.advance(time.Minute)
		if err := d.Exec("UPDATE auth_replicas SET heartbeat_ms = 0 WHERE instance_id = ?", b.instance).Error; err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- a.DeleteKey(context.Background(), acct, keyID) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second): // A's lease is an hour: only fencing ends the wait
			t.Fatal("the change waits for a replica whose heartbeat lapsed")
		}
		if got := ackedEpoch(t, d, b.instance); got != -1 {
			t.Fatalf("B's row is still there (acked %d)", got)
		}
		b.authRefused(t, secret, "invalid_api_key") // no lease: read from the database

		b.mustSync(t, false) // rejoins; no lease from this sync
		if b.cache.trusted() {
			t.Fatal("the rejoining sync renewed the lease")
		}
		b.mustSync(t, true)
		if got, want := ackedEpoch(t, d, b.instance), b.applied.Load(); got != want || got < 1 {
			t.Fatalf("B acknowledged %d after rejoining, applied %d", got, want)
		}
		b.authRefused(t, secret, "invalid_api_key")
	})
}

// A replica that missed pruned changes cannot know what they made stale:
// it flushes everything.
func TestGapInChangesFlushes(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect string) {
		rs, d := newReplicas(t, dialect)
		b := rs.add(time.Hour)
		_, keyID, secret := keyFor(t, b, "gap@example.com")
		b.authOK(t, secret)
		if err := d.Model(&models.APIKey{}).Where("id = ?", keyID).Update("deleted_at", time.Now()).Error; err != nil {
			t.Fatal(err)
		}
		b.authOK(t, secret) // cached
		// Epochs 1 and 2 were pruned; 3 names something else.
		if err := d.Exec("UPDATE auth_epoch SET epoch = 3").Error; err != nil {
			t.Fatal(err)
		}
		if err := d.Exec("INSERT INTO auth_changes (epoch, targets, created_at) VALUES (3, 'account:acct_other', ?)", time.Now()).Error; err != nil {
			t.Fatal(err)
		}
		b.mustSync(t, true)
		b.authRefused(t, secret, "invalid_api_key")
		if b.applied.Load() != 3 {
			t.Fatalf("applied %d, want 3", b.applied.Load())
		}
	})
}

// Stopping leaves: the row goes, so changes stop waiting for this replica,
// and its caches are not trusted any more.
func TestStopLeaves(t *testing.T) {
	rs, d := newReplicas(t, db.SQLite)
	b := rs.unstarted(time.Hour)
	stop, err := b.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := ackedEpoch(t, d, b.instance); got != 0 || !b.cache.trusted() {
		t.Fatalf("after Start: acked %d, trusted %v", got, b.cache.trusted())
	}
	stop()
	if got := ackedEpoch(t, d, b.instance); got != -1 {
		t.Fatalf("row left behind (acked %d)", got)
	}
	if b.cache.trusted() {
		t.Fatal("caches trusted after leaving")
	}
}

// BenchmarkTrusted is what the lease check adds to each cache lookup (two
// or three per request).
func BenchmarkTrusted(b *testing.B) {
	c := newCache(time.Minute)
	c.trustUntil(time.Hour)
	for b.Loop() {
		if !c.trusted() {
			b.Fatal("not trusted")
		}
	}
}
