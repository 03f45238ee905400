package main

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
)

// startPprof serves Go's profiler on BEAVER_PPROF_ADDR (e.g. 127.0.0.1:6060)
// when set: for operators chasing a hot path, off by default.
// BEAVER_PPROF_CONTENTION set also samples where goroutines block and which
// mutexes they wait on (/debug/pprof/block and /mutex), which costs a little
// on every contended lock: for profiling runs only.
func startPprof(log *slog.Logger) {
	addr := os.Getenv("BEAVER_PPROF_ADDR")
	if addr == "" {
		return
	}
	if os.Getenv("BEAVER_PPROF_CONTENTION") != "" {
		runtime.SetBlockProfileRate(10_000) // one sample per 10 µs blocked
		runtime.SetMutexProfileFraction(10)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	go func() { log.Warn("pprof server stopped", "err", http.ListenAndServe(addr, mux)) }()
}
