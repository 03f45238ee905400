package auth

import (
	"runtime"
	"testing"
	"time"
)

// After a burst of hashes the memory they took goes back to the OS: a
// second after the last hash, debug.FreeOSMemory runs (a forced GC). How
// much the runtime then returns depends on whatever else the process
// allocated meanwhile, so the test asserts the release, not a heap size.
func TestHashMemoryIsReleasedWhenIdle(t *testing.T) {
	h := Hasher{MemoryKiB: 8 * 1024, Time: 1, Threads: 1}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 3 {
		h.Verify("pw", h.Hash("pw"))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		if m.NumForcedGC > before.NumForcedGC {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: forced GCs %d → %d: the memory was never released", before.NumForcedGC, m.NumForcedGC)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
