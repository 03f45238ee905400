package finetune_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/db"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/finetune"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
	"gorm.io/gorm"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type endpoints struct{ base string }

func (e endpoints) Endpoint(name string) (string, string, bool) {
	return e.base + "/v1", "sk-test-upstream", name == "openai"
}

type starter struct {
	mu      sync.Mutex
	started []string
	err     error
}

func (s *starter) Available() bool { return true }

func (s *starter) StartFineTuningJob(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started = append(s.started, id)
	return s.err
}

type fixture struct {
	t     *testing.T
	d     *db.DB
	cat   *catalog.Catalog
	up    *fakeupstream.Server
	svc   *finetune.Service
	base  string // the fake upstream's URL
	start *starter
}

func newFixture(t *testing.T, dialect string) *fixture {
	t.Helper()
	ctx := context.Background()
	d := testenv.Open(t, dialect)
	cat := catalog.New(d, bus.NewLocal(), quiet)
	for _, step := range []func(context.Context) error{cat.Seed, cat.EnsurePrices, cat.Reload} {
		if err := step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	up := fakeupstream.New(fakeupstream.Options{})
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	st := &starter{}
	svc := finetune.New(finetune.Options{DB: d, Catalog: cat, Endpoints: endpoints{srv.URL}, Workflows: st, Log: quiet})
	return &fixture{t: t, d: d, cat: cat, up: up, svc: svc, start: st, base: srv.URL}
}

func (f *fixture) account(balance int64) string {
	f.t.Helper()
	now := time.Now().UTC()
	a := models.Account{ID: ids.New("acct"), Email: ids.New("u") + "@example.com", PasswordHash: "x", Role: "user",
		Plan: "free", Active: true, CreatedAt: now, UpdatedAt: now}
	a.EmailLower = a.Email
	if err := f.d.Create(&a).Error; err != nil {
		f.t.Fatal(err)
	}
	if balance > 0 {
		if _, _, err := (&billing.Ledger{DB: f.d}).Post(context.Background(), billing.Entry{AccountID: a.ID,
			Type: models.EntryTopUp, AmountMicros: balance, Reference: ids.New("ref")}); err != nil {
			f.t.Fatal(err)
		}
	}
	return a.ID
}

func (f *fixture) balance(account string) (balance, reserved int64) {
	f.t.Helper()
	var a models.Account
	if err := f.d.Where("id = ?", account).Take(&a).Error; err != nil {
		f.t.Fatal(err)
	}
	return a.BalanceMicros, a.ReservedMicros
}

// trainingFile is n supervised examples of 8 words + 3 messages each (the
// fake counts 8 + 3·3 = 17 tokens per example).
func trainingFile(n int) []byte {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(`{"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hi"},{"role":"assistant","content":"Hi there friend."}]}` + "\n")
	}
	return []byte(b.String())
}

func (f *fixture) upload(account string, examples int) string {
	f.t.Helper()
	raw, err := f.svc.UploadTrainingFile(context.Background(), account, "train.jsonl", trainingFile(examples))
	if err != nil {
		f.t.Fatal(err)
	}
	var file struct {
		ID, Object, Purpose string
	}
	if err := json.Unmarshal(raw, &file); err != nil || file.Object != "file" || file.Purpose != "fine-tune" {
		f.t.Fatalf("file object %s (%v)", raw, err)
	}
	return file.ID
}

type jobObject struct {
	ID             string  `json:"id"`
	Object         string  `json:"object"`
	Model          string  `json:"model"`
	Status         string  `json:"status"`
	TrainingFile   string  `json:"training_file"`
	TrainedTokens  *int64  `json:"trained_tokens"`
	FineTunedModel *string `json:"fine_tuned_model"`
}

func (f *fixture) create(account, body string) (jobObject, error) {
	raw, err := f.svc.Create(context.Background(), finetune.CreateInput{AccountID: account, Body: []byte(body)})
	if err != nil {
		return jobObject{}, err
	}
	var j jobObject
	if err := json.Unmarshal(raw, &j); err != nil {
		f.t.Fatal(err)
	}
	return j, nil
}

