package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// runReplicas is -replicas N: N `beaver api` processes on one PostgreSQL
// database (and Redis, with -redis, for shared rate limits), a client that
// sends billed chat completions to them in turn, and the settlement commits
// per second they made together, then the exactly-once check across them.
func runReplicas(o options, fakeURL, bin, dir string) error {
	if !strings.HasPrefix(o.dbURL, "postgres") {
		return fmt.Errorf("-replicas needs -database postgres://…: replicas share one database")
	}
	const adminEmail, adminPassword = "bench-admin@example.com", "bench-admin-password-1"
	bases := make([]string, o.replicas)
	for i := range bases {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		cmd := exec.Command(bin, "api")
		cmd.Env = append(os.Environ(), "BEAVER_ADDR="+addr, "BEAVER_DATABASE_URL="+o.dbURL, "BEAVER_DATA_DIR="+dir,
			"BEAVER_ADMIN_EMAIL="+adminEmail, "BEAVER_ADMIN_PASSWORD="+adminPassword, "BEAVER_AUTH_LIMIT=1000",
			"BEAVER_SECRET=bench-secret-shared-by-every-replica-0123", fmt.Sprintf("BEAVER_INSTANCE_ID=bench-%d", i),
			"OPENAI_BASE_URL="+fakeURL+"/v1", "OPENAI_API_KEY=fake", "TEMPORAL_ADDRESS=127.0.0.1:1")
		if o.redis != "" {
			cmd.Env = append(cmd.Env, "BEAVER_REDIS_URL="+o.redis)
		}
		cmd.Env = append(cmd.Env, o.env...)
		logf, _ := os.Create(filepath.Join(dir, fmt.Sprintf("beaver-%d.log", i)))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return err
		}
		defer func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() }()
		bases[i] = "http://" + addr
		// One at a time: the first migrates and makes the admin.
		if err := waitUp(bases[i] + "/health"); err != nil {
			return fmt.Errorf("replica %d: %w", i, err)
		}
	}
	key, err := setup(bases[0], adminEmail, adminPassword)
	if err != nil {
		return err
	}
	before, _, err := balance(bases[0], key)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(map[string]any{"model": "openai/gpt-4o-mini", "stream": o.stream, "max_tokens": 16,
		"messages": []any{map[string]string{"role": "user", "content": "benchmark me [[words:8]]"}}})
	rec := &recorder{}
	targets := make([]target, len(bases))
	for i, base := range bases {
		targets[i] = target{name: fmt.Sprintf("Beaver %d", i), url: base + "/v1/chat/completions", body: b, key: key, stream: o.stream, rec: rec}
	}
	roundRobin(targets, 4*len(targets), time.Second) // warm-up: connections, first leases
	c0, err := commits(bases)
	if err != nil {
		return err
	}
	start := time.Now()
	rps, bad := roundRobin(targets, o.conns, o.duration)
	elapsed := time.Since(start)
	c1, err := commits(bases)
	if err != nil {
		return err
	}
	cps := (c1 - c0) / elapsed.Seconds()
	fmt.Printf("Beaver replicas benchmark (%d × beaver api, %s, redis=%v, stream=%v, %s, %d connections round robin)\n",
		len(bases), dbKind(o.dbURL), o.redis != "", o.stream, o.duration, o.conns)
	fmt.Printf("throughput  %7.0f billed req/s (%d errors)   settlement commits %7.0f /s (%.1f requests per commit)\n",
		rps, bad, cps, rps/max(cps, 1))
	for _, base := range bases {
		if err := waitLeases(base, key); err != nil {
			return err
		}
	}
	if err := checkLedger(bases[0], key); err != nil {
		return err
	}
	billErr := checkBilledOnce(bases[0], key, before, rec, o.stream)
	billed := "ok"
	if billErr != nil {
		billed = "FAILED"
	}
	fmt.Printf("summary %d replicas %s: %.0f billed req/s, %.0f settlement commits/s, billed exactly once: %s\n",
		len(bases), dbKind(o.dbURL), rps, cps, billed)
	if billErr != nil {
		return billErr
	}
	if rec.errors > 0 || bad > 0 {
		return fmt.Errorf("%d requests to Beaver failed during the run (BENCH_KEEP=1 keeps the replicas' logs)", max(int64(rec.errors), bad))
	}
	return nil
}

// roundRobin is load over several targets: each request goes to the next.
func roundRobin(ts []target, conns int, d time.Duration) (float64, int64) {
	var ok, bad, next atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t := ts[int(next.Add(1))%len(ts)]
				if _, err := t.do(false); err != nil {
					reportErr(t, err)
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

// commits is the settlement transactions the replicas committed so far
// (beaver_billing_commit_seconds_count, summed).
func commits(bases []string) (float64, error) {
	total := 0.0
	for _, base := range bases {
		res, err := http.Get(base + "/metrics")
		if err != nil {
			return 0, err
		}
		b, err := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if err != nil {
			return 0, err
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "beaver_billing_commit_seconds_count "); ok {
				n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					return 0, fmt.Errorf("metrics of %s: %q: %w", base, l, err)
				}
				total += n
			}
		}
	}
	return total, nil
}
