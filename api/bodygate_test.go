package api_test

// Who pays for a request body: credentials are checked from the headers
// before a byte of the body is read; an account's bodies count against its
// own budget; anonymous bodies, webhook bodies and authenticated bodies have
// pools of their own, and a full pool sheds its idlest body rather than
// refusing the new one. The server is served as `beaver api` serves it, so
// connection deadlines are real. bodyflood_test.go is the attack at scale.

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/config"
)

const (
	bodiesShed       = `beaver_http_request_bodies_refused_total{reason="shed"}`
	bodiesPerAccount = `beaver_http_request_bodies_refused_total{reason="per_account"}`
)

func inPool(h *harness, pool string) float64 {
	h.t.Helper()
	return metric(h, fmt.Sprintf(`beaver_http_request_bodies_in_pool{pool=%q}`, pool))
}

// announce sends a POST's request line and headers, announcing n body
// bytes, with extra header lines ("Name: value").
func (rc *rawConn) announce(path string, n int, extra ...string) {
	rc.t.Helper()
	rc.name = "POST " + path
	h := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: beaver.test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, n)
	for _, e := range extra {
		h += e + "\r\n"
	}
	if err := rc.send(h + "\r\n"); err != nil {
		rc.t.Fatalf("%s: send headers: %v", rc.name, err)
	}
}

// stallBody opens a connection that announces a 100-byte body on path and
// sends none of it.
func stallBody(t *testing.T, addr, path string, extra ...string) *rawConn {
	t.Helper()
	rc, _ := dialRaw(t, addr, "")
	rc.announce(path, 100, extra...)
	return rc
}

func bearer(token string) string { return "Authorization: Bearer " + token }

// Bad or missing credentials are refused before the body is read: at once,
// though the body would take minutes to fail, with the connection closed
// and nothing admitted. One account's bodies count against its own cap,
// its keys and sessions together; other accounts and anonymous requests are
// not held back by it.
func TestBodiesAreAuthenticatedFirst(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect, harnessOpts{Config: func(c *config.Config) {
			c.BodyReadTimeout = 10 * time.Minute // only an answer before the body can end these requests in time
			c.MaxBodiesPerAccount = 2
		}})
		addr := serveLikeBinary(t, h)
		a, b := h.newUser(), h.newUser()
		_, keyA := h.createKey(a, nil)

		for _, tc := range []struct {
			name, path string
			headers    []string
			status     int
			code       string
		}{
			{"bad key", "/v1/chat/completions", []string{bearer("sk-beaver-not-a-key")}, 401, "invalid_api_key"},
			{"no credentials", "/v1/chat/completions", nil, 401, "unauthorized"},
			{"bad access token", "/api-keys", []string{bearer("not-an-access-token")}, 401, "unauthorized"},
			{"admin route", "/admin/top-up", []string{bearer("not-an-access-token")}, 401, "unauthorized"},
			// A route that reads no body answers without waiting for it too.
			{"no such route", "/nowhere", nil, 404, "not_found"},
		} {
			rc := stallBody(t, addr, tc.path, tc.headers...)
			if err := rc.send("{"); err != nil {
				t.Fatal(err)
			}
			rc.mustAnswer().wantError(tc.status, tc.code)
			rc.closedByServer()
		}
		// Anthropic's route refuses in Anthropic's shape.
		rc := stallBody(t, addr, "/v1/messages", "x-api-key: sk-beaver-not-a-key", "anthropic-version: 2023-06-01")
		r := rc.mustAnswer().want(http.StatusUnauthorized)
		if e, _ := r.JSON["error"].(map[string]any); r.JSON["type"] != "error" || e["type"] != "authentication_error" {
			t.Fatalf("/v1/messages refusal: %s", r.Raw)
		}
		rc.closedByServer()
		if n := metric(h, bodiesInFlight); n != 0 {
			t.Fatalf("%v bodies admitted for refused credentials", n)
		}

		// Account a holds its two slots, with a session and with a key.
		held := []*rawConn{stallBody(t, addr, "/api-keys", bearer(a.Token))}
		eventually(t, 10*time.Second, "a's first body in flight", func() bool { return inPool(h, "account") == 1 })
		held = append(held, stallBody(t, addr, "/v1/chat/completions", bearer(keyA)))
		eventually(t, 10*time.Second, "a's second body in flight", func() bool { return inPool(h, "account") == 2 })

		// Its next body is refused unread, whichever credential it uses.
		for _, token := range []string{a.Token, keyA} {
			rc := stallBody(t, addr, "/api-keys", bearer(token))
			r := rc.mustAnswer().wantError(http.StatusTooManyRequests, "rate_limit_exceeded")
			if r.Header.Get("Retry-After") != "1" || !strings.Contains(r.str("error.message"), "your account") {
				t.Fatalf("per-account refusal: %v %s", r.Header, r.Raw)
			}
			rc.closedByServer()
		}
		if n := metric(h, bodiesPerAccount); n != 2 {
			t.Fatalf("%s = %v, want 2", bodiesPerAccount, n)
		}

		// Another account, and anonymous requests, are not held back.
		h.createKey(b, nil)
		h.login(a.Email, a.Password)

		// a's slots come back when its bodies end.
		for _, rc := range held {
			_ = rc.conn.Close()
		}
		eventually(t, 10*time.Second, "no body in flight", func() bool { return metric(h, bodiesInFlight) == 0 })
		h.createKey(a, nil)
	})
}

