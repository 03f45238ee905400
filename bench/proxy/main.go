// Command proxy is the benchmark's proxy-only baseline: Go's standard
// reverse proxy with a tuned transport and nothing else (no auth, no
// parsing, no billing). It is the lower bound of what any proxy-only
// gateway in Go adds; bench/ runs it beside Beaver in the same run.
package main

import (
	"bytes"
	"flag"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve")
	target := flag.String("target", "", "upstream origin")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || u.Host == "" {
		log.Fatalf("proxy: bad -target %q", *target)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}
	rp.FlushInterval = -1 // stream as it arrives
	// Read the request body before proxying, as any gateway that looks at
	// the request does: net/http closes an unread request body once the
	// response headers are written, and ReverseProxy would then cut a
	// streamed answer (golang/go#40747).
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		rp.ServeHTTP(w, r)
	})
	log.Fatal(http.ListenAndServe(*listen, h))
}
