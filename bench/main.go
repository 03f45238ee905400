// Command bench measures Beaver against a direct call to the same fake
// upstream, in one run on this machine: requests per second at 50
// connections, added latency (p50, p99) at 1 connection, and Beaver's peak
// RSS. Beaver runs as a real `beaver api` child process with billing on
// (every request is admitted, charged, logged and committed).
//
//	go run ./bench                       # embedded SQLite
//	go run ./bench -database postgres://postgres@127.0.0.1:5432/test?sslmode=disable
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
)

func main() {
	var (
		dbURL    = flag.String("database", "", "BEAVER_DATABASE_URL for Beaver (default: a fresh SQLite file)")
		conns    = flag.Int("c", 50, "connections for the throughput run")
		duration = flag.Duration("d", 10*time.Second, "length of each throughput run")
		latN     = flag.Int("n", 2000, "sequential requests for the latency run")
		stream   = flag.Bool("stream", false, "use streaming requests")
		profile  = flag.String("cpuprofile", "", "write a CPU profile of Beaver during its throughput run to this file")
	)
	flag.Parse()
	if err := run(*dbURL, *conns, *duration, *latN, *stream, *profile); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(dbURL string, conns int, duration time.Duration, latN int, stream bool, profile string) error {
	dir, err := os.MkdirTemp("", "beaver-bench-")
	if err != nil {
		return err
	}
	defer func() {
		if os.Getenv("BENCH_KEEP") == "" {
			_ = os.RemoveAll(dir)
		}
	}()
	fmt.Fprintln(os.Stderr, "bench: work dir", dir)

	fake := fakeupstream.New(fakeupstream.Options{DisableRecording: true})
	fakeURL, stopFake, err := serve(fake)
	if err != nil {
		return err
	}
	defer stopFake()

	bin := filepath.Join(dir, "beaver")
	build := exec.Command("go", "build", "-o", bin, "./cmd/beaver")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build beaver: %w", err)
	}
	proxyBin := filepath.Join(dir, "proxy")
	if out, err := exec.Command("go", "build", "-o", proxyBin, "./bench/proxy").CombinedOutput(); err != nil {
		return fmt.Errorf("build proxy: %v\n%s", err, out)
	}
	proxyAddr, _ := freeAddr()
	proxyCmd := exec.Command(proxyBin, "-listen", proxyAddr, "-target", fakeURL)
	if err := proxyCmd.Start(); err != nil {
		return err
	}
	defer func() { _ = proxyCmd.Process.Kill(); _, _ = proxyCmd.Process.Wait() }()
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	if dbURL == "" {
		dbURL = "sqlite://" + filepath.Join(dir, "beaver.db")
	}
	const adminEmail, adminPassword = "bench-admin@example.com", "bench-admin-password-1"
	pprofAddr, _ := freeAddr()
	cmd := exec.Command(bin, "api")
	cmd.Env = append(os.Environ(), "BEAVER_ADDR="+addr, "BEAVER_DATABASE_URL="+dbURL, "BEAVER_DATA_DIR="+dir,
		"BEAVER_ADMIN_EMAIL="+adminEmail, "BEAVER_ADMIN_PASSWORD="+adminPassword, "BEAVER_AUTH_LIMIT=1000",
		"OPENAI_BASE_URL="+fakeURL+"/v1", "OPENAI_API_KEY=fake", "TEMPORAL_ADDRESS=127.0.0.1:1", "BEAVER_PPROF_ADDR="+pprofAddr)
	logf, _ := os.Create(filepath.Join(dir, "beaver.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() }()
	base := "http://" + addr
	if err := waitUp(base + "/health"); err != nil {
		return err
	}
	key, err := setup(base, adminEmail, adminPassword)
	if err != nil {
		return err
	}

	body, _ := json.Marshal(map[string]any{"model": "openai/gpt-4o-mini", "stream": stream, "max_tokens": 16,
		"messages": []any{map[string]string{"role": "user", "content": "benchmark me [[words:8]]"}}})
	directBody, _ := json.Marshal(map[string]any{"model": "gpt-4o-mini", "stream": stream, "max_tokens": 16,
		"messages": []any{map[string]string{"role": "user", "content": "benchmark me [[words:8]]"}}})
	direct := target{url: fakeURL + "/v1/chat/completions", body: directBody}
	proxy := target{url: "http://" + proxyAddr + "/v1/chat/completions", body: directBody}
	if err := waitListen(proxyAddr); err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	beaver := target{url: base + "/v1/chat/completions", body: body, key: key}

	// Warm both paths (connections, caches, first lease).
	load(direct, 4, time.Second)
	load(proxy, 4, time.Second)
	load(beaver, 4, time.Second)

	fmt.Printf("Beaver benchmark (%s, stream=%v, %s per throughput run, %d connections)\n", dbKind(dbURL), stream, duration, conns)
	dRPS, dErr := load(direct, conns, duration)
	pRPS, pErr := load(proxy, conns, duration)
	profDone := make(chan error, 1)
	if profile != "" {
		go func() { profDone <- fetchProfile("http://"+pprofAddr, profile, duration-time.Second) }()
	} else {
		profDone <- nil
	}
	bRPS, bErr := load(beaver, conns, duration)
	if err := <-profDone; err != nil {
		fmt.Fprintln(os.Stderr, "bench: profile:", err)
	}
	fmt.Printf("throughput  direct %7.0f req/s   proxy-only %7.0f req/s (%d errors)   Beaver %7.0f req/s (%d errors)\n",
		dRPS, pRPS, pErr, bRPS, bErr)
	fmt.Printf("            Beaver/direct %.2f   Beaver/proxy-only %.2f   (direct errors %d)\n", bRPS/dRPS, bRPS/pRPS, dErr)
	dLat := latency(direct, latN)
	pLat := latency(proxy, latN)
	bLat := latency(beaver, latN)
	p := func(l []time.Duration, q float64) time.Duration { return l[int(q*float64(len(l)-1))] }
	r := func(d time.Duration) string { return d.Round(time.Microsecond).String() }
	fmt.Printf("latency     direct p50 %s p99 %s   proxy-only p50 %s p99 %s   Beaver p50 %s p99 %s\n",
		r(p(dLat, .50)), r(p(dLat, .99)), r(p(pLat, .50)), r(p(pLat, .99)), r(p(bLat, .50)), r(p(bLat, .99)))
	fmt.Printf("added       proxy-only p50 %s p99 %s   Beaver p50 %s p99 %s\n",
		r(p(pLat, .50)-p(dLat, .50)), r(p(pLat, .99)-p(dLat, .99)), r(p(bLat, .50)-p(dLat, .50)), r(p(bLat, .99)-p(dLat, .99)))
	fmt.Printf("peak RSS    Beaver %s\n", peakRSS(cmd.Process.Pid))
	if os.Getenv("BENCH_METRICS") != "" {
		if res, err := http.Get(base + "/metrics"); err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(l, "beaver_billing") && !strings.Contains(l, "_bucket") {
					fmt.Println("metric     ", l)
				}
			}
		}
	}
	return checkLedger(base, key)
}

