package billing

import (
	"testing"
	"time"
)

func gatherWithin(t *testing.T, e *Engine, batch []*pending) []*pending {
	t.Helper()
	out := make(chan []*pending, 1)
	go func() { out <- e.gather(batch) }()
	select {
	case b := <-out:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("gather waited for requests that were not coming")
		return nil
	}
}

// Once commits have company, a commit waits for the admitted requests that
// are about to settle; without company, or with none out, it does not wait
// (GatherWait is a minute: a wrong wait would hang the test).
func TestGatherCollectsRequestsAboutToSettle(t *testing.T) {
	newEngine := func() *Engine {
		return &Engine{opts: EngineOptions{GatherWait: time.Minute, MaxBatch: 512}, queue: make(chan *pending, 16)}
	}

	e := newEngine()
	e.lastBatch.Store(1)
	e.open.Store(5) // requests out, but the last commit had no company
	if b := gatherWithin(t, e, []*pending{{}}); len(b) != 1 {
		t.Fatalf("lone batch grew to %d", len(b))
	}
	e.lastBatch.Store(8)
	e.open.Store(0) // company before, but nobody is out now
	if b := gatherWithin(t, e, []*pending{{}}); len(b) != 1 {
		t.Fatalf("batch grew to %d with nobody out", len(b))
	}

	e = newEngine()
	e.lastBatch.Store(8)
	e.open.Store(3)
	go func() {
		for range 3 {
			time.Sleep(5 * time.Millisecond)
			e.open.Add(-1) // as Finish does, just before it queues
			e.queue <- &pending{}
		}
	}()
	// gather returns once nobody is out; the last one may still be on its way.
	if b := gatherWithin(t, e, []*pending{{}}); len(b) < 3 {
		t.Fatalf("gathered %d of the 3 requests about to settle", len(b)-1)
	}
}
