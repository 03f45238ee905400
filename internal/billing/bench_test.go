package billing_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/testenv"
)

// BenchmarkSettle measures one request's admission and committed
// settlement, alone (the latency path) and with 50 at once (group commit).
//
//	go test ./internal/billing -run '^$' -bench Settle -benchtime 2000x
func BenchmarkSettle(b *testing.B) {
	for _, dialect := range testenv.Dialects(b) {
		for _, v := range []struct {
			par   int
			async bool
		}{{1, false}, {50, false}, {1, true}, {50, true}} {
			if v.async && dialect != db.Postgres {
				continue
			}
			par := v.par
			b.Run(fmt.Sprintf("%s/parallel=%d/async=%v", testenv.Name(dialect), par, v.async), func(b *testing.B) {
				d := testenv.Open(b, dialect)
				acct := newAccount(b, d, 1_000_000_000_000)
				e := billing.NewEngine(d, quiet, billing.EngineOptions{AsyncCommit: v.async})
				defer e.Close()
				var wg sync.WaitGroup
				work := make(chan struct{})
				var errOnce sync.Once
				for w := 0; w < par; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range work {
							h, err := admit(e, acct, nil, 100)
							if err == nil {
								_, err = e.Finish(context.Background(), h, billing.Outcome{GenerationID: ids.New("gen"),
									Model: "m", Provider: "p", PromptTokens: 10, CompletionTokens: 20})
							}
							if err != nil {
								errOnce.Do(func() { b.Error(err) })
							}
						}
					}()
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					work <- struct{}{}
				}
				close(work)
				wg.Wait()
			})
		}
	}
}