// runToEnd polls as the workflow does until the job ends, then settles it.
func (f *fixture) runToEnd(id string) finetune.Settlement {
	f.t.Helper()
	ctx := context.Background()
	for i := 0; ; i++ {
		r, err := f.svc.Poll(ctx, id)
		if err != nil {
			f.t.Fatal(err)
		}
		if r.Terminal {
			break
		}
		if i > 10 {
			f.t.Fatalf("job %s never ended", id)
		}
	}
	s, err := f.svc.Settle(ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) ledgerCharges(account string) (n int64, sum int64) {
	f.t.Helper()
	var rows []models.LedgerEntry
	if err := f.d.Where("account_id = ? AND type = ?", account, models.EntryCharge).Find(&rows).Error; err != nil {
		f.t.Fatal(err)
	}
	for _, r := range rows {
		sum += r.AmountMicros
	}
	return int64(len(rows)), sum
}

func TestJobSucceedsChargedOnceAndModelIsPrivate(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newFixture(t, dialect)
			ctx := context.Background()
			const start = 100_000_000 // $100
			owner, other := f.account(start), f.account(start)
			file := f.upload(owner, 10)

			j, err := f.create(owner, `{"model":"gpt-4.1-mini","training_file":"`+file+`","suffix":"beaver",
				"method":{"type":"supervised","supervised":{"hyperparameters":{"n_epochs":2}}},"seed":7,"metadata":{"team":"a"}}`)
			if err != nil {
				t.Fatal(err)
			}
			if j.Object != "fine_tuning.job" || j.Status != "validating_files" || j.Model != "gpt-4.1-mini" || j.TrainingFile != file {
				t.Fatalf("created job %+v", j)
			}
			if len(f.start.started) != 1 || f.start.started[0] != j.ID {
				t.Fatalf("workflow started for %v, want %s", f.start.started, j.ID)
			}
			// The hold: the file's token bound × 2 epochs × the marked-up training price.
			var row models.FineTuningJob
			if err := f.d.Where("id = ?", j.ID).Take(&row).Error; err != nil {
				t.Fatal(err)
			}
			price, err := f.cat.TrainingPriceOf("gpt-4.1-mini")
			if err != nil {
				t.Fatal(err)
			}
			a, _ := finetune.Analyze(trainingFile(10))
			if row.HoldTokens != a.TokenBound*2 || row.TrainingPriceMicros != pricing.MarkUp(5_000_000, price.MarkupPermille) ||
				row.HeldMicros != pricing.Cost(row.TrainingPriceMicros, 0, 0, row.HoldTokens, 0) {
				t.Fatalf("hold: %+v (bound %d, price %+v)", row, a.TokenBound, price)
			}
			if bal, res := f.balance(owner); bal != start || res != row.HeldMicros {
				t.Fatalf("balance %d reserved %d, want %d and %d", bal, res, start, row.HeldMicros)
			}
			// The upstream got the body relayed, key and all.
			var seen bool
			for _, r := range f.up.Requests() {
				if r.Path == "/v1/fine_tuning/jobs" && r.Method == http.MethodPost {
					seen = true
					if r.Header.Get("Authorization") != "Bearer sk-test-upstream" || !strings.Contains(string(r.Body), `"seed":7`) {
						t.Fatalf("upstream request %s %v", r.Body, r.Header)
					}
				}
			}
			if !seen {
				t.Fatal("no job created upstream")
			}

			s := f.runToEnd(j.ID)
			trained := int64(10*17) * 2
			want := pricing.Cost(row.TrainingPriceMicros, 0, 0, trained, 0)
			if !s.Settled || s.Status != "succeeded" || s.TrainedTokens != trained || s.ChargedMicros != want ||
				s.ProviderCostMicros != pricing.Cost(5_000_000, 0, 0, trained, 0) {
				t.Fatalf("settlement %+v, want %d tokens charged %d", s, trained, want)
			}
			// Settled again, alone and concurrently: nothing more.
			var wg sync.WaitGroup
			for i := 0; i < 3; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					again, err := f.svc.Settle(ctx, j.ID)
					if err != nil || again.Settled || again.ChargedMicros != want {
						t.Errorf("settle again: %+v %v", again, err)
					}
				}()
			}
			wg.Wait()
			if bal, res := f.balance(owner); bal != start-want || res != 0 {
				t.Fatalf("after settlement balance %d reserved %d, want %d and 0", bal, res, start-want)
			}
			if n, sum := f.ledgerCharges(owner); n != 1 || sum != -want {
				t.Fatalf("%d charges summing %d, want 1 of %d", n, sum, -want)
			}
			var logs []models.UsageLog
			if err := f.d.Where("account_id = ?", owner).Find(&logs).Error; err != nil || len(logs) != 1 ||
				logs[0].ID != j.ID || logs[0].ChargedMicros != want || logs[0].PromptTokens != trained {
				t.Fatalf("usage logs %+v (%v)", logs, err)
			}

			// The fine-tuned model: the owner's only, at the fine-tuned prices.
			ftModel := "openai/ft:gpt-4.1-mini:fake-org:beaver:fake0002"
			if s.FineTunedModel != ftModel {
				t.Fatalf("fine-tuned model %q, want %q", s.FineTunedModel, ftModel)
			}
			e, err := f.cat.ResolveFor(ftModel, owner)
			if err != nil {
				t.Fatal(err)
			}
			if e.Base.Input != 800_000 || e.Base.Output != 3_200_000 || e.Base.CachedInput != 200_000 || e.Owner != owner ||
				e.Price.Input != pricing.MarkUp(800_000, e.Price.MarkupPermille) {
				t.Fatalf("fine-tuned entry %+v", e)
			}
			if _, err := f.cat.ResolveFor("ft:gpt-4.1-mini:fake-org:beaver:fake0002", owner); err != nil {
				t.Fatalf("bare name for the owner: %v", err)
			}
			for _, name := range []string{ftModel, "ft:gpt-4.1-mini:fake-org:beaver:fake0002"} {
				for _, acct := range []string{other, ""} {
					_, err := f.cat.ResolveFor(name, acct)
					if e, ok := apierr.As(err); !ok || e.Status != 404 || e.Code != "model_not_found" {
						t.Fatalf("%s for %q: %v, want 404 model_not_found", name, acct, err)
					}
				}
			}
			if !listed(f.cat.ListFor(owner), ftModel) || listed(f.cat.ListFor(other), ftModel) || listed(f.cat.List(false), ftModel) {
				t.Fatal("the fine-tuned model must be listed for its owner only")
			}
			// The job is the owner's: another account gets 404 everywhere.
			if _, err := f.svc.Get(ctx, other, j.ID); !isStatus(err, 404) {
				t.Fatalf("other account's get: %v", err)
			}
			if _, err := f.svc.Cancel(ctx, other, j.ID); !isStatus(err, 404) {
				t.Fatalf("other account's cancel: %v", err)
			}
			if _, err := f.svc.Events(ctx, other, j.ID, nil); !isStatus(err, 404) {
				t.Fatalf("other account's events: %v", err)
			}
			if _, err := f.create(other, `{"model":"gpt-4.1-mini","training_file":"`+file+`"}`); !isStatus(err, 404) {
				t.Fatalf("training on another account's file: %v", err)
			}
		})
	}
}

