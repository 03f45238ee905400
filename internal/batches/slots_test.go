package batches_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/batches"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

// Two workers (two Services on one database) running the same account's
// batches at once never run more of its lines together than
// AccountConcurrency.
func TestAccountConcurrencyBoundsEveryWorker(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newFixture(t, dialect)
			f.up.delay = 20 * time.Millisecond
			workers := make([]*batches.Service, 2)
			for i := range workers {
				workers[i] = &batches.Service{DB: f.d, Files: f.files, Gateway: f.gw, Log: quiet, Concurrency: 3, AccountConcurrency: 2,
					SlotPoll: 2 * time.Millisecond, Now: func() time.Time { return f.now }}
			}
			var ids []string
			for b := range 2 {
				var lines []string
				for i := range 6 {
					lines = append(lines, chatLine(fmt.Sprintf("c%d", i), chatModel, fmt.Sprintf("b%d line %d", b, i)))
				}
				ids = append(ids, f.create("/v1/chat/completions", lines...).ID)
			}
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, errs[i] = w.Start(context.Background(), ids[i]); errs[i] != nil {
						return
					}
					_, errs[i] = w.RunPage(context.Background(), ids[i], 0, 100, nil)
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			f.up.mu.Lock()
			most := f.up.maxInFlight
			f.up.mu.Unlock()
			if most > 2 || most < 1 {
				t.Fatalf("at most %d lines of the account ran at once, want 1..2", most)
			}
			for _, id := range ids {
				if b := f.batch(id); b.Completed != 6 {
					t.Fatalf("batch %s: %d of 6 lines completed", id, b.Completed)
				}
			}
			var held int64
			if err := f.d.Model(&models.BatchAccountSlot{}).Count(&held).Error; err != nil {
				t.Fatal(err)
			}
			if held != 0 {
				t.Fatalf("%d slots still held after the lines ended", held)
			}
		})
	}
}

// A slot held by a worker that died is taken over once its lease is past,
// not before.
func TestAccountSlotOfADeadWorkerIsRecoveredAfterItsLease(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			d := testenv.Open(t, dialect)
			clock := testenv.NewClock()
			ctx := context.Background()
			dead := &batches.Service{DB: d, AccountConcurrency: 1, SlotLease: time.Minute, Now: clock.Now}
			alive := &batches.Service{DB: d, AccountConcurrency: 1, SlotLease: time.Minute, Now: clock.Now}
			if sl, err := dead.TryAcquireSlot(ctx, "acct_1"); err != nil || sl == nil {
				t.Fatalf("first slot: %v %v", sl, err)
			}
			// dead never renews nor releases it.
			if sl, err := alive.TryAcquireSlot(ctx, "acct_1"); err != nil || sl != nil {
				t.Fatalf("slot taken while held: %v %v", sl, err)
			}
			if sl, err := alive.TryAcquireSlot(ctx, "acct_2"); err != nil || sl == nil {
				t.Fatalf("another account's slot: %v %v", sl, err)
			}
			clock.Advance(time.Minute)
			if sl, err := alive.TryAcquireSlot(ctx, "acct_1"); err != nil || sl != nil {
				t.Fatalf("slot taken at its lease's end: %v %v", sl, err)
			}
			clock.Advance(time.Second)
			sl, err := alive.TryAcquireSlot(ctx, "acct_1")
			if err != nil || sl == nil {
				t.Fatalf("expired slot not taken over: %v %v", sl, err)
			}
			if again, err := dead.TryAcquireSlot(ctx, "acct_1"); err != nil || again != nil {
				t.Fatalf("slot taken twice: %v %v", again, err)
			}
			if err := alive.ReleaseSlot(ctx, sl); err != nil {
				t.Fatal(err)
			}
			if sl, err := dead.TryAcquireSlot(ctx, "acct_1"); err != nil || sl == nil {
				t.Fatalf("released slot not free: %v %v", sl, err)
			}
		})
	}
}
