package stripe_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/build"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/payments/stripe"
)

// TestAgainstStripeMock sends our real requests to stripe-mock, which
// validates every parameter against Stripe's OpenAPI spec (the fake only
// checks what we taught it). Responses are fixtures, so only acceptance is
// checked. Set BEAVER_TEST_STRIPE_MOCK=require to fail when the binary is
// missing instead of skipping.
func TestAgainstStripeMock(t *testing.T) {
	bin := findStripeMock()
	if bin == "" {
		msg := "stripe-mock not found in PATH or $(go env GOPATH)/bin: Stripe parameter validation NOT RUN " +
			"(install: go install github.com/stripe/stripe-mock@latest)"
		if os.Getenv("BEAVER_TEST_STRIPE_MOCK") == "require" {
			t.Fatal(msg)
		}
		t.Skip("!!! SKIPPED: " + msg)
	}
	base := startStripeMock(t, bin)
	c, err := stripe.New(stripe.Config{
		SecretKey: "sk_test_123", WebhookSecret: "whsec_unused", APIBase: base,
		SuccessURL: successURL, CancelURL: cancelURL,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// accepted fails on any error Stripe's validation would raise; a
	// DeclineError is allowed where the fixture's status (not our params)
	// decides the outcome.
	accepted := func(what string, err error, allowDecline bool) {
		t.Helper()
		var d *stripe.DeclineError
		if err == nil || (allowDecline && errors.As(err, &d)) {
			return
		}
		t.Errorf("%s refused by stripe-mock: %v", what, err)
	}

	co, err := c.CreateTopUpCheckout(ctx, stripe.TopUpCheckout{
		AccountID: "acc_1", Email: "u@example.com", AmountMicros: 25_000_000, IdempotencyKey: "mock-topup-1",
	})
	accepted("CreateTopUpCheckout(email)", err, false)
	if err == nil && co.ID == "" {
		t.Error("CreateTopUpCheckout: empty session id")
	}
	_, err = c.CreateTopUpCheckout(ctx, stripe.TopUpCheckout{AccountID: "acc_1", CustomerID: "cus_123", AmountMicros: 10_000_000_000})
	accepted("CreateTopUpCheckout(customer)", err, false)

	setup, err := c.CreateSetupCheckout(ctx, stripe.SetupCheckout{AccountID: "acc_1", Email: "u@example.com", IdempotencyKey: "mock-setup-1"})
	accepted("CreateSetupCheckout(new customer)", err, false)
	if err == nil && setup.CustomerID == "" {
		t.Error("CreateSetupCheckout: no customer id")
	}
	_, err = c.CreateSetupCheckout(ctx, stripe.SetupCheckout{AccountID: "acc_1", CustomerID: "cus_123"})
	accepted("CreateSetupCheckout(existing customer)", err, false)

	_, err = c.GetCheckoutSession(ctx, "cs_test_123")
	accepted("GetCheckoutSession (expand paths)", err, false)

	_, err = c.ChargeOffSession(ctx, stripe.OffSessionCharge{
		AccountID: "acc_1", CustomerID: "cus_123", PaymentMethodID: "pm_card_visa", AmountMicros: 20_000_000, IdempotencyKey: "mock-recharge-1",
	})
	accepted("ChargeOffSession", err, true)

	_, err = c.Refund(ctx, stripe.RefundInput{PaymentIntentID: "pi_123", AmountMicros: 5_000_000, IdempotencyKey: "mock-refund-1", Reason: "requested_by_customer"})
	accepted("Refund(partial)", err, false)
	_, err = c.Refund(ctx, stripe.RefundInput{PaymentIntentID: "pi_123"})
	accepted("Refund(full)", err, false)

	// The fixture SetupIntent has not succeeded, so only a Stripe-side
	// refusal of the request would be a failure here.
	_, err = c.DefaultPaymentMethod(ctx, "", "seti_123")
	var apiErr *stripe.APIError
	if errors.As(err, &apiErr) {
		t.Errorf("DefaultPaymentMethod refused by stripe-mock: %v", err)
	}
}

// findStripeMock looks in PATH, then in $(go env GOBIN) and each
// $(go env GOPATH)/bin.
func findStripeMock() string {
	if p, err := exec.LookPath("stripe-mock"); err == nil {
		return p
	}
	var dirs []string
	if gobin := goEnv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	gopath := goEnv("GOPATH")
	if gopath == "" {
		gopath = build.Default.GOPATH
	}
	for _, p := range filepath.SplitList(gopath) {
		dirs = append(dirs, filepath.Join(p, "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "stripe-mock")
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

func goEnv(name string) string {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// lockedBuffer collects stripe-mock's output for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startStripeMock runs stripe-mock on free loopback ports for both HTTP and
// HTTPS (its defaults, 12111/12112 on all interfaces, would collide with
// parallel runs) and returns the HTTP origin. It retries when another
// process grabs a port between our probe and stripe-mock's bind.
func startStripeMock(t *testing.T, bin string) string {
	t.Helper()
	var lastOut string
	for attempt := 0; attempt < 3; attempt++ {
		origin, out, ok := tryStartStripeMock(t, bin)
		if ok {
			return origin
		}
		lastOut = out
	}
	t.Fatalf("stripe-mock exited 3 times; last output:\n%s", lastOut)
	return ""
}

// tryStartStripeMock returns ok=false with the output when the process
// exited before listening (typically a port taken in the meantime).
func tryStartStripeMock(t *testing.T, bin string) (origin, output string, ok bool) {
	t.Helper()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	httpsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	out := &lockedBuffer{}
	cmd := exec.Command(bin, "-http-addr", httpAddr, "-https-addr", httpsAddr)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-done
	}

	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return "", out.String(), false
		default:
		}
		if conn, err := net.DialTimeout("tcp", httpAddr, 200*time.Millisecond); err == nil {
			_ = conn.Close()
			t.Cleanup(stop)
			t.Logf("stripe-mock %s -http-addr %s -https-addr %s: %s", bin, httpAddr, httpsAddr, strings.TrimSpace(out.String()))
			return "http://" + httpAddr, "", true
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	t.Fatalf("stripe-mock did not listen on %s within 20s; output:\n%s", httpAddr, out.String())
	return "", "", false
}
