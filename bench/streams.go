package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// streamsOptions is the -streams mode: N long streams open at once.
type streamsOptions struct {
	n        int           // streams
	chunks   int           // words the fake streams in each
	interval time.Duration // before each word
	spread   time.Duration // the starts are spread evenly over this
}

// longRun is what a run of long streams saw on one path.
type longRun struct {
	first  []time.Duration // sorted: request sent to the first data line
	errors int64
	chunks int64 // data lines received ([DONE] aside)
}

// longStreams opens o.n streams of t, started evenly over o.spread, reads
// each to its end and returns their first-byte times and chunk count.
func longStreams(t target, o streamsOptions) longRun {
	var (
		mu     sync.Mutex
		run    longRun
		errs   atomic.Int64
		chunks atomic.Int64
		wg     sync.WaitGroup
	)
	run.first = make([]time.Duration, 0, o.n)
	start := time.Now()
	for i := 0; i < o.n; i++ {
		at := start.Add(time.Duration(i) * o.spread / time.Duration(o.n))
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(at))
			first, n, err := t.long()
			chunks.Add(n)
			if err != nil {
				reportErr(t, err)
				errs.Add(1)
				return
			}
			mu.Lock()
			run.first = append(run.first, first)
			mu.Unlock()
		}()
	}
	wg.Wait()
	run.errors, run.chunks = errs.Load(), chunks.Load()
	sort.Slice(run.first, func(i, j int) bool { return run.first[i] < run.first[j] })
	if len(run.first) == 0 {
		run.first = append(run.first, 0)
	}
	return run
}

// long sends one streaming request and reads it to its end: the time to its
// first data line and how many data lines came. Beaver's answers go to the
// recorder like any other (the billing check covers them).
func (t target) long() (first time.Duration, chunks int64, err error) {
	req, _ := http.NewRequest("POST", t.url, bytes.NewReader(t.body))
	req.Header.Set("Content-Type", "application/json")
	if t.key != "" {
		req.Header.Set("Authorization", "Bearer "+t.key)
	}
	start := time.Now()
	res, err := client.Do(req)
	if err != nil {
		t.rec.failed()
		return 0, 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.rec.failed()
		return 0, 0, fmt.Errorf("status %d", res.StatusCode)
	}
	var r result
	br := bufio.NewReaderSize(res.Body, 16<<10) // Beaver's and the fake's lines are far shorter
	var last []byte
	for {
		line, rerr := br.ReadSlice('\n')
		if data, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
			data = bytes.TrimRight(data, "\r\n")
			if string(data) != "[DONE]" {
				if chunks == 0 {
					first = time.Since(start)
				}
				chunks++
				last = append(last[:0], data...)
			}
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) {
				err = rerr
			}
			break
		}
	}
	if err == nil {
		err = lastEvent(last, &r)
	}
	if err == nil && chunks == 0 {
		err = fmt.Errorf("no data")
	}
	if err != nil {
		t.rec.failed()
		return 0, chunks, err
	}
	r.total = time.Since(start)
	t.rec.add(r)
	return first, chunks, nil
}

// cpuTicks is a process's user plus system CPU time, in clock ticks
// (/proc/PID/stat fields 14 and 15); -1 if it cannot be read.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command name (field 2) may hold spaces: count from its ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3
	if len(f) < 13 {
		return -1
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return u + s
}

// clockTick is USER_HZ, 100 on Linux everywhere Go runs.
const clockTick = 10 * time.Millisecond

// peakRSS samples pid's VmRSS every 50 ms until stop is closed and sends
// the highest (MB) on the returned channel.
func peakRSS(pid int, stop <-chan struct{}) <-chan float64 {
	out := make(chan float64, 1)
	go func() {
		peak := procMB(pid, "VmRSS")
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				out <- max(peak, procMB(pid, "VmRSS"))
				return
			case <-tick.C:
				peak = max(peak, procMB(pid, "VmRSS"))
			}
		}
	}()
	return out
}

// measured is what one process spent on a run of long streams.
type measured struct {
	run       longRun
	peakMB    float64
	perStream float64 // KB of RSS per open stream over the process's idle RSS
	perChunk  float64 // µs of CPU per relayed chunk
}