// A full pool admits a new body by shedding the one that has waited longest
// for a byte: it is answered 408 and closed, and the others keep their
// slots. The same in each pool.
func TestFullPoolShedsIdlestBody(t *testing.T) {
	const slots = 2
	for _, pool := range []struct {
		name, path string
		admin      bool // send the admin's session
		set        func(c *config.Config)
		want       int // the new body's answer
	}{
		{"anonymous", "/auth/refresh", false, func(c *config.Config) { c.MaxAnonBodies = slots }, http.StatusUnauthorized},
		{"webhook", "/webhooks/stripe", false, func(c *config.Config) { c.MaxWebhookBodies = slots }, http.StatusServiceUnavailable},
		{"account", "/api-keys", true, func(c *config.Config) { c.MaxBodiesInFlight = slots }, http.StatusCreated},
	} {
		t.Run(pool.name, func(t *testing.T) {
			forEachDB(t, func(t *testing.T, dialect string) {
				h := newHarness(t, dialect, harnessOpts{Config: func(c *config.Config) {
					c.BodyReadTimeout = 10 * time.Minute // only shedding may end the stalled bodies in time
					c.MaxBodiesPerIP, c.MaxBodiesPerAccount = 0, 0
					pool.set(c)
				}})
				addr := serveLikeBinary(t, h)
				var headers []string
				token := ""
				if pool.admin {
					token = h.Admin.Token
					headers = append(headers, bearer(token))
				}

				// Two bodies stall, one after the other, sending nothing:
				// the first has waited longest.
				first := stallBody(t, addr, pool.path, headers...)
				eventually(t, 10*time.Second, "the first body in its pool", func() bool { return inPool(h, pool.name) == 1 })
				second := stallBody(t, addr, pool.path, headers...)
				eventually(t, 10*time.Second, "both bodies in their pool", func() bool { return inPool(h, pool.name) == slots })

				// A third is admitted, and answered as usual.
				h.do("POST", pool.path, token, `{"refresh_token":"not-a-token","name":"shed"}`).want(pool.want)

				first.mustAnswer().wantError(http.StatusRequestTimeout, "request_timeout")
				first.closedByServer()
				if shed, n := metric(h, bodiesShed), inPool(h, pool.name); shed != 1 || n != 1 {
					t.Fatalf("%v shed, %v left in the pool; want 1 and 1 (the second body)", shed, n)
				}
				_ = second.conn.Close()
				eventually(t, 10*time.Second, "no body in flight", func() bool { return metric(h, bodiesInFlight) == 0 })
			})
		})
	}
}

// Stripe's webhooks get through strangers holding slow bodies both on the
// anonymous routes and on the webhook route itself.
func TestWebhooksGetThroughStrangers(t *testing.T) {
	const pool, strangers = 4, 20
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newPayHarness(t, dialect, func(c *config.Config) {
			c.BodyReadTimeout = 10 * time.Minute
			c.MaxBodiesPerIP = 0 // the strangers share 127.0.0.1 with Stripe here
			c.MaxAnonBodies, c.MaxWebhookBodies = pool, pool
		})
		addr := serveLikeBinary(t, h.harness)
		u := h.newUser()
		sid := h.checkout(u, "25")
		payload, sig := h.Stripe.CompleteCheckout(sid, true)

		for range strangers {
			for _, path := range []string{"/webhooks/stripe", "/auth/login"} {
				rc := stallBody(t, addr, path, "Stripe-Signature: t=1,v1=00")
				if err := rc.send("{"); err != nil {
					t.Fatal(err)
				}
			}
		}
		eventually(t, 30*time.Second, "every stranger admitted or shed", func() bool {
			return metric(h.harness, bodiesShed) == 2*(strangers-pool) && metric(h.harness, bodiesInFlight) == 2*pool
		})
		h.deliver(payload, sig).want(200)
		h.wantCredited(u.ID, 25_000_000, 1)
	})
}
