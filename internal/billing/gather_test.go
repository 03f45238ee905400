package billing_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/testenv"
)

func commits(t *testing.T, reg *prometheus.Registry) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "beaver_billing_commit_batch_size" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}

// Under load, a commit waits for the requests that are about to settle
// and commits them together; a request settling alone never waits (the
// wait here is an hour: one that waited would never finish).
func TestCommitsGatherUnderLoadOnly(t *testing.T) {
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

			reg := prometheus.NewRegistry()
			e := billing.NewEngine(d, quiet, billing.EngineOptions{GatherWait: 200 * time.Millisecond, Registerer: reg})
			defer e.Close()
			const n = 40
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					if err := settle(e); err != nil {
						t.Error(err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if c := commits(t, reg); c == 0 || c > n/4 {
				t.Fatalf("%d requests settled in %d commits", n, c)
			}
			check(t, d, acct, false)
		})
	}
}
