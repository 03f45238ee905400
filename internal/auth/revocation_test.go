package auth_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

// twoProcesses returns two auth services over one database, each with its
// own pool, caches and bus, as `beaver serve` and `beaver worker` are, both
// started. newBus builds each process's bus; nil means the one cmd/beaver
// wires (bus.New).
func twoProcesses(t testing.TB, dialect string, newBus func(ctx context.Context, d *db.DB, url string) bus.Bus) (first, second *auth.Service) {
	t.Helper()
	d1, url := testenv.OpenURL(t, dialect)
	d2, err := db.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d2.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // before the pools close
	if newBus == nil {
		newBus = func(ctx context.Context, d *db.DB, url string) bus.Bus {
			b, err := bus.New(ctx, d, url, slog.New(slog.NewTextHandler(t.Output(), nil)))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	service := func(d *db.DB) *auth.Service {
		b := newBus(ctx, d, url)
		s := auth.NewService(d, auth.Hasher{MemoryKiB: 1024, Time: 1, Threads: 1}, auth.NewKeyed("secret"), b,
			15*time.Minute, 24*time.Hour)
		s.Log = slog.New(slog.NewTextHandler(t.Output(), nil))
		startService(t, s)
		return s
	}
	return service(d1), service(d2)
}

// A password reset in one process (the worker's activity revokes every
// session) ends the sessions another process (the API) has cached before
// it returns; so does deleting a key. On SQLite the processes share a file
// and a polled table, on PostgreSQL LISTEN/NOTIFY.
func TestRevocationReachesOtherProcess(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			ctx := context.Background()
			worker, api := twoProcesses(t, dialect, nil)
			acct := mustAccount(t, worker, "reset@example.com")
			login, err := worker.Login(ctx, "reset@example.com", "a-good-passphrase")
			if err != nil {
				t.Fatal(err)
			}
			key, secret, err := worker.CreateKey(ctx, acct.ID, "k", auth.KeyPolicy{})
			if err != nil {
				t.Fatal(err)
			}
			for _, tok := range []string{login.AccessToken, secret} { // cached by the API
				if _, err := api.Authenticate(ctx, tok); err != nil {
					t.Fatal(err)
				}
			}

			if err := worker.RevokeAllSessions(ctx, acct.ID, "password reset"); err != nil {
				t.Fatal(err)
			}
			_, err = worker.Authenticate(ctx, login.AccessToken)
			wantCode(t, err, "unauthorized")
			_, err = api.Authenticate(ctx, login.AccessToken)
			wantCode(t, err, "unauthorized")

			if err := worker.DeleteKey(ctx, acct.ID, key.ID); err != nil {
				t.Fatal(err)
			}
			_, err = api.Authenticate(ctx, secret)
			wantCode(t, err, "invalid_api_key")
		})
	}
}

// The bus only makes acknowledgements fast: with a bus of its own per
// process (nothing announced between them), a change still returns only
// after the other process has applied it, which its heartbeat does. The
// write behind the services' back shows that the other process does serve
// from its cache, so the refusal is the change reaching it, not a miss.
func TestRevocationWithoutSharedBus(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			ctx := context.Background()
			worker, api := twoProcesses(t, dialect, func(context.Context, *db.DB, string) bus.Bus { return bus.NewLocal() })
			acct := mustAccount(t, worker, "stale@example.com")
			login, err := worker.Login(ctx, "stale@example.com", "a-good-passphrase")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := api.Authenticate(ctx, login.AccessToken); err != nil {
				t.Fatal(err)
			}
			if err := api.DB.Model(&models.Session{}).Where("account_id = ?", acct.ID).
				Update("revoked_at", time.Now()).Error; err != nil {
				t.Fatal(err)
			}
			if _, err := api.Authenticate(ctx, login.AccessToken); err != nil {
				t.Fatalf("the session is not served from the cache (%v): nothing here proves the change reached it", err)
			}
			if err := api.DB.Model(&models.Session{}).Where("account_id = ?", acct.ID).
				Update("revoked_at", nil).Error; err != nil {
				t.Fatal(err)
			}

			if err := worker.RevokeAllSessions(ctx, acct.ID, "password reset"); err != nil {
				t.Fatal(err)
			}
			_, err = api.Authenticate(ctx, login.AccessToken)
			wantCode(t, err, "unauthorized")
		})
	}
}
