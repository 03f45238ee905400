package main

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
)

// startPprof serves Go's profiler on BEAVER_PPROF_ADDR (e.g. 127.0.0.1:6060)
// when set: for operators chasing a hot path, off by default.
func startPprof(log *slog.Logger) {
	addr := os.Getenv("BEAVER_PPROF_ADDR")
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	go func() { log.Warn("pprof server stopped", "err", http.ListenAndServe(addr, mux)) }()
}
