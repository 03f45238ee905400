package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

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

// call sends a JSON request and decodes the JSON object answered (numbers
// as json.Number, so micros stay exact).
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
	dec := json.NewDecoder(res.Body)
	dec.UseNumber()
	_ = dec.Decode(&out)
	if res.StatusCode >= 300 {
		return out, fmt.Errorf("%s %s: %d %v", method, url, res.StatusCode, out)
	}
	return out, nil
}

// procMB reads a /proc/PID/status field given in kB (VmRSS: now, VmHWM:
// peak) and returns it in MB (1 MB = 1024 kB); -1 if it cannot be read.
func procMB(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				return -1
			}
			return kb / 1024
		}
	}
	return -1
}

func dbKind(u string) string {
	if strings.HasPrefix(u, "sqlite") {
		return "SQLite"
	}
	return "PostgreSQL"
}

// fetchProfile saves a CPU profile of Beaver taken over d.
func fetchProfile(base, path string, d time.Duration) error {
	return fetchURL(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, int(d.Seconds())), path)
}

// fetchURL saves the body of GET url to path.
func fetchURL(url, path string) error {
	res, err := http.Get(url)
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

// fetchProfiles saves Beaver's CPU profile over d to path, then its
// allocation, block and mutex profiles to path.allocs, .block and .mutex
// (the last two sample only with BEAVER_PPROF_CONTENTION set), its heap
// with the runtime's memory statistics (path.heap.txt: stacks against heap)
// and its goroutines by stack (path.goroutine.txt), taken at the end of d
// while the streams are still open.
func fetchProfiles(base, path string, d time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() {
		err := fetchProfile(base, path, d)
		if err == nil {
			err = fetchURL(base+"/debug/pprof/heap?debug=1", path+".heap.txt")
		}
		if err == nil {
			err = fetchURL(base+"/debug/pprof/goroutine?debug=1", path+".goroutine.txt")
		}
		for _, name := range []string{"allocs", "block", "mutex"} {
			if err != nil {
				break
			}
			err = fetchURL(base+"/debug/pprof/"+name, path+"."+name)
		}
		done <- err
	}()
	return done
}
