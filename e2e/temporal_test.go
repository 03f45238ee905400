package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/beaver-gateway/beaver/internal/db"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/temporalx"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/workflows"
)

// syncBuffer is a bytes.Buffer safe to read while the process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPasswordResetThroughTemporal runs `beaver dev` (API + in-process
// worker) against a real Temporal dev server and resets a password through
// the HTTP API, with the token read from the log mailer's output.
func TestPasswordResetThroughTemporal(t *testing.T) {
	cli, err := temporalx.FindCLI()
	if err != nil {
		if os.Getenv("BEAVER_TEST_REQUIRE_TEMPORAL") == "1" {
			t.Fatalf("Temporal CLI required: %v", err)
		}
		t.Skipf("!!! SKIPPING Temporal end-to-end test: %v", err)
	}
	srv, err := testsuite.StartDevServer(context.Background(), testsuite.DevServerOptions{ExistingPath: cli, LogLevel: "error",
		Stdout: io.Discard, Stderr: io.Discard, ClientOptions: &client.Options{Namespace: "default"}})
	if err != nil {
		t.Fatalf("start the Temporal dev server: %v", err)
	}
	defer func() { _ = srv.Stop() }()

	_, dbURL := testenv.OpenURL(t, db.SQLite)
	fake := httptest.NewServer(fakeupstream.New(fakeupstream.Options{}))
	defer fake.Close()
	addr := freeAddr(t)
	cmd := exec.Command(binary, "dev")
	cmd.Env = append(os.Environ(), "BEAVER_ADDR="+addr, "BEAVER_DATABASE_URL="+dbURL, "BEAVER_DATA_DIR="+t.TempDir(),
		"BEAVER_ADMIN_EMAIL="+adminEmail, "BEAVER_ADMIN_PASSWORD="+adminPassword, "BEAVER_AUTH_LIMIT=1000",
		"BEAVER_ARGON2_MEMORY_KIB=1024", "BEAVER_ARGON2_TIME=1", "BEAVER_ARGON2_THREADS=1",
		"TEMPORAL_ADDRESS="+srv.FrontendHostPort(), "OPENAI_BASE_URL="+fake.URL, "BEAVER_PUBLIC_URL=http://beaver.test")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _, _ = cmd.Process.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("beaver dev output:\n%s", out.String())
		}
	}()
	p := &proc{t: t, cmd: cmd, base: "http://" + addr}
	waitFor(t, 60*time.Second, "beaver dev to serve with Temporal", func() bool {
		st, _, _ := p.call("GET", "/health", "", nil)
		return st == 200 && strings.Contains(out.String(), "Temporal is available")
	})

	// The workflow-backed repricing works too.
	_, login, _ := p.call("POST", "/auth/login", "", map[string]string{"email": adminEmail, "password": adminPassword})
	admin, _ := login["access_token"].(string)
	if st, r, _ := p.call("POST", "/admin/pricing/recalculate", admin, nil); st != 202 || r["workflow_id"] == "" {
		t.Fatalf("recalculate: %d %v", st, r)
	}

	email, oldPassword, newPassword := "reset@e2e.test", "the-old-password-1", "the-new-password-2"
	st, reg, _ := p.call("POST", "/auth/register", "", map[string]string{"email": email, "password": oldPassword})
	if st != 201 {
		t.Fatalf("register: %d %v", st, reg)
	}
	accountID := reg["account"].(map[string]any)["id"].(string)
	_, sess, _ := p.call("POST", "/auth/login", "", map[string]string{"email": email, "password": oldPassword})
	oldToken, _ := sess["access_token"].(string)
	if st, _, _ := p.call("POST", "/auth/password/forgot", "", map[string]string{"email": email}); st != 202 {
		t.Fatalf("forgot: %d", st)
	}
	linkRE := regexp.MustCompile(`to=` + regexp.QuoteMeta(email) + `.*?/reset-password\?token=([A-Za-z0-9_-]+)`)
	var token string
	waitFor(t, 30*time.Second, "the reset email in the log", func() bool {
		m := linkRE.FindStringSubmatch(out.String())
		if m != nil {
			token = m[1]
		}
		return m != nil
	})
	if st, r, _ := p.call("POST", "/auth/password/reset", "", map[string]string{"token": token, "password": "short"}); st != 400 {
		t.Fatalf("weak password: %d %v", st, r)
	}
	if st, r, _ := p.call("POST", "/auth/password/reset", "", map[string]string{"token": token, "password": newPassword}); st != 200 {
		t.Fatalf("reset: %d %v", st, r)
	}
	if st, r, _ := p.call("POST", "/auth/password/reset", "", map[string]string{"token": token, "password": newPassword + "x"}); st != 400 || r["error"].(map[string]any)["code"] != "invalid_token" {
		t.Fatalf("reused token: %d %v", st, r)
	}
	if st, _, _ := p.call("GET", "/auth/me", oldToken, nil); st != 401 {
		t.Fatalf("old session still works after the reset: %d", st)
	}
	if st, _, _ := p.call("POST", "/auth/login", "", map[string]string{"email": email, "password": oldPassword}); st != 401 {
		t.Fatalf("old password still works: %d", st)
	}
	if st, _, _ := p.call("POST", "/auth/login", "", map[string]string{"email": email, "password": newPassword}); st != 200 {
		t.Fatalf("new password refused: %d", st)
	}
	// It went through the workflow, which completed with the token used.
	//lint:ignore SA1019 the test reads the plain execution status, which this call returns as is
	d, err := srv.Client().DescribeWorkflowExecution(context.Background(), workflows.PasswordResetWorkflowID(accountID), "")
	if err != nil {
		t.Fatalf("no password reset workflow: %v", err)
	}
	if s := d.WorkflowExecutionInfo.Status.String(); s != "Completed" {
		t.Fatalf("password reset workflow is %s", s)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
