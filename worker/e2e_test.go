package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
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
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/batches"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/internal/db"
	fakestripe "github.com/beaver-gateway/beaver/internal/fakes/stripe"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/files"
	"github.com/beaver-gateway/beaver/internal/finetune"
	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/internal/invoices"
	"github.com/beaver-gateway/beaver/internal/mail"
	"github.com/beaver-gateway/beaver/internal/payments"
	"github.com/beaver-gateway/beaver/internal/payments/stripe"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/internal/registry"
	"github.com/beaver-gateway/beaver/internal/temporalx"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
	"github.com/beaver-gateway/beaver/worker"
	"github.com/beaver-gateway/beaver/workflows"
)

// The end-to-end test runs the real worker, with real activities on an
// SQLite database and a fake Stripe, against a Temporal dev server started
// from the temporal CLI. Without the CLI it skips loudly, unless
// BEAVER_TEST_REQUIRE_TEMPORAL=1. BEAVER_RECORD_HISTORIES=1 also writes the
// workflows' histories to workflows/testdata (the replay tests' input).

type e2e struct {
	c        client.Client
	db       *db.DB
	auth     *auth.Service
	catalog  *catalog.Catalog
	payments *payments.Service
	stripe   *fakestripe.Server
	mail     *mail.Recorder
	wf       *workflows.Starter
	reg      *registry.Registry // openai and anthropic on a fake upstream
	files    *files.Service
	batches  *batches.Service
	backups  string // BEAVER_BACKUP_DIR
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const webhookSecret = "whsec_e2e"

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

	// The graph cmd/beaver wires, with a fake Stripe and a mail recorder.
	d := testenv.Open(t, db.SQLite)
	b := bus.NewLocal()
	cat := catalog.New(d, b, quiet)
	for _, step := range []func(context.Context) error{cat.Seed, cat.EnsurePrices, cat.Reload} {
		if err := step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	svc := auth.NewService(d, auth.Hasher{MemoryKiB: 8, Time: 1, Threads: 1}, auth.NewKeyed(strings.Repeat("k", 40)), b,
		15*time.Minute, 24*time.Hour)
	fstripe := fakestripe.New(webhookSecret)
	stripeSrv := httptest.NewServer(fstripe)
	t.Cleanup(stripeSrv.Close)
	sc, err := stripe.New(stripe.Config{SecretKey: "sk_test_e2e", WebhookSecret: webhookSecret, APIBase: stripeSrv.URL})
	if err != nil {
		t.Fatal(err)
	}
	rec := &mail.Recorder{}
	inv := invoices.New(d, invoices.Issuer{Prefix: "E2E", Party: invoices.Party{Name: "Beaver E2E"}})
	pay := payments.New(payments.Deps{DB: d, Ledger: &billing.Ledger{DB: d, Documents: inv}, Stripe: sc, Mailer: rec,
		PublicURL: publicURL, Log: quiet, Invoices: inv})
	backups := t.TempDir()
	cfg, err := config.FromLookup(func(k string) (string, bool) {
		v, ok := map[string]string{"BEAVER_PUBLIC_URL": publicURL, "TEMPORAL_ADDRESS": srv.FrontendHostPort(),
			"BEAVER_BACKUP_DIR": backups}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}

	// Model discovery lists two built-ins on a fake upstream.
	up := httptest.NewServer(fakeupstream.New(fakeupstream.Options{}))
	t.Cleanup(up.Close)
	builtins := map[string]providers.Config{}
	for _, name := range []string{"openai", "anthropic"} {
		pc := providers.DefaultConfigs()[name]
		pc.BaseURL, pc.APIKey = up.URL, "sk-e2e"
		builtins[name] = pc
	}
	reg, err := registry.New(ctx, registry.Options{DB: d, Bus: b, Keyed: auth.NewKeyed(strings.Repeat("k", 40)),
		Builtins: builtins, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}

	// The gateway background responses and batch lines run through (on
	// the fake upstream).
	eng := billing.NewEngine(d, quiet, billing.EngineOptions{})
	t.Cleanup(eng.Close)
	gw := gateway.New(gateway.Deps{Billing: eng, Catalog: cat, Providers: reg, Log: quiet}, gateway.Options{})
	fs := &files.Service{DB: d, Store: files.DBStore{DB: d}}
	// Anthropic's batches go native (its Message Batches on the fake
	// upstream); OpenAI's run line by line.
	bs := &batches.Service{DB: d, Files: fs, Gateway: gw, Log: quiet, Native: []string{"anthropic"}, NativeEndpoints: reg,
		NativePoll: time.Second}

	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- worker.Run(wctx, srv.Client(), cfg, worker.Deps{DB: d, Catalog: cat, Auth: svc, Mailer: rec,
			Log: quiet, Registerer: prometheus.NewRegistry(), Payments: pay, Providers: reg, Gateway: gw, Batches: bs,
			FineTune: finetune.New(finetune.Options{DB: d, Catalog: cat, Endpoints: reg, Log: quiet})})
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	e := &e2e{c: srv.Client(), db: d, auth: svc, catalog: cat, payments: pay, stripe: fstripe, mail: rec, reg: reg, files: fs, batches: bs,
		backups: backups,
		wf: workflows.NewStarter(workflows.StarterOptions{Conn: temporalx.ConnFor(srv.Client(), quiet), Auth: svc,
			TaskQueue: cfg.TaskQueue, Log: quiet})}
	// Run creates the schedules before it polls.
	waitFor(t, "schedules", func() bool {
		_, err := e.c.ScheduleClient().GetHandle(ctx, workflows.ScheduleLeaseSweep).Describe(ctx)
		return err == nil
	})
	return e
}

const publicURL = "https://beaver.test"

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
	acct, err := e.auth.CreateAccount(context.Background(), auth.NewAccount{Email: email, Password: password})
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
			workflows.ScheduleUsageReset: 7 * 24 * time.Hour, workflows.ScheduleLeaseSweep: time.Minute,
			workflows.ScheduleModelDiscovery: 24 * time.Hour, workflows.ScheduleUsageLogRetention: 24 * time.Hour,
			workflows.ScheduleBackup: 24 * time.Hour}
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
		d, _ = e.c.ScheduleClient().GetHandle(ctx, workflows.ScheduleModelDiscovery).Describe(ctx)
		for _, next := range d.Info.NextActionTimes {
			if next.UTC().Hour() != 4 || next.Minute() != 0 {
				t.Errorf("model discovery due at %s, want 04:00 UTC", next)
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

	t.Run("backup", func(t *testing.T) {
		d, _ := e.c.ScheduleClient().GetHandle(ctx, workflows.ScheduleBackup).Describe(ctx)
		for _, next := range d.Info.NextActionTimes {
			if next.UTC().Hour() != 2 || next.Minute() != 0 {
				t.Errorf("backup due at %s, want 02:00 UTC", next)
			}
		}
		id := workflows.BackupWorkflowID(time.Now())
		if _, err := e.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "beaver"},
			workflows.BackupWorkflow, workflows.BackupInput{}); err != nil {
			t.Fatal(err)
		}
		var res workflows.BackupResult
		e.result(t, id, "backup_daily", &res)
		if filepath.Dir(res.File) != e.backups || res.Existed {
			t.Fatalf("backup %+v, want a new file in %s", res, e.backups)
		}
		if _, err := os.Stat(res.File); err != nil {
			t.Fatal(err)
		}
		// The same day again: the file is there, nothing more is written.
		again := id + "-again"
		if _, err := e.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: again, TaskQueue: "beaver"},
			workflows.BackupWorkflow, workflows.BackupInput{}); err != nil {
			t.Fatal(err)
		}
		var second workflows.BackupResult
		e.result(t, again, "backup_daily_existed", &second)
		if !second.Existed && filepath.Base(second.File)[:15] != filepath.Base(res.File)[:15] {
			t.Logf("the two runs fell on two days (%s, %s)", res.File, second.File)
		} else if !second.Existed || second.File != res.File {
			t.Fatalf("second run of the day: %+v, want the first's %s", second, res.File)
		}
	})

	t.Run("repricing", func(t *testing.T) {
		m := e.catalog.List(false)[0]
		before, oldPrice := e.catalog.Version(), m.Price.Input
		in := m.Base.Input*2 + 1_000_000
		if err := e.catalog.UpdateBase(ctx, m.ID, catalog.BaseUpdate{Input: &in}); err != nil {
			t.Fatal(err)
		}
		if got, _ := e.catalog.Get(m.ID); got.Price.Input != oldPrice {
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
		got, _ := e.catalog.Get(m.ID)
		if got.Version != res.Version || got.Price.Input <= oldPrice || got.Price.Base.Input != in {
			t.Errorf("after repricing: version %d, input price %d (was %d), base %d", got.Version, got.Price.Input, oldPrice, got.Price.Base.Input)
		}
	})

	t.Run("password reset", func(t *testing.T) {
		acct := e.account(t, "pat@example.com", "old password 123")
		login, err := e.auth.Login(ctx, "pat@example.com", "old password 123")
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
		hash := e.auth.Hasher.Hash("new password 456")
		wantInvalidToken(t, "replaced token", e.wf.CompletePasswordReset(ctx, acct.ID, first, hash))
		wantInvalidToken(t, "wrong token", e.wf.CompletePasswordReset(ctx, acct.ID, "bpr_wrong", hash))
		if err := e.wf.CompletePasswordReset(ctx, acct.ID, second, hash); err != nil {
			t.Fatal(err)
		}
		if _, err := e.auth.Login(ctx, "pat@example.com", "new password 456"); err != nil {
			t.Errorf("new password: %v", err)
		}
		if _, err := e.auth.Login(ctx, "pat@example.com", "old password 123"); err == nil {
			t.Error("old password still works")
		}
		if _, err := e.auth.Authenticate(ctx, login.AccessToken); err == nil {
			t.Error("a session from before the reset still works")
		}
		var res workflows.PasswordResetResult
		e.result(t, workflows.PasswordResetWorkflowID(acct.ID), "password_reset_consumed", &res)
		if res.Outcome != workflows.OutcomeConsumed {
			t.Errorf("outcome %q", res.Outcome)
		}
		wantInvalidToken(t, "used token", e.wf.CompletePasswordReset(ctx, "", second, e.auth.Hasher.Hash("third password 789")))
	})

	t.Run("expired reset token", func(t *testing.T) {
		acct := e.account(t, "quinn@example.com", "old password 123")
		short := workflows.NewStarter(workflows.StarterOptions{Conn: temporalx.ConnFor(e.c, quiet), Auth: e.auth,
			Log: quiet, ResetTTL: 2 * time.Second})
		if err := short.StartPasswordReset(ctx, acct.ID); err != nil {
			t.Fatal(err)
		}
		tok := e.token(t, "quinn@example.com", "/reset-password", 1)
		var res workflows.PasswordResetResult
		e.result(t, workflows.PasswordResetWorkflowID(acct.ID), "password_reset_expired", &res) // waits out the 2s
		if res.Outcome != workflows.OutcomeExpired {
			t.Errorf("outcome %q", res.Outcome)
		}
		wantInvalidToken(t, "expired token", short.CompletePasswordReset(ctx, acct.ID, tok, e.auth.Hasher.Hash("new password 456")))
		if _, err := e.auth.Login(ctx, "quinn@example.com", "old password 123"); err != nil {
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
		got, err := e.auth.GetAccount(ctx, acct.ID)
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
		tok, err := e.auth.IssueToken(ctx, acct.ID, models.PurposeVerifyEmail, time.Hour)
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

	t.Run("model discovery", func(t *testing.T) {
		if _, err := e.auth.CreateAccount(ctx, auth.NewAccount{Email: "ada@example.com", Password: "admin password 123",
			Role: models.RoleAdmin}); err != nil {
			t.Fatal(err)
		}
		// The seeded catalog's OpenAI and Anthropic models are not what the
		// fake serves: everything is news, and the admin hears of it.
		id, err := e.wf.StartModelDiscovery(ctx, "e2e")
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.ModelDiscoveryResult
		e.result(t, id, "model_discovery_changed", &res)
		if res.Providers != 2 || len(res.Changed) != 2 || res.Emailed != 1 || len(e.mail.To("ada@example.com")) != 1 {
			t.Fatalf("first run: %+v, %d emails", res, len(e.mail.To("ada@example.com")))
		}
		var row models.ModelDiscovery
		if err := e.db.Where("provider_id = ?", "openai").Take(&row).Error; err != nil || row.MissingAtProvider == "[]" ||
			!strings.Contains(row.NewAtProvider, "fake-chat-small") {
			t.Fatalf("openai's row %+v: %v", row, err)
		}
		// Nothing changed since: no email.
		id, err = e.wf.StartModelDiscovery(ctx, "e2e again")
		if err != nil {
			t.Fatal(err)
		}
		e.result(t, id, "model_discovery_unchanged", &res)
		if len(res.Changed) != 0 || res.Emailed != 0 || len(e.mail.To("ada@example.com")) != 1 {
			t.Fatalf("second run: %+v", res)
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
			{"usage-log-retention-e2e", "usage_log_retention", workflows.UsageLogRetentionWorkflow, workflows.UsageLogRetentionInput{}},
		} {
			_, err := e.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: s.id, TaskQueue: "beaver"}, s.wf, s.arg)
			if err != nil {
				t.Fatal(err)
			}
			var out map[string]any
			e.result(t, s.id, s.history, &out)
		}
		var n int64
		if err := e.db.Model(&models.Account{}).Where("usage_month <> ?", "2026-12").Count(&n).Error; err != nil || n != 0 {
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

// TestMoneyWorkflowsEndToEnd runs the money workflows through the paths
// production takes: Stripe's webhooks through payments.HandleWebhook into
// the starter, the worker's payment activities against a fake Stripe.
func TestMoneyWorkflowsEndToEnd(t *testing.T) {
	e := startE2E(t)
	ctx := context.Background()
	settle := func(ctx context.Context, sessionID, eventType string) error {
		return e.wf.StartTopUpSettlement(ctx, workflows.TopUpSettlementInput{SessionID: sessionID, EventType: eventType})
	}
	deliver := func(payload []byte, sig string) {
		t.Helper()
		if _, err := e.payments.HandleWebhook(ctx, payload, sig, settle); err != nil {
			t.Fatal(err)
		}
	}
	balance := func(accountID string) int64 {
		var a models.Account
		if err := e.db.Where("id = ?", accountID).Take(&a).Error; err != nil {
			t.Fatal(err)
		}
		return a.BalanceMicros
	}
	acct := e.account(t, "mona@example.com", "mona password 123")
	var top models.TopUp

	t.Run("top-up settlement", func(t *testing.T) {
		co, err := e.payments.CreateTopUpCheckout(ctx, payments.TopUpRequest{Account: acct, AmountMicros: 25_000_000})
		if err != nil {
			t.Fatal(err)
		}
		deliver(e.stripe.CompleteCheckout(co.ID, true))
		var res workflows.TopUpSettlementResult
		e.result(t, workflows.TopUpWorkflowID(co.ID), "topup_settlement_paid", &res)
		if res.Status != workflows.SettlementPaid || !res.Credited || balance(acct.ID) != 25_000_000 {
			t.Fatalf("result %+v, balance %d", res, balance(acct.ID))
		}
		if err := e.db.Where("checkout_session_id = ?", co.ID).Take(&top).Error; err != nil || top.Status != models.TopUpPaid {
			t.Fatalf("top-up %+v: %v", top, err)
		}
		waitFor(t, "the receipt", func() bool { return len(e.mail.To(acct.Email)) == 1 })
		// The credit issued the invoice; the receipt carries it.
		var inv models.Invoice
		if err := e.db.Where("top_up_id = ? AND kind = ?", top.ID, models.InvoiceKindInvoice).Take(&inv).Error; err != nil ||
			inv.LedgerEntryID != top.LedgerEntryID || inv.AmountMicros != 25_000_000 {
			t.Fatalf("invoice %+v: %v", inv, err)
		}
		if atts := e.mail.To(acct.Email)[0].Attachments; len(atts) != 1 || atts[0].Filename != inv.Number+".pdf" {
			t.Fatalf("receipt attachments %+v", atts)
		}
		// Stripe sends the event again: credited once.
		deliver(e.stripe.SignedEvent(stripe.EventCheckoutSessionCompleted, map[string]any{"id": co.ID,
			"object": "checkout.session", "mode": "payment"}))
		if b := balance(acct.ID); b != 25_000_000 {
			t.Fatalf("balance %d after a duplicate event", b)
		}
	})

	t.Run("delayed payment", func(t *testing.T) {
		co, err := e.payments.CreateTopUpCheckout(ctx, payments.TopUpRequest{Account: acct, AmountMicros: 10_000_000})
		if err != nil {
			t.Fatal(err)
		}
		deliver(e.stripe.CompleteCheckout(co.ID, false))
		waitFor(t, "the settlement to wait", func() bool {
			d, err := e.c.DescribeWorkflow(ctx, workflows.TopUpWorkflowID(co.ID), "")
			return err == nil && len(d.RawResponse.PendingActivities) == 0 && d.RawResponse.WorkflowExecutionInfo.HistoryLength >= 11
		})
		deliver(e.stripe.AsyncPaymentSucceeded(co.ID))
		var res workflows.TopUpSettlementResult
		e.result(t, workflows.TopUpWorkflowID(co.ID), "topup_settlement_async_paid", &res)
		if res.Status != workflows.SettlementPaid || balance(acct.ID) != 35_000_000 {
			t.Fatalf("result %+v, balance %d", res, balance(acct.ID))
		}
	})

	t.Run("refund", func(t *testing.T) {
		if top.ID == "" {
			t.Skip("no top-up")
		}
		id, err := e.wf.StartRefund(ctx, "e2e", workflows.RefundInput{TopUpID: top.ID, AmountMicros: 5_000_000})
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.RefundResult
		e.result(t, id, "refund_succeeded", &res)
		if res.Status != workflows.RefundSucceeded || balance(acct.ID) != 30_000_000 {
			t.Fatalf("result %+v, balance %d", res, balance(acct.ID))
		}
		if again, err := e.wf.StartRefund(ctx, "e2e", workflows.RefundInput{TopUpID: top.ID, AmountMicros: 5_000_000}); err != nil || again != id {
			t.Fatalf("same key: %q %v", again, err)
		}
		var notes []models.Invoice
		if err := e.db.Where("account_id = ? AND kind = ?", acct.ID, models.InvoiceKindCreditNote).Find(&notes).Error; err != nil ||
			len(notes) != 1 || notes[0].AmountMicros != 5_000_000 || notes[0].RefersTo == nil {
			t.Fatalf("credit notes %+v: %v", notes, err)
		}
	})

	t.Run("auto-recharge", func(t *testing.T) {
		for _, c := range []struct{ email, card, history, want string }{
			{"rick@example.com", "pm_card_visa", "auto_recharge_charged", workflows.AutoRechargeCharged},
			{"dee@example.com", "pm_card_chargeDeclined", "auto_recharge_declined", workflows.AutoRechargeDeclined},
		} {
			a := e.account(t, c.email, "recharge password 123")
			co, err := e.payments.StartCardSetup(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			deliver(e.stripe.CompleteSetupCheckout(co.ID, c.card))
			threshold, amount := int64(5_000_000), int64(20_000_000)
			if _, err := e.payments.SetAutoRecharge(ctx, a.ID, payments.AutoRechargeChange{Enabled: true,
				ThresholdMicros: &threshold, AmountMicros: &amount}); err != nil {
				t.Fatal(err)
			}
			if err := e.wf.StartAutoRecharge(ctx, a.ID); err != nil {
				t.Fatal(err)
			}
			var res workflows.AutoRechargeResult
			e.result(t, workflows.AutoRechargeWorkflowID(a.ID), c.history, &res)
			if res.Status != c.want {
				t.Fatalf("%s: %+v", c.card, res)
			}
			var n int64
			if err := e.db.Model(&models.Invoice{}).Where("account_id = ?", a.ID).Count(&n).Error; err != nil ||
				(n == 1) != (c.want == workflows.AutoRechargeCharged) {
				t.Fatalf("%s: %d invoices (%v)", c.card, n, err)
			}
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

// A batch on the real worker: uploaded, created, run by BatchWorkflow
// through the gateway, its output file downloadable, each line charged.
func TestBatchEndToEnd(t *testing.T) {
	e := startE2E(t)
	ctx := context.Background()
	acct := e.account(t, "bea@example.com", "bea password 1234")
	if _, _, err := (&billing.Ledger{DB: e.db}).Post(ctx, billing.Entry{AccountID: acct.ID, Type: models.EntryTopUp,
		AmountMicros: 5_000_000, Reference: "e2e-batch-topup"}); err != nil {
		t.Fatal(err)
	}
	e.runBatch(t, acct, "openai/gpt-4o-mini", "batch_completed")
}

// A batch all on Anthropic's models on the real worker: sent to the
// Message Batches API, polled, each line charged once at the batch rate.
func TestNativeBatchEndToEnd(t *testing.T) {
	e := startE2E(t)
	ctx := context.Background()
	acct := e.account(t, "nat@example.com", "nat password 1234")
	if _, _, err := (&billing.Ledger{DB: e.db}).Post(ctx, billing.Entry{AccountID: acct.ID, Type: models.EntryTopUp,
		AmountMicros: 50_000_000, Reference: "e2e-native-batch-topup"}); err != nil {
		t.Fatal(err)
	}
	id := e.runBatch(t, acct, "anthropic/claude-opus-5-5", "batch_native_completed")
	var b models.Batch
	if err := e.db.Where("id = ?", id).Take(&b).Error; err != nil || b.NativeID == nil || b.HeldMicros != 0 {
		t.Fatalf("batch %+v %v", b, err)
	}
}

// runBatch runs a batch of 3 lines on model through BatchWorkflow, checks
// its lines' charges add up to the balance's drop, records its history as
// history, and returns its id.
func (e *e2e) runBatch(t *testing.T, acct *models.Account, model, history string) string {
	t.Helper()
	ctx := context.Background()
	var lines []string
	for i := range 3 {
		lines = append(lines, fmt.Sprintf(`{"custom_id":"r%d","method":"POST","url":"/v1/chat/completions","body":{"model":%q,"messages":[{"role":"user","content":"hi %d"}]}}`, i, model, i))
	}
	in, err := e.files.Create(ctx, acct.ID, "batch", "in.jsonl", strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	var a models.Account
	if err := e.db.Where("id = ?", acct.ID).Take(&a).Error; err != nil {
		t.Fatal(err)
	}
	before := a.BalanceMicros
	b, err := e.batches.Create(ctx, &auth.Principal{Account: a}, batches.CreateInput{InputFileID: in.ID,
		Endpoint: batches.EndpointChat, CompletionWindow: "24h"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.wf.StartBatch(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	var res workflows.BatchResult
	e.result(t, workflows.BatchWorkflowID(b.ID), history, &res)
	if res.Status != batches.StatusCompleted {
		t.Fatalf("batch %+v", res)
	}
	got, err := e.batches.Get(ctx, acct.ID, b.ID)
	if err != nil || got.Completed != 3 || got.OutputFileID == nil {
		t.Fatalf("batch %+v %v", got, err)
	}
	_, rc, err := e.files.Open(ctx, acct.ID, *got.OutputFileID)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(rc)
	_ = rc.Close()
	var sum int64
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var v struct {
			Response struct {
				Body struct {
					Usage struct {
						CostMicros int64 `json:"cost_micros"`
					} `json:"usage"`
				} `json:"body"`
			} `json:"response"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatal(err)
		}
		sum += v.Response.Body.Usage.CostMicros
	}
	if err := e.db.Where("id = ?", acct.ID).Take(&a).Error; err != nil {
		t.Fatal(err)
	}
	if sum <= 0 || before-a.BalanceMicros != sum {
		t.Fatalf("lines cost %d, balance dropped %d", sum, before-a.BalanceMicros)
	}
	return b.ID
}
