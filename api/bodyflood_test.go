//go:build linux

package api_test

// Issue 26, item 2: strangers holding many slow request bodies must not lock
// customers out. On Linux the whole of 127.0.0.0/8 is loopback, so one test
// can be a hundred client addresses.

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/config"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
)

// needOpenFiles raises the soft limit on open files to n when it is lower,
// or skips the test when the hard limit does not allow it.
func needOpenFiles(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("cannot read the open-files limit: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("this test opens about %d files; the hard limit is %d (raise it with ulimit -Hn)", n, lim.Max)
	}
	old := lim
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("cannot raise the open-files limit to %d: %v", n, err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// bodiesRefused sums beaver_http_request_bodies_refused_total over its
// reasons, and returns the count of one reason too.
func bodiesRefused(h *harness, reason string) (all, one float64) {
	h.t.Helper()
	r := h.do("GET", "/metrics", "", nil).want(200)
	for _, line := range strings.Split(string(r.Raw), "\n") {
		rest, ok := strings.CutPrefix(line, "beaver_http_request_bodies_refused_total{")
		if !ok {
			continue
		}
		labels, v, _ := strings.Cut(rest, "} ")
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			h.t.Fatalf("metric line %q", line)
		}
		all += f
		if labels == `reason="`+reason+`"` {
			one += f
		}
	}
	return all, one
}

// dialStranger opens a slow connection from ip: headers announcing a body
// on path, then one byte of it, then nothing. When the connection ends,
// ended gets the status the server answered (0: it ended without a readable
// answer).
func dialStranger(addr, ip, path string, ended chan<- int) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: beaver.test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", path)
	if _, err := c.Write([]byte(head)); err != nil {
		_ = c.Close()
		return nil, err
	}
	go func() {
		// No deadline: the connection ends when the server sheds it, or
		// when the test closes it.
		status := 0
		if res, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
			_ = res.Body.Close()
			status = res.StatusCode
		}
		ended <- status
	}()
	return c, nil
}

// Strangers on a hundred addresses each hold a slow body on /auth/login, far
// more of them than the anonymous pool admits, and under every per-address
// cap. Customers are not locked out: API-key and session requests are
// admitted under their accounts' budgets, a login (anonymous) is admitted by
// shedding an idle stranger, and a bad key is refused before its body is
// read. The strangers are shed with 408 (which ones first: bodygate_test.go).
func TestStrangersCannotLockOutCustomers(t *testing.T) {
	const (
		addrs, perAddr = 100, 20 // 2,000 slow connections, 20 per address
		pool           = 64      // bodies a pool admits at once
		strangers      = addrs * perAddr
	)
	needOpenFiles(t, 2*strangers+1024) // both ends of every connection are in this process
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{}, func(c *config.Config) {
			// Only shedding, never the body timeout, may free a stranger's
			// slot while the test runs.
			c.BodyReadTimeout = 10 * time.Minute
			c.MaxBodiesPerIP = 32 // above perAddr: no stranger is refused by its address's cap
			// Every pool is far smaller than the flood (before the fix,
			// MaxBodiesInFlight was the one pool all bodies shared).
			c.MaxBodiesInFlight = pool
			c.MaxAnonBodies = pool
		})
		addr := serveLikeBinary(t, inf.harness)
		u, key := inf.fundedKey("10", nil)
		probe := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
		if c, err := probe.Dial("tcp", addr); err != nil {
			t.Skipf("127.0.0.2 is not usable as a source address here (%v); this test needs 127.0.0.0/8 on loopback", err)
		} else {
			_ = c.Close()
		}
		ended := make(chan int, strangers) // buffered: a stranger never waits to report

		var (
			mu    sync.Mutex
			conns []net.Conn
			wg    sync.WaitGroup
		)
		closeAll := func() {
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				_ = c.Close()
			}
		}
		t.Cleanup(closeAll)
		for i := range addrs {
			wg.Add(1)
			go func(ip string) {
				defer wg.Done()
				for range perAddr {
					c, err := dialStranger(addr, ip, "/auth/login", ended)
					if err != nil {
						t.Errorf("stranger from %s: %v", ip, err)
						return
					}
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
				}
			}(fmt.Sprintf("127.0.0.%d", i+2))
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		// Every stranger's body has met the gate: admitted (counted in
		// flight) or refused or shed (counted by reason).
		eventually(t, time.Minute, "every stranger's body admitted or turned away", func() bool {
			refused, _ := bodiesRefused(inf.harness, "")
			return metric(inf.harness, bodiesInFlight)+refused == strangers
		})
		if n := metric(inf.harness, bodiesInFlight); n > pool {
			t.Fatalf("%v bodies in flight, want at most the anonymous pool's %d", n, pool)
		}

		// Customers get through: a chat completion with an API key, a
		// session request with a body, and a new sign-in.
		r := inf.do("POST", "/v1/chat/completions", key, chatBody("openai/gpt-4o-mini", "during the flood [[words:3]]")).want(200)
		if r.num("usage.completion_tokens") != 3 {
			t.Fatalf("chat during the flood: %s", r.Raw)
		}
		inf.createKey(u, map[string]any{"name": "made during the flood"})
		inf.login(u.Email, u.Password)

		// A bad key is refused before its body is read: at once, though
		// the body would take the body timeout (minutes) to fail.
		rc, _ := dialRaw(t, addr, "")
		rc.head("/v1/chat/completions", "sk-beaver-not-a-real-key", 100)
		if err := rc.send("{"); err != nil {
			t.Fatal(err)
		}
		rc.mustAnswer().wantError(http.StatusUnauthorized, "invalid_api_key")

		// The strangers were shed (the login shed one more): each shed
		// connection is answered 408 and closed.
		_, shed := bodiesRefused(inf.harness, "shed")
		if want := float64(strangers - pool + 1); shed != want {
			t.Fatalf("%v stranger bodies shed, want %v", shed, want)
		}
		answered, cut := 0, 0
		statuses := map[int]int{}
		for answered+cut < int(shed) {
			select {
			case st := <-ended:
				if st == 0 {
					cut++
				} else {
					answered++
					statuses[st]++
				}
			case <-time.After(time.Minute):
				t.Fatalf("only %d of %v shed connections ended (%v)", answered+cut, shed, statuses)
			}
		}
		if statuses[http.StatusRequestTimeout] != answered || answered == 0 {
			t.Fatalf("shed connections answered %v (%d ended without an answer), want only 408", statuses, cut)
		}
		t.Logf("%d strangers shed: %d answered 408, %d cut without a readable answer", int(shed), answered, cut)

		// The strangers gone, nothing stays counted.
		closeAll()
		eventually(t, time.Minute, "no body in flight", func() bool { return metric(inf.harness, bodiesInFlight) == 0 })
		inf.invariant(u.ID)
	})
}