func listed(list []*catalog.Entry, id string) bool {
	for _, e := range list {
		if e.ID == id {
			return true
		}
	}
	return false
}

func isStatus(err error, status int) bool {
	e, ok := apierr.As(err)
	return ok && e.Status == status
}

func TestInsufficientBalanceRefusedBeforeUpstream(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newFixture(t, dialect)
			acct := f.account(1_000) // $0.001
			file := f.upload(acct, 50)
			_, err := f.create(acct, `{"model":"gpt-4.1","training_file":"`+file+`"}`)
			e, ok := apierr.As(err)
			if !ok || e.Status != 402 || e.Code != "insufficient_balance" {
				t.Fatalf("got %v, want 402 insufficient_balance", err)
			}
			for _, r := range f.up.Requests() {
				if strings.Contains(r.Path, "fine_tuning") {
					t.Fatalf("the upstream was called: %s %s", r.Method, r.Path)
				}
			}
			if bal, res := f.balance(acct); bal != 1_000 || res != 0 {
				t.Fatalf("balance %d reserved %d", bal, res)
			}
			var n int64
			f.d.Model(&models.FineTuningJob{}).Count(&n)
			if n != 0 || len(f.start.started) != 0 {
				t.Fatalf("%d job rows, %d workflows", n, len(f.start.started))
			}
		})
	}
}