type target struct {
	url  string
	body []byte
	key  string
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}}

func (t target) do() error {
	req, _ := http.NewRequest("POST", t.url, bytes.NewReader(t.body))
	req.Header.Set("Content-Type", "application/json")
	if t.key != "" {
		req.Header.Set("Authorization", "Bearer "+t.key)
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		return fmt.Errorf("status %d", res.StatusCode)
	}
	return nil
}

// load runs conns workers for d and returns requests per second.
func load(t target, conns int, d time.Duration) (float64, int64) {
	var ok, bad atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := t.do(); err != nil {
					bad.Add(1)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(ok.Load()) / time.Since(start).Seconds(), bad.Load()
}

// latency sends n requests one after another and returns sorted latencies.
func latency(t target, n int) []time.Duration {
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		s := time.Now()
		if err := t.do(); err == nil {
			out = append(out, time.Since(s))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	if len(out) == 0 {
		out = append(out, 0)
	}
	return out
}

func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitUp(url string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("beaver did not come up at %s", url)
}

func waitListen(addr string) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
	}
	return fmt.Errorf("nothing listens on %s", addr)
}

func call(method, url, token string, in any) (map[string]any, error) {
	var rd io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	if res.StatusCode >= 300 {
		return out, fmt.Errorf("%s %s: %d %v", method, url, res.StatusCode, out)
	}
	return out, nil
}

// setup signs in the admin, makes a funded account without limits, and
// returns an API key of it.
func setup(base, email, password string) (string, error) {
	login, err := call("POST", base+"/auth/login", "", map[string]string{"email": email, "password": password})
	if err != nil {
		return "", err
	}
	tok := login["access_token"].(string)
	acct, err := call("POST", base+"/admin/accounts", tok, map[string]any{"email": fmt.Sprintf("load-%d@example.com", time.Now().UnixNano()), "password": "load-test-password-1", "plan": "enterprise"})
	if err != nil {
		return "", err
	}
	id := acct["account"].(map[string]any)["id"].(string)
	if _, err := call("PATCH", base+"/admin/accounts/"+id, tok, map[string]any{"rpm_limit": 0, "monthly_request_limit": 0}); err != nil {
		return "", err
	}
	if _, err := call("POST", base+"/admin/top-up", tok, map[string]any{"account_id": id, "amount_usd": "100000"}); err != nil {
		return "", err
	}
	k, err := call("POST", base+"/admin/api-keys", tok, map[string]any{"account_id": id, "name": "bench"})
	if err != nil {
		return "", err
	}
	return k["key"].(string), nil
}

// checkLedger prints the account's final state: every request was charged.
func checkLedger(base, key string) error {
	b, err := call("GET", base+"/account/balance", key, nil)
	if err != nil {
		return err
	}
	fmt.Printf("after run   balance %v USD, reserved %v micros\n", b["balance_usd"], b["reserved_micros"])
	return nil
}

func peakRSS(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "VmHWM:"))
		}
	}
	return "unknown"
}

func dbKind(u string) string {
	if strings.HasPrefix(u, "sqlite") {
		return "SQLite"
	}
	return "PostgreSQL"
}

// fetchProfile saves a CPU profile of Beaver taken over d.
func fetchProfile(base, path string, d time.Duration) error {
	res, err := http.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, int(d.Seconds())))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, res.Body)
	return err
}
