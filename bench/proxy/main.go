// Command proxy is the benchmark's proxy-only baseline: Go's standard
// reverse proxy with a tuned transport and nothing else (no auth, no
// parsing, no billing). It is the lower bound of what any proxy-only
// gateway in Go adds; bench/ runs it beside Beaver in the same run.
package main

import (
	"flag"
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
	log.Fatal(http.ListenAndServe(*listen, rp))
}