func TestCancelledAndFailedJobsReleaseTheHold(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newFixture(t, dialect)
			ctx := context.Background()
			acct := f.account(50_000_000)
			file := f.upload(acct, 10)

			j, err := f.create(acct, `{"model":"openai/gpt-4o-mini","training_file":"`+file+`"}`)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := f.svc.Cancel(ctx, acct, j.ID)
			if err != nil || !strings.Contains(string(raw), `"status":"cancelled"`) {
				t.Fatalf("cancel: %s %v", raw, err)
			}
			if s := f.runToEnd(j.ID); !s.Settled || s.Status != "cancelled" || s.ChargedMicros != 0 || s.FineTunedModel != "" {
				t.Fatalf("cancelled settlement %+v", s)
			}

			j2, err := f.create(acct, `{"model":"gpt-4o-mini","training_file":"`+file+`","suffix":"fail"}`)
			if err != nil {
				t.Fatal(err)
			}
			if s := f.runToEnd(j2.ID); !s.Settled || s.Status != "failed" || s.ChargedMicros != 0 {
				t.Fatalf("failed settlement %+v", s)
			}
			if bal, res := f.balance(acct); bal != 50_000_000 || res != 0 {
				t.Fatalf("balance %d reserved %d, want all back", bal, res)
			}
			if n, _ := f.ledgerCharges(acct); n != 0 {
				t.Fatalf("%d charges for jobs that trained nothing", n)
			}
			// A finished job cannot be cancelled: OpenAI's 400, relayed.
			if _, err := f.svc.Cancel(ctx, acct, j2.ID); !isStatus(err, 400) {
				t.Fatalf("cancel a failed job: %v", err)
			}
		})
	}
}

