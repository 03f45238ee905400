package auth

import (
	"runtime"
	"testing"
	"time"
)

// After a burst of hashes the memory they took goes back to the OS.
func TestHashMemoryIsReleasedWhenIdle(t *testing.T) {
	h := Hasher{MemoryKiB: 8 * 1024, Time: 1, Threads: 1}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 3 {
		h.Verify("pw", h.Hash("pw"))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		if m.NumForcedGC > before.NumForcedGC && m.HeapIdle-m.HeapReleased < 4<<20 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s: forced GCs %d → %d, %d MB idle not released", before.NumForcedGC, m.NumForcedGC, (m.HeapIdle-m.HeapReleased)>>20)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
