package billing_test

import (
	"context"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/testenv"
)

// A request settling alone never waits for company (the wait here is an
// hour: one that waited would never finish). gather_internal_test.go shows
// that under load the requests about to settle are gathered.
func TestLoneRequestsNeverWaitToCommit(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d := testenv.Open(t, dialect)
			acct := newAccount(t, d, 1_000_000_000)
			settle := func(e *billing.Engine) error {
				h, err := admit(e, acct, nil, 100)
				if err != nil {
					return err
				}
				_, err = e.Finish(context.Background(), h, billing.Outcome{GenerationID: ids.New("gen"), Model: "m", Provider: "p",
					PromptTokens: 10, CompletionTokens: 20})
				return err
			}

			lone := billing.NewEngine(d, quiet, billing.EngineOptions{GatherWait: time.Hour})
			done := make(chan error, 1)
			go func() {
				for range 5 {
					if err := settle(lone); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(time.Minute):
				t.Fatal("a request settling alone waited for company")
			}
			lone.Close()

			check(t, d, acct, false)
		})
	}
}