func TestListAndEvents(t *testing.T) {
	f := newFixture(t, db.SQLite)
	ctx := context.Background()
	acct, other := f.account(100_000_000), f.account(100_000_000)
	file := f.upload(acct, 10)
	var made []string
	for i := 0; i < 3; i++ {
		j, err := f.create(acct, `{"model":"gpt-4.1-nano","training_file":"`+file+`"}`)
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, j.ID)
	}
	page := func(account, after string, limit int) (ids []string, more bool) {
		l, err := f.svc.List(ctx, account, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(l)
		var out struct {
			Object  string      `json:"object"`
			Data    []jobObject `json:"data"`
			HasMore bool        `json:"has_more"`
		}
		if err := json.Unmarshal(b, &out); err != nil || out.Object != "list" {
			t.Fatalf("list %s", b)
		}
		for _, j := range out.Data {
			ids = append(ids, j.ID)
		}
		return ids, out.HasMore
	}
	first, more := page(acct, "", 2)
	if len(first) != 2 || !more || first[0] != made[2] || first[1] != made[1] {
		t.Fatalf("first page %v more=%v, made %v", first, more, made)
	}
	rest, more := page(acct, first[1], 2)
	if len(rest) != 1 || more || rest[0] != made[0] {
		t.Fatalf("second page %v more=%v", rest, more)
	}
	if none, _ := page(other, "", 20); len(none) != 0 {
		t.Fatalf("another account lists %v", none)
	}

	if _, err := f.svc.Get(ctx, acct, made[0]); err != nil { // validating_files → queued
		t.Fatal(err)
	}
	raw, err := f.svc.Events(ctx, acct, made[0], url.Values{"limit": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Object string `json:"object"`
		Data   []struct {
			Object, ID, Level, Message, Type string
			CreatedAt                        int64 `json:"created_at"`
		} `json:"data"`
		HasMore bool `json:"has_more"`
	}
	if err := json.Unmarshal(raw, &ev); err != nil || ev.Object != "list" || len(ev.Data) != 1 || !ev.HasMore ||
		ev.Data[0].Object != "fine_tuning.job.event" || ev.Data[0].Level != "info" || ev.Data[0].CreatedAt == 0 {
		t.Fatalf("events %s", raw)
	}
}

func TestWorkflowStartFailureCancelsAndReleases(t *testing.T) {
	f := newFixture(t, db.SQLite)
	acct := f.account(10_000_000)
	file := f.upload(acct, 10)
	f.start.err = apierr.Unavailable("Temporal is down")
	_, err := f.create(acct, `{"model":"gpt-4.1-nano","training_file":"`+file+`"}`)
	if !isStatus(err, 503) {
		t.Fatalf("got %v, want 503", err)
	}
	if bal, res := f.balance(acct); bal != 10_000_000 || res != 0 {
		t.Fatalf("balance %d reserved %d", bal, res)
	}
}

func TestUpstreamRefusalReleasesTheHold(t *testing.T) {
	f := newFixture(t, db.SQLite)
	acct := f.account(10_000_000)
	file := f.upload(acct, 10)
	// The fake refuses an unknown file; make the row point at one it does not have.
	if err := f.d.Model(&models.FineTuningFile{}).Where("id = ?", file).Update("id", "file-gone").Error; err != nil {
		t.Fatal(err)
	}
	_, err := f.create(acct, `{"model":"gpt-4.1-nano","training_file":"file-gone"}`)
	if !isStatus(err, 400) {
		t.Fatalf("got %v, want the upstream's 400", err)
	}
	if bal, res := f.balance(acct); bal != 10_000_000 || res != 0 {
		t.Fatalf("balance %d reserved %d", bal, res)
	}
	var n int64
	f.d.Model(&models.FineTuningJob{}).Count(&n)
	if n != 0 {
		t.Fatalf("%d job rows left", n)
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t, db.SQLite)
	acct := f.account(10_000_000)
	file := f.upload(acct, 3)
	for _, tc := range []struct{ body, param string }{
		{`{"model":"claude-3","training_file":"` + file + `"}`, "model"},
		{`{"training_file":"` + file + `"}`, "model"},
		{`{"model":"gpt-4.1-mini"}`, "training_file"},
		{`{"model":"gpt-4.1-mini","training_file":"` + file + `","hyperparameters":{"n_epochs":51}}`, "hyperparameters.n_epochs"},
		{`{"model":"gpt-4.1-mini","training_file":"` + file + `","method":{"type":"reinforcement"}}`, "method.type"},
	} {
		_, err := f.create(acct, tc.body)
		e, ok := apierr.As(err)
		if !ok || e.Status != 400 || fmt.Sprint(e.ParamValue()) != tc.param {
			t.Errorf("%s: %v, want 400 on %s", tc.body, err, tc.param)
		}
	}
	if _, err := f.svc.UploadTrainingFile(context.Background(), acct, "x.jsonl", []byte("not json\n")); !isStatus(err, 400) {
		t.Fatalf("a file that is not JSONL: %v", err)
	}
	if _, err := f.svc.Settle(context.Background(), "ftjob-none"); err == nil {
		t.Fatal("settling an unknown job must fail")
	}
}

func TestAnalyzeAndEpochBound(t *testing.T) {
	a, err := finetune.Analyze([]byte("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}\n\n" +
		`{"input":{"messages":[{"role":"user","content":"a"}]},"preferred_output":[{"role":"assistant","content":"b"}],"non_preferred_output":[{"role":"assistant","content":"c"}]}` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	line1 := int64(len(`{"messages":[{"role":"user","content":"hi"}]}`)) + 8 + 8
	line2 := (int64(len(`{"input":{"messages":[{"role":"user","content":"a"}]},"preferred_output":[{"role":"assistant","content":"b"}],"non_preferred_output":[{"role":"assistant","content":"c"}]}`)) + 3*8 + 8) * 2
	if a.Examples != 2 || a.TokenBound != line1+line2 {
		t.Fatalf("analysis %+v, want 2 examples, %d tokens", a, line1+line2)
	}
	for _, tc := range []struct{ n, examples, want int64 }{
		{4, 10, 4}, {0, 1, 25}, {0, 4, 25}, {0, 10, 10}, {0, 34, 3}, {0, 100, 3}, {0, 100000, 3},
	} {
		if got := finetune.EpochBound(tc.n, tc.examples); got != tc.want {
			t.Errorf("EpochBound(%d, %d) = %d, want %d", tc.n, tc.examples, got, tc.want)
		}
	}
}

// TestGetSettlesAFinishedJob: the API's retrieve that finds a job finished
// settles it at once (exactly once beside the workflow's settlement) and
// puts the fine-tuned model into its own process's catalog, so a client
// that polled until "succeeded" can use the model right away; a job the
// worker settled first gets its model into the API's catalog on retrieve.
func TestGetSettlesAFinishedJob(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newFixture(t, dialect)
			ctx := context.Background()
			// The API process: its own catalog, which hears nothing from the worker's.
			apiCat := catalog.New(f.d, bus.NewLocal(), quiet)
			if err := apiCat.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			api := finetune.New(finetune.Options{DB: f.d, Catalog: apiCat, Endpoints: endpoints{f.base}, Workflows: f.start, Log: quiet})
			acct := f.account(50_000_000)
			file := f.upload(acct, 10)
			get := func(id string) jobObject {
				t.Helper()
				raw, err := api.Get(ctx, acct, id)
				if err != nil {
					t.Fatal(err)
				}
				var j jobObject
				if err := json.Unmarshal(raw, &j); err != nil {
					t.Fatal(err)
				}
				return j
			}

			// Polled by the client to succeeded: settled on that retrieve.
			j, err := f.create(acct, `{"model":"gpt-4.1-mini","training_file":"`+file+`","suffix":"tokens-1000"}`)
			if err != nil {
				t.Fatal(err)
			}
			got := get(j.ID)
			for i := 0; got.Status != "succeeded"; i++ {
				if i > 10 {
					t.Fatalf("job %+v never succeeded", got)
				}
				got = get(j.ID)
			}
			var row models.FineTuningJob
			if err := f.d.Where("id = ?", j.ID).Take(&row).Error; err != nil || row.SettledAt == nil {
				t.Fatalf("not settled on retrieve: %+v %v", row, err)
			}
			want := pricing.Cost(row.TrainingPriceMicros, 0, 0, 1000, 0)
			if row.ChargedMicros != want {
				t.Fatalf("charged %d, want %d", row.ChargedMicros, want)
			}
			if _, err := apiCat.ResolveFor("openai/"+*got.FineTunedModel, acct); err != nil {
				t.Fatalf("the model right after the retrieve that saw it succeed: %v", err)
			}
			// The workflow's settlement then changes nothing.
			if s := f.runToEnd(j.ID); s.Settled || s.ChargedMicros != want || s.FineTunedModel != "openai/"+*got.FineTunedModel {
				t.Fatalf("the workflow's settlement after the retrieve's: %+v", s)
			}
			if n, sum := f.ledgerCharges(acct); n != 1 || sum != -want {
				t.Fatalf("%d charges summing %d, want 1 of %d", n, sum, -want)
			}

			// Settled by the worker first: the retrieve brings the model into
			// the API's catalog.
			j2, err := f.create(acct, `{"model":"gpt-4.1-mini","training_file":"`+file+`","suffix":"second"}`)
			if err != nil {
				t.Fatal(err)
			}
			s := f.runToEnd(j2.ID)
			if !s.Settled || s.FineTunedModel == "" {
				t.Fatalf("settlement %+v", s)
			}
			if _, err := apiCat.ResolveFor(s.FineTunedModel, acct); err == nil {
				t.Fatal("the API's catalog has the model before any retrieve: the test proves nothing")
			}
			if got := get(j2.ID); got.Status != "succeeded" {
				t.Fatalf("retrieve %+v", got)
			}
			if _, err := apiCat.ResolveFor(s.FineTunedModel, acct); err != nil {
				t.Fatalf("the model after the retrieve of a job the worker settled: %v", err)
			}
			if bal, res := f.balance(acct); res != 0 || bal != 50_000_000-want-s.ChargedMicros {
				t.Fatalf("balance %d reserved %d", bal, res)
			}
		})
	}
}