// measure runs o's long streams through t while sampling process pid's
// RSS and CPU; prof, when set, profiles it over the run.
func measure(t target, o streamsOptions, pid int, idle float64, prof func(time.Duration) <-chan error) measured {
	stop := make(chan struct{})
	peak := peakRSS(pid, stop)
	var profDone <-chan error
	if prof != nil {
		profDone = prof(o.spread + time.Duration(o.chunks)*o.interval - time.Second)
	}
	cpu0 := cpuTicks(pid)
	run := longStreams(t, o)
	cpu1 := cpuTicks(pid)
	close(stop)
	if profDone != nil {
		if err := <-profDone; err != nil {
			fmt.Fprintln(os.Stderr, "bench: profile:", err)
		}
	}
	m := measured{run: run, peakMB: <-peak}
	cpu := time.Duration(cpu1-cpu0) * clockTick
	if run.chunks > 0 {
		m.perChunk = float64(cpu/time.Duration(run.chunks)) / float64(time.Microsecond)
	}
	m.perStream = (m.peakMB - idle) * 1024 / float64(o.n)
	return m
}

// runStreams is the -streams mode after warm-up: short streams at conns
// connections (direct, proxy-only, Beaver), then o.n long streams direct,
// through the proxy-only baseline and through Beaver. It prints the
// figures and returns the summary's middle part.
// prof, when set, profiles Beaver over the long streams through it.
// pids and idle are Beaver's and the proxy's processes and their idle RSS.
func runStreams(o streamsOptions, conns int, d time.Duration, direct, proxy, beaver target, long func(upstream bool) []byte, pids [2]int, idle [2]float64, prof func(time.Duration) <-chan error) string {
	dRPS, dErr := load(direct, conns, d)
	pRPS, pErr := load(proxy, conns, d)
	bRPS, bErr := load(beaver, conns, d)
	fmt.Printf("short streams  %d connections: direct %7.0f/s   proxy-only %7.0f/s (%d errors)   Beaver %7.0f/s (%d errors)   Beaver/proxy-only %.2f   (direct errors %d)\n",
		conns, dRPS, pRPS, pErr, bRPS, bErr, bRPS/pRPS, dErr)

	fmt.Printf("long streams   %d streams of %d chunks %s apart, started over %s\n", o.n, o.chunks, o.interval, o.spread)
	dRun := longStreams(direct.with(long(true)), o)
	fmt.Printf("  direct       first byte p50 %s p99 %s max %s   errors %d   chunks %d\n",
		rd(q(dRun.first, .50)), rd(q(dRun.first, .99)), rd(maxOf(dRun.first)), dRun.errors, dRun.chunks)

	pRun := measure(proxy.with(long(true)), o, pids[1], idle[1], nil)
	fmt.Printf("  proxy-only   first byte p50 %s p99 %s max %s   errors %d   chunks %d   RSS %.1f KB per open stream   CPU %.1f µs per relayed chunk\n",
		rd(q(pRun.run.first, .50)), rd(q(pRun.run.first, .99)), rd(maxOf(pRun.run.first)), pRun.run.errors, pRun.run.chunks, pRun.perStream, pRun.perChunk)

	idleNow := procMB(pids[0], "VmRSS")
	b := measure(beaver.with(long(false)), o, pids[0], idle[0], prof)
	bRun := b.run
	fmt.Printf("  Beaver       first byte p50 %s p99 %s max %s   errors %d   chunks %d\n",
		rd(q(bRun.first, .50)), rd(q(bRun.first, .99)), rd(maxOf(bRun.first)), bRun.errors, bRun.chunks)
	fmt.Printf("  Beaver       RSS idle %.1f MB (before this run %.1f MB), peak %.1f MB: %.1f KB per open stream   %.1f µs CPU per relayed chunk\n",
		idle[0], idleNow, b.peakMB, b.perStream, b.perChunk)
	return fmt.Sprintf("short streams Beaver/proxy-only %.2f, %d long streams: first byte p50 %s p99 %s (direct %s, %s; proxy-only %s, %s), errors %d (direct %d, proxy-only %d), RSS per stream %.1f KB (proxy-only %.1f), CPU per chunk %.1f µs (proxy-only %.1f)",
		bRPS/pRPS, o.n, ms(q(bRun.first, .50)), ms(q(bRun.first, .99)), ms(q(dRun.first, .50)), ms(q(dRun.first, .99)),
		ms(q(pRun.run.first, .50)), ms(q(pRun.run.first, .99)),
		bRun.errors, dRun.errors, pRun.run.errors, b.perStream, pRun.perStream, b.perChunk, pRun.perChunk)
}
