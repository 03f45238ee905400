package worker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/app"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/internal/mail"
	"github.com/beaver-gateway/beaver/internal/temporalx"
	"github.com/beaver-gateway/beaver/models"
	"github.com/beaver-gateway/beaver/worker"
	"github.com/beaver-gateway/beaver/workflows"
)

// The end-to-end test runs the real worker, with real activities on an
// SQLite app, against a Temporal dev server started from the temporal CLI.
// Without the CLI it skips loudly, unless BEAVER_TEST_REQUIRE_TEMPORAL=1.
// BEAVER_RECORD_HISTORIES=1 also writes the workflows' histories to
// workflows/testdata (the replay tests' input).

type e2e struct {
	c    client.Client
	app  *app.App
	mail *mail.Recorder
	wf   *temporalx.Workflows
	cfg  *config.Config
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func startE2E(t *testing.T) *e2e {
	t.Helper()
	cli, err := temporalx.FindCLI()
	if err != nil {
		if os.Getenv("BEAVER_TEST_REQUIRE_TEMPORAL") == "1" {
			t.Fatalf("Temporal CLI required (BEAVER_TEST_REQUIRE_TEMPORAL=1): %v", err)
		}
		t.Skipf("!!! SKIPPING Temporal end-to-end tests: %v", err)
	}
	ctx := context.Background()
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{ExistingPath: cli, LogLevel: "error",
		Stdout: io.Discard, Stderr: io.Discard,
		ClientOptions: &client.Options{Namespace: "default", Logger: sdklog.NewStructuredLogger(quiet)}})
	if err != nil {
		t.Fatalf("start the Temporal dev server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })

	dir := t.TempDir()
	env := map[string]string{
		"BEAVER_DATA_DIR": dir, "BEAVER_DATABASE_URL": "sqlite://" + filepath.Join(dir, "beaver.db"),
		"BEAVER_ARGON2_MEMORY_KIB": "8", "BEAVER_ARGON2_TIME": "1", "BEAVER_ARGON2_THREADS": "1",
		"BEAVER_ADMIN_PASSWORD": "admin password 123", "BEAVER_PUBLIC_URL": "https://beaver.test",
		"TEMPORAL_ADDRESS": srv.FrontendHostPort(),
	}
	cfg, err := config.FromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Open(ctx, cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)

	rec := &mail.Recorder{}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- worker.Run(wctx, srv.Client(), cfg, worker.Deps{DB: a.DB, Catalog: a.Catalog, Auth: a.Auth, Mailer: rec,
			Log: quiet, Registerer: prometheus.NewRegistry()})
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	e := &e2e{c: srv.Client(), app: a, mail: rec, cfg: cfg,
		wf: temporalx.NewWorkflows(temporalx.WorkflowsOptions{Conn: temporalx.ConnFor(srv.Client(), quiet),
			Auth: a.Auth, DB: a.DB, TaskQueue: cfg.TaskQueue, Log: quiet})}
	// Run creates the schedules before it polls.
	waitFor(t, "schedules", func() bool {
		_, err := e.c.ScheduleClient().GetHandle(ctx, workflows.ScheduleLeaseSweep).Describe(ctx)
		return err == nil
	})
	return e
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// token waits for the n-th email to address and returns the token of its
// link to path.
func (e *e2e) token(t *testing.T, address, path string, n int) string {
	t.Helper()
	waitFor(t, fmt.Sprintf("email %d to %s", n, address), func() bool { return len(e.mail.To(address)) >= n })
	m := e.mail.To(address)[n-1]
	for _, l := range mail.Links(m.Text) {
		if _, tok, ok := strings.Cut(l, path+"?token="); ok {
			return tok
		}
	}
	t.Fatalf("no %s link in %q", path, m.Text)
	return ""
}

func (e *e2e) account(t *testing.T, email, password string) *models.Account {
	t.Helper()
	acct, err := e.app.Auth.CreateAccount(context.Background(), auth.NewAccount{Email: email, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return acct
}

// result waits for the workflow's result; with BEAVER_RECORD_HISTORIES=1
// its history is saved as workflows/testdata/<history>.json.
func (e *e2e) result(t *testing.T, workflowID, history string, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.c.GetWorkflow(ctx, workflowID, "").Get(ctx, out); err != nil {
		t.Fatalf("%s: %v", workflowID, err)
	}
	record(t, e.c, workflowID, history)
}

func wantInvalidToken(t *testing.T, what string, err error) {
	t.Helper()
	if e, ok := apierr.As(err); !ok || e.Code != "invalid_token" {
		t.Errorf("%s: want 400 invalid_token, got %v", what, err)
	}
}

func TestEndToEnd(t *testing.T) {
	e := startE2E(t)
	ctx := context.Background()

	t.Run("schedules", func(t *testing.T) {
		want := map[string]time.Duration{workflows.ScheduleRepricing: 24 * time.Hour,
			workflows.ScheduleUsageReset: 7 * 24 * time.Hour, workflows.ScheduleLeaseSweep: time.Minute}
		for id, catchup := range want {
			d, err := e.c.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
			if err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			p := d.Schedule.Policy
			if p.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP || p.CatchupWindow != catchup {
				t.Errorf("%s: policy %+v", id, p)
			}
			act, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction)
			if !ok || act.TaskQueue != "beaver" {
				t.Errorf("%s: action %+v", id, d.Schedule.Action)
			}
		}
		d, _ := e.c.ScheduleClient().GetHandle(ctx, workflows.ScheduleRepricing).Describe(ctx)
		for _, next := range d.Info.NextActionTimes {
			if next.UTC().Hour() != 3 || next.Minute() != 0 {
				t.Errorf("repricing due at %s, want 03:00 UTC", next)
			}
		}
		d, _ = e.c.ScheduleClient().GetHandle(ctx, workflows.ScheduleUsageReset).Describe(ctx)
		for _, next := range d.Info.NextActionTimes {
			if next.UTC().Day() != 1 || next.UTC().Hour() != 0 {
				t.Errorf("usage reset due at %s, want the 1st at 00:00 UTC", next)
			}
		}
		// Starting again updates instead of failing.
		if err := worker.EnsureSchedules(ctx, e.c, "beaver", quiet); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("repricing", func(t *testing.T) {
		m := e.app.Catalog.List(false)[0]
		before, oldPrice := e.app.Catalog.Version(), m.Price.Input
		in := m.Base.Input*2 + 1_000_000
		if err := e.app.Catalog.UpdateBase(ctx, m.ID, catalog.BaseUpdate{Input: &in}); err != nil {
			t.Fatal(err)
		}
		if got, _ := e.app.Catalog.Get(m.ID); got.Price.Input != oldPrice {
			t.Fatal("a base change must not change the price before the next computation")
		}
		id, err := e.wf.StartRepricing(ctx, "e2e: base price changed")
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.RepricingResult
		e.result(t, id, "repricing", &res)
		if res.Version != before+1 {
			t.Errorf("version %d, want %d", res.Version, before+1)
		}
		got, _ := e.app.Catalog.Get(m.ID)
		if got.Version != res.Version || got.Price.Input <= oldPrice || got.Price.Base.Input != in {
			t.Errorf("after repricing: version %d, input price %d (was %d), base %d", got.Version, got.Price.Input, oldPrice, got.Price.Base.Input)
		}
	})

	t.Run("password reset", func(t *testing.T) {
		acct := e.account(t, "pat@example.com", "old password 123")
		login, err := e.app.Auth.Login(ctx, "pat@example.com", "old password 123")
		if err != nil {
			t.Fatal(err)
		}
		// A second request replaces the first: only the newest link works.
		if err := e.wf.StartPasswordReset(ctx, acct.ID); err != nil {
			t.Fatal(err)
		}
		first := e.token(t, "pat@example.com", "/reset-password", 1)
		if err := e.wf.StartPasswordReset(ctx, acct.ID); err != nil {
			t.Fatal(err)
		}
		second := e.token(t, "pat@example.com", "/reset-password", 2)
		if first == second {
			t.Fatal("a new request must mail a new token")
		}
		hash := e.app.Auth.Hasher.Hash("new password 456")
		wantInvalidToken(t, "replaced token", e.wf.CompletePasswordReset(ctx, acct.ID, first, hash))
		wantInvalidToken(t, "wrong token", e.wf.CompletePasswordReset(ctx, acct.ID, "bpr_wrong", hash))
		if err := e.wf.CompletePasswordReset(ctx, acct.ID, second, hash); err != nil {
			t.Fatal(err)
		}
		if _, err := e.app.Auth.Login(ctx, "pat@example.com", "new password 456"); err != nil {
			t.Errorf("new password: %v", err)
		}
		if _, err := e.app.Auth.Login(ctx, "pat@example.com", "old password 123"); err == nil {
			t.Error("old password still works")
		}
		if _, err := e.app.Auth.Authenticate(ctx, login.AccessToken); err == nil {
			t.Error("a session from before the reset still works")
		}
		var res workflows.PasswordResetResult
		e.result(t, workflows.PasswordResetWorkflowID(acct.ID), "password_reset_consumed", &res)
		if res.Outcome != workflows.OutcomeConsumed {
			t.Errorf("outcome %q", res.Outcome)
		}
		wantInvalidToken(t, "used token", e.wf.CompletePasswordReset(ctx, "", second, e.app.Auth.Hasher.Hash("third password 789")))
	})

	t.Run("expired reset token", func(t *testing.T) {
		acct := e.account(t, "quinn@example.com", "old password 123")
		short := temporalx.NewWorkflows(temporalx.WorkflowsOptions{Conn: temporalx.ConnFor(e.c, quiet), Auth: e.app.Auth,
			DB: e.app.DB, Log: quiet, ResetTTL: 2 * time.Second})
		if err := short.StartPasswordReset(ctx, acct.ID); err != nil {
			t.Fatal(err)
		}
		tok := e.token(t, "quinn@example.com", "/reset-password", 1)
		var res workflows.PasswordResetResult
		e.result(t, workflows.PasswordResetWorkflowID(acct.ID), "password_reset_expired", &res) // waits out the 2s
		if res.Outcome != workflows.OutcomeExpired {
			t.Errorf("outcome %q", res.Outcome)
		}
		wantInvalidToken(t, "expired token", short.CompletePasswordReset(ctx, acct.ID, tok, e.app.Auth.Hasher.Hash("new password 456")))
		if _, err := e.app.Auth.Login(ctx, "quinn@example.com", "old password 123"); err != nil {
			t.Errorf("password changed by an expired token: %v", err)
		}
	})

	t.Run("email verification", func(t *testing.T) {
		acct := e.account(t, "val@example.com", "val password 123")
		if err := e.wf.StartEmailVerification(ctx, acct.ID); err != nil {
			t.Fatal(err)
		}
		tok := e.token(t, "val@example.com", "/verify-email", 1)
		wantInvalidToken(t, "wrong token", e.wf.CompleteEmailVerification(ctx, acct.ID, "bve_wrong"))
		if err := e.wf.CompleteEmailVerification(ctx, "", tok); err != nil { // account found from the token
			t.Fatal(err)
		}
		got, err := e.app.Auth.GetAccount(ctx, acct.ID)
		if err != nil || !got.EmailVerified {
			t.Fatalf("not verified: %v %+v", err, got)
		}
		var res workflows.EmailVerificationResult
		e.result(t, workflows.EmailVerificationWorkflowID(acct.ID), "email_verification_consumed", &res)
		if res.Outcome != workflows.OutcomeConsumed {
			t.Errorf("outcome %q", res.Outcome)
		}
		wantInvalidToken(t, "used token", e.wf.CompleteEmailVerification(ctx, acct.ID, tok))
	})

	t.Run("token issued without Temporal", func(t *testing.T) {
		// Issued by the direct path (Temporal was down then): no workflow
		// owns it, the database decides.
		acct := e.account(t, "wes@example.com", "wes password 123")
		tok, err := e.app.Auth.IssueToken(ctx, acct.ID, models.PurposeVerifyEmail, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.wf.CompleteEmailVerification(ctx, acct.ID, tok); err != nil {
			t.Fatal(err)
		}
		wantInvalidToken(t, "used direct token", e.wf.CompleteEmailVerification(ctx, acct.ID, tok))
	})

	t.Run("low balance alert", func(t *testing.T) {
		acct := e.account(t, "lou@example.com", "lou password 123") // balance 0, threshold $1
		for range 3 {
			if err := e.wf.SignalLowBalance(ctx, acct.ID, 0, 1_000_000); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "the alert", func() bool { return len(e.mail.To("lou@example.com")) == 1 })
		if err := e.wf.SignalLowBalance(ctx, acct.ID, 0, 1_000_000); err != nil {
			t.Fatal(err)
		}
		if err := e.wf.SignalLowBalance(ctx, acct.ID, 5_000_000, 1_000_000); err != nil { // a top-up
			t.Fatal(err)
		}
		var res workflows.LowBalanceAlertResult
		e.result(t, workflows.LowBalanceWorkflowID(acct.ID), "low_balance_recovered", &res)
		if res.Outcome != workflows.OutcomeRecovered || !res.Emailed {
			t.Errorf("result %+v", res)
		}
		if n := len(e.mail.To("lou@example.com")); n != 1 {
			t.Errorf("%d alert emails, want exactly 1", n)
		}
		// Recovered with no alert running: nothing starts.
		if err := e.wf.SignalLowBalance(ctx, "acct_none", 9_000_000, 1_000_000); err != nil {
			t.Error(err)
		}
	})

	t.Run("maintenance workflows", func(t *testing.T) {
		for _, s := range []struct {
			id, history string
			wf          any
			arg         any
		}{
			{workflows.UsageResetWorkflowID("2026-12"), "monthly_usage_reset", workflows.MonthlyUsageResetWorkflow, workflows.MonthlyUsageResetInput{Month: "2026-12"}},
			{"lease-sweep-e2e", "lease_sweep", workflows.LeaseSweepWorkflow, workflows.LeaseSweepInput{}},
		} {
			_, err := e.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: s.id, TaskQueue: "beaver"}, s.wf, s.arg)
			if err != nil {
				t.Fatal(err)
			}
			var out map[string]any
			e.result(t, s.id, s.history, &out)
		}
		var n int64
		if err := e.app.DB.Model(&models.Account{}).Where("usage_month <> ?", "2026-12").Count(&n).Error; err != nil || n != 0 {
			t.Errorf("%d accounts not in 2026-12 (%v)", n, err)
		}
		// Once per month: the same workflow id is refused while it is retained.
		_, err := e.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.UsageResetWorkflowID("2026-12"),
			TaskQueue: "beaver", WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
			WorkflowExecutionErrorWhenAlreadyStarted: true},
			workflows.MonthlyUsageResetWorkflow, workflows.MonthlyUsageResetInput{Month: "2026-12"})
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if !errors.As(err, &started) {
			t.Errorf("duplicate monthly reset started: %v", err)
		}
	})
}

// record writes a finished workflow's history to
// workflows/testdata/<name>.json when BEAVER_RECORD_HISTORIES=1.
func record(t *testing.T, c client.Client, workflowID, name string) {
	t.Helper()
	if os.Getenv("BEAVER_RECORD_HISTORIES") != "1" {
		return
	}
	ctx := context.Background()
	iter := c.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	hist := &historypb.History{}
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		hist.Events = append(hist.Events, ev)
	}
	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(hist)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "workflows", "testdata", name+".json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %s (%d events)", path, len(hist.Events))
}