// A job whose creation a crash cut off (held, pending, no OpenAI id) gives
// its hold back to the sweep after an hour; a job being created now keeps it.
func TestStalePendingHoldsAreReturned(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			f := newFixture(t, dialect)
			ctx := context.Background()
			acct := f.account(10_000_000)
			now := time.Now().UTC()
			for i, age := range []time.Duration{2 * time.Hour, time.Minute} {
				if err := f.d.Transaction(func(tx *gorm.DB) error {
					if err := billing.ReserveDurable(tx, acct, "", 1_000_000); err != nil {
						return err
					}
					return tx.Create(&models.FineTuningJob{ID: fmt.Sprintf("ftpending_%d", i), AccountID: acct, Model: "openai/gpt-4.1-mini",
						BaseModel: "gpt-4.1-mini", TrainingFile: "file-x", Status: "pending", HeldMicros: 1_000_000, Upstream: "{}",
						CreatedAt: now.Add(-age), UpdatedAt: now.Add(-age)}).Error
				}); err != nil {
					t.Fatal(err)
				}
			}
			n, err := finetune.ReleaseStalePending(ctx, f.d.DB, now)
			if err != nil || n != 1 {
				t.Fatalf("released %d, %v; want 1", n, err)
			}
			if _, reserved := f.balance(acct); reserved != 1_000_000 {
				t.Fatalf("reserved %d after the sweep, want the fresh job's 1000000", reserved)
			}
			if n, err := finetune.ReleaseStalePending(ctx, f.d.DB, now); err != nil || n != 0 {
				t.Fatalf("second sweep released %d, %v", n, err)
			}
		})
	}
}
