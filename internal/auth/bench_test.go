package auth_test

import (
	"context"
	"testing"

	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/testenv"
)

// BenchmarkAuthenticateKey is the request path's cost of a cached API key
// (what coherence must not make slower).
func BenchmarkAuthenticateKey(b *testing.B) {
	for _, dialect := range testenv.Dialects(b) {
		b.Run(testenv.Name(dialect), func(b *testing.B) {
			ctx := context.Background()
			svc := newService(b, dialect)
			startService(b, svc)
			acct, err := svc.CreateAccount(ctx, auth.NewAccount{Email: "bench@example.com", Password: "a-good-passphrase"})
			if err != nil {
				b.Fatal(err)
			}
			_, secret, err := svc.CreateKey(ctx, acct.ID, "k", auth.KeyPolicy{})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := svc.Authenticate(ctx, secret); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEpochRead is what the simpler design, one single-row read of the
// epoch per request, would add to every request.
func BenchmarkEpochRead(b *testing.B) {
	for _, dialect := range testenv.Dialects(b) {
		b.Run(testenv.Name(dialect), func(b *testing.B) {
			d := testenv.Open(b, dialect)
			ctx := context.Background()
			for b.Loop() {
				var e int64
				if err := d.WithContext(ctx).Raw("SELECT epoch FROM auth_epoch WHERE id = 1").Scan(&e).Error; err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkChange is what a revocation costs its caller: the transaction
// with its epoch, and the wait until the other replicas have applied it.
// "alone" has no other replica; "two processes" has a second one over its
// own pool and the bus cmd/beaver wires (LISTEN/NOTIFY, or the polled
// table on SQLite, whose 200 ms poll or the 500 ms heartbeat sets the pace).
func BenchmarkChange(b *testing.B) {
	for _, dialect := range testenv.Dialects(b) {
		for _, two := range []bool{false, true} {
			name := testenv.Name(dialect) + "/alone"
			if two {
				name = testenv.Name(dialect) + "/two_processes"
			}
			b.Run(name, func(b *testing.B) {
				ctx := context.Background()
				var svc *auth.Service
				if two {
					svc, _ = twoProcesses(b, dialect, nil)
				} else {
					svc = newService(b, dialect)
					startService(b, svc)
				}
				acct, err := svc.CreateAccount(ctx, auth.NewAccount{Email: "bench@example.com", Password: "a-good-passphrase"})
				if err != nil {
					b.Fatal(err)
				}
				k, _, err := svc.CreateKey(ctx, acct.ID, "k", auth.KeyPolicy{})
				if err != nil {
					b.Fatal(err)
				}
				i := 0
				for b.Loop() {
					i++
					if _, err := svc.UpdateKey(ctx, acct.ID, k.ID, auth.KeyUpdate{RPMLimit: auth.SetTo(int64(i))}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
