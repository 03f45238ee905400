// Command bench measures Beaver against a direct call to the same fake
// upstream and against a plain Go reverse proxy (bench/proxy), in one run on
// this machine: requests per second at 50 connections, added latency (p50,
// p99) at 1 connection, with -stream also the added time to first byte and
// the gaps between stream chunks, Beaver's idle and peak RSS, and a check
// that every answer was billed exactly once. Beaver runs as a real
// `beaver api` child process with billing on (every request is admitted,
// charged, logged and committed). See bench/README.md.
//
//	go run ./bench                       # embedded SQLite
//	go run ./bench -database postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//	go run ./bench -stream -env BEAVER_SOME_OPTION=value
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
)

// envFlags is a repeatable -env KEY=VALUE.
type envFlags []string

func (e *envFlags) String() string { return strings.Join(*e, " ") }

func (e *envFlags) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	*e = append(*e, v)
	return nil
}

type options struct {
	dbURL    string
	conns    int
	duration time.Duration
	latN     int
	gapN     int
	stream   bool
	profile  string
	history  int
	env      envFlags
	replicas int
	redis    string
	streams  streamsOptions
}

func main() {
	var o options
	flag.StringVar(&o.dbURL, "database", "", "BEAVER_DATABASE_URL for Beaver (default: a fresh SQLite file)")
	flag.IntVar(&o.conns, "c", 50, "connections for the throughput run")
	flag.DurationVar(&o.duration, "d", 10*time.Second, "length of each throughput run")
	flag.IntVar(&o.latN, "n", 2000, "sequential requests for the latency run")
	flag.IntVar(&o.gapN, "gapn", 50, "with -stream: sequential requests of spaced chunks for the gap run")
	flag.BoolVar(&o.stream, "stream", false, "use streaming requests")
	flag.StringVar(&o.profile, "cpuprofile", "", "write a CPU profile of Beaver during its throughput run to this file (-streams: during its long streams, with FILE.allocs, FILE.block, FILE.mutex)")
	flag.IntVar(&o.history, "history", 0, "instead of the load runs: load N usage logs and charges of one account, then time the usage and billing views")
	flag.IntVar(&o.replicas, "replicas", 0, "N > 0: N beaver api processes on one PostgreSQL database, requests round robin; reports settlement commits/s")
	flag.StringVar(&o.redis, "redis", "", "with -replicas: BEAVER_REDIS_URL of every replica (shared rate limits)")
	flag.IntVar(&o.streams.n, "streams", 0, "N long streams at once, direct and through Beaver, after short streams at -c connections (replaces the other runs)")
	flag.IntVar(&o.streams.chunks, "chunks", 50, "with -streams: words (chunks) of each long stream")
	flag.DurationVar(&o.streams.interval, "interval", 200*time.Millisecond, "with -streams: the fake's wait before each chunk")
	flag.DurationVar(&o.streams.spread, "spread", 5*time.Second, "with -streams: the long streams' starts are spread evenly over this")
	flag.Var(&o.env, "env", "KEY=VALUE added to Beaver's environment (repeatable)")
	flag.Parse()
	if o.streams.n > 0 {
		o.stream = true
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// The gap run's stream: gapWords words, the fake waits gapDelayMS before each.
const (
	gapWords   = 32
	gapDelayMS = 2
)

func run(o options) error {
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
	build := exec.Command("go", "build", "-tags", "nomsgpack", "-o", bin, "./cmd/beaver") // as the Makefile builds it
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build beaver: %w", err)
	}
	if o.replicas > 0 {
		return runReplicas(o, fakeURL, bin, dir)
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
	dbURL := o.dbURL
	if dbURL == "" {
		dbURL = "sqlite://" + filepath.Join(dir, "beaver.db")
	}
	const adminEmail, adminPassword = "bench-admin@example.com", "bench-admin-password-1"
	pprofAddr, _ := freeAddr()
	cmd := exec.Command(bin, "api")
	cmd.Env = append(os.Environ(), "BEAVER_ADDR="+addr, "BEAVER_DATABASE_URL="+dbURL, "BEAVER_DATA_DIR="+dir,
		"BEAVER_ADMIN_EMAIL="+adminEmail, "BEAVER_ADMIN_PASSWORD="+adminPassword, "BEAVER_AUTH_LIMIT=1000",
		"OPENAI_BASE_URL="+fakeURL+"/v1", "OPENAI_API_KEY=fake", "TEMPORAL_ADDRESS=127.0.0.1:1", "BEAVER_PPROF_ADDR="+pprofAddr)
	cmd.Env = append(cmd.Env, o.env...) // last wins: -env may override the above
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
	if o.history > 0 {
		return runHistory(base, dbURL, key, adminEmail, adminPassword, o.history)
	}
	before, _, err := balance(base, key)
	if err != nil {
		return err
	}
	// Idle means quiet for a moment: setup's password hashes (19 MiB of
	// argon2 memory each) go back to the OS a second after the last one.
	time.Sleep(2 * time.Second)
	idleRSS := procMB(cmd.Process.Pid, "VmRSS")
	proxyIdleRSS := procMB(proxyCmd.Process.Pid, "VmRSS")

	// Beaver is asked for openai/gpt-4o-mini and streams from the fake with
	// stream_options.include_usage; direct and proxy-only ask the fake the
	// same (upstream = true).
	body := func(upstream bool, prompt string, maxTokens int) []byte {
		m := map[string]any{"model": "openai/gpt-4o-mini", "stream": o.stream, "max_tokens": maxTokens,
			"messages": []any{map[string]string{"role": "user", "content": prompt}}}
		if upstream {
			m["model"] = "gpt-4o-mini"
			if o.stream {
				m["stream_options"] = map[string]bool{"include_usage": true}
			}
		}
		b, _ := json.Marshal(m)
		return b
	}
	const prompt = "benchmark me [[words:8]]"
	rec := &recorder{}
	direct := target{name: "direct", url: fakeURL + "/v1/chat/completions", body: body(true, prompt, 16), stream: o.stream}
	proxy := target{name: "proxy-only", url: "http://" + proxyAddr + "/v1/chat/completions", body: direct.body, stream: o.stream}
	if err := waitListen(proxyAddr); err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	beaver := target{name: "Beaver", url: base + "/v1/chat/completions", body: body(false, prompt, 16), key: key, stream: o.stream, rec: rec}

	// Warm every path (connections, caches, first lease).
	load(direct, 4, time.Second)
	load(proxy, 4, time.Second)
	load(beaver, 4, time.Second)

	env := ""
	if len(o.env) > 0 {
		env = " env=" + strings.Join(o.env, ",")
	}
	fmt.Printf("Beaver benchmark (%s, stream=%v%s, %s per throughput run, %d connections)\n", dbKind(dbURL), o.stream, env, o.duration, o.conns)
	if o.streams.n > 0 {
		long := func(upstream bool) []byte {
			return body(upstream, fmt.Sprintf("benchmark me [[words:%d]] [[chunk-delay:%d]]", o.streams.chunks, o.streams.interval.Milliseconds()), 2*o.streams.chunks)
		}
		prof := func(d time.Duration) <-chan error { return fetchProfiles("http://"+pprofAddr, o.profile, d) }
		if o.profile == "" {
			prof = nil
		}
		mid := runStreams(o.streams, o.conns, o.duration, direct, proxy, beaver, long,
			[2]int{cmd.Process.Pid, proxyCmd.Process.Pid}, [2]float64{idleRSS, proxyIdleRSS}, prof)
		return finish(base, key, before, rec, true, fmt.Sprintf("summary %s%s: %s", dbKind(dbURL), env, mid))
	}
	dRPS, dErr := load(direct, o.conns, o.duration)
	pRPS, pErr := load(proxy, o.conns, o.duration)
	profDone := make(chan error, 1)
	if o.profile != "" {
		go func() { profDone <- fetchProfile("http://"+pprofAddr, o.profile, o.duration-time.Second) }()
	} else {
		profDone <- nil
	}
	bRPS, bErr := load(beaver, o.conns, o.duration)
	if err := <-profDone; err != nil {
		fmt.Fprintln(os.Stderr, "bench: profile:", err)
	}
	fmt.Printf("throughput  direct %7.0f req/s   proxy-only %7.0f req/s (%d errors)   Beaver %7.0f req/s (%d errors)\n",
		dRPS, pRPS, pErr, bRPS, bErr)
	fmt.Printf("            Beaver/direct %.2f   Beaver/proxy-only %.2f   (direct errors %d)\n", bRPS/dRPS, bRPS/pRPS, dErr)

	dLat, pLat, bLat := sequential(direct, o.latN), sequential(proxy, o.latN), sequential(beaver, o.latN)
	fmt.Printf("latency     direct p50 %s p99 %s   proxy-only p50 %s p99 %s   Beaver p50 %s p99 %s\n",
		rd(q(dLat.total, .50)), rd(q(dLat.total, .99)), rd(q(pLat.total, .50)), rd(q(pLat.total, .99)), rd(q(bLat.total, .50)), rd(q(bLat.total, .99)))
	added := func(l, d []time.Duration, p float64) time.Duration { return q(l, p) - q(d, p) }
	fmt.Printf("added       proxy-only p50 %s p99 %s   Beaver p50 %s p99 %s   (errors: direct %d proxy-only %d Beaver %d)\n",
		rd(added(pLat.total, dLat.total, .50)), rd(added(pLat.total, dLat.total, .99)),
		rd(added(bLat.total, dLat.total, .50)), rd(added(bLat.total, dLat.total, .99)), dLat.errors, pLat.errors, bLat.errors)
	summaryFirst := ""
	if o.stream {
		fmt.Printf("first byte  direct p50 %s p99 %s   proxy-only p50 %s p99 %s   Beaver p50 %s p99 %s\n",
			rd(q(dLat.first, .50)), rd(q(dLat.first, .99)), rd(q(pLat.first, .50)), rd(q(pLat.first, .99)), rd(q(bLat.first, .50)), rd(q(bLat.first, .99)))
		fmt.Printf("added first byte  proxy-only p50 %s p99 %s   Beaver p50 %s p99 %s\n",
			rd(added(pLat.first, dLat.first, .50)), rd(added(pLat.first, dLat.first, .99)),
			rd(added(bLat.first, dLat.first, .50)), rd(added(bLat.first, dLat.first, .99)))
		summaryFirst = fmt.Sprintf("first byte added p50 Beaver %s (proxy-only %s), p99 Beaver %s (proxy-only %s), ",
			ms(added(bLat.first, dLat.first, .50)), ms(added(pLat.first, dLat.first, .50)),
			ms(added(bLat.first, dLat.first, .99)), ms(added(pLat.first, dLat.first, .99)))

		// Chunks spaced gapDelayMS apart by the fake: a path that buffers
		// shows gaps near zero and one long one.
		gp := fmt.Sprintf("benchmark me [[words:%d]] [[chunk-delay:%d]]", gapWords, gapDelayMS)
		dGap := sequential(direct.with(body(true, gp, 2*gapWords)), o.gapN)
		bGap := sequential(beaver.with(body(false, gp, 2*gapWords)), o.gapN)
		gaps := func(s seq) string {
			return fmt.Sprintf("p50 %s p99 %s max %s (tail p50 %s)", rd(q(s.gaps, .50)), rd(q(s.gaps, .99)), rd(maxOf(s.gaps)), rd(q(s.tail, .50)))
		}
		fmt.Printf("chunk gaps  %d words %d ms apart: direct %s   Beaver %s   (errors: direct %d Beaver %d)\n",
			gapWords, gapDelayMS, gaps(dGap), gaps(bGap), dGap.errors, bGap.errors)
	}
	peakRSS := procMB(cmd.Process.Pid, "VmHWM")
	fmt.Printf("RSS         Beaver idle %.1f MB   peak %.1f MB\n", idleRSS, peakRSS)
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
	return finish(base, key, before, rec, o.stream, fmt.Sprintf("summary %s stream=%v%s: Beaver/proxy-only %.2f, Beaver/direct %.2f, added p50 Beaver %s (proxy-only %s), added p99 Beaver %s (proxy-only %s), %sRSS idle %.0f MB peak %.0f MB",
		dbKind(dbURL), o.stream, env, bRPS/pRPS, bRPS/dRPS,
		ms(added(bLat.total, dLat.total, .50)), ms(added(pLat.total, dLat.total, .50)),
		ms(added(bLat.total, dLat.total, .99)), ms(added(pLat.total, dLat.total, .99)),
		summaryFirst, idleRSS, peakRSS))
}

// finish checks that every answer was billed exactly once and prints the
// summary line with the verdict.
func finish(base, key string, before int64, rec *recorder, stream bool, summary string) error {
	if err := waitLeases(base, key); err != nil {
		return err
	}
	if err := checkLedger(base, key); err != nil {
		return err
	}
	billErr := checkBilledOnce(base, key, before, rec, stream)
	billed := "ok"
	if billErr != nil {
		billed = "FAILED"
	}
	fmt.Printf("%s, billed exactly once: %s\n", summary, billed)
	if billErr != nil {
		return billErr
	}
	if rec.errors > 0 {
		return fmt.Errorf("%d requests to Beaver failed during the run (see the errors above and beaver.log; BENCH_KEEP=1 keeps it)", rec.errors)
	}
	return nil
}
