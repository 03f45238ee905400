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
)

// crossProcessDeadline bounds how long another process may keep honouring a
// revoked credential: generous next to bus.PollInterval and LISTEN/NOTIFY.
const crossProcessDeadline = 5 * time.Second

// twoProcesses returns two auth services over one database, each with its
// own pool, caches and bus, as `beaver serve` and `beaver worker` are.
// newBus builds each process's bus; nil means the one cmd/beaver wires (bus.New).
func twoProcesses(t *testing.T, dialect string, newBus func(ctx context.Context, d *db.DB, url string) bus.Bus) (first, second *auth.Service) {
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
		return auth.NewService(d, auth.Hasher{MemoryKiB: 1024, Time: 1, Threads: 1}, auth.NewKeyed("secret"), b,
			15*time.Minute, 24*time.Hour)
	}
	return service(d1), service(d2)
}

func eventuallyRefused(t *testing.T, svc *auth.Service, token, what, code string) {
	t.Helper()
	ctx := context.Background()
	end := time.Now().Add(crossProcessDeadline)
	for {
		_, err := svc.Authenticate(ctx, token)
		if err != nil {
			wantCode(t, err, code)
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s still accepted by the other process after %s", what, crossProcessDeadline)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A password reset in one process (the worker's activity revokes every
// session) ends the sessions another process (the API) has cached, well
// before the cache TTL; so does deleting a key. On SQLite the processes
// share a file and a polled table, on PostgreSQL LISTEN/NOTIFY.
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
			wantCode(t, err, "unauthorized") // the publisher at once
			eventuallyRefused(t, api, login.AccessToken, "access token of a reset account", "unauthorized")

			if err := worker.DeleteKey(ctx, acct.ID, key.ID); err != nil {
				t.Fatal(err)
			}
			eventuallyRefused(t, api, secret, "deleted key", "invalid_api_key")
		})
	}
}

// Sanity check of the test above: with a bus of its own per process (the
// SQLite wiring before bus.Polled), the other process keeps serving the
// revoked session from its cache, so the test proves the bus, not a miss.
func TestRevocationWithoutSharedBusServesFromCache(t *testing.T) {
	ctx := context.Background()
	worker, api := twoProcesses(t, db.SQLite, func(context.Context, *db.DB, string) bus.Bus { return bus.NewLocal() })
	acct := mustAccount(t, worker, "stale@example.com")
	login, err := worker.Login(ctx, "stale@example.com", "a-good-passphrase")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.Authenticate(ctx, login.AccessToken); err != nil {
		t.Fatal(err)
	}
	if err := worker.RevokeAllSessions(ctx, acct.ID, "password reset"); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Authenticate(ctx, login.AccessToken); err != nil {
		t.Fatalf("isolated process refused at once (%v): the cache is not what the test above exercises", err)
	}
}
