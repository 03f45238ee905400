package batches_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/batches"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/embedding"
	"github.com/beaver-gateway/beaver/internal/files"
	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/internal/ratelimit"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const chatModel = "openai/gpt-4o-mini"

// upstream answers "echo: <last user text>" with 10 prompt and 5
// completion tokens; "fail" gets a 400 from the upstream.
type upstream struct {
	mu    sync.Mutex
	calls map[string]int
	// inFlight and maxInFlight count the calls running at once; each
	// lasts delay.
	inFlight, maxInFlight int
	delay                 time.Duration
}

func (u *upstream) Complete(_ context.Context, req *chat.Request) (*chat.Response, error) {
	text := req.Messages[len(req.Messages)-1].Content.Text()
	u.mu.Lock()
	u.calls[text]++
	u.inFlight++
	u.maxInFlight = max(u.maxInFlight, u.inFlight)
	delay := u.delay
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		u.inFlight--
		u.mu.Unlock()
	}()
	time.Sleep(delay)
	if text == "fail" {
		return nil, &providers.Error{Status: http.StatusBadRequest, Message: "the upstream refused it"}
	}
	var c chat.Content
	if err := json.Unmarshal([]byte(fmt.Sprintf("%q", "echo: "+text)), &c); err != nil {
		return nil, err
	}
	return &chat.Response{Choices: []chat.Choice{{Message: chat.Message{Role: "assistant", Content: c}, FinishReason: "stop"}},
		Usage: &chat.Usage{PromptTokens: 10, CompletionTokens: 5}}, nil
}

func (u *upstream) Stream(context.Context, *chat.Request) (providers.Stream, error) {
	return nil, fmt.Errorf("no streams here")
}

func (u *upstream) Embed(_ context.Context, req *embedding.Request) (*embedding.Response, error) {
	u.mu.Lock()
	u.calls["embed:"+req.Input.Texts[0]]++
	u.mu.Unlock()
	r := &embedding.Response{Object: embedding.ObjectList, Model: req.Model, Usage: &embedding.Usage{PromptTokens: 7, TotalTokens: 7}}
	for i := range req.Input.Texts {
		r.Data = append(r.Data, embedding.Vector{Object: embedding.ObjectEmbedding, Index: i, Embedding: json.RawMessage(`[0.25]`)})
	}
	return r, nil
}

func (u *upstream) count(text string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls[text]
}

type fixture struct {
	t     *testing.T
	d     *db.DB
	gw    *gateway.Gateway
	up    *upstream
	svc   *batches.Service
	files *files.Service
	p     *auth.Principal
	now   time.Time
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
	eng := billing.NewEngine(d, quiet, billing.EngineOptions{})
	t.Cleanup(eng.Close)
	lim, err := ratelimit.New(ratelimit.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	up := &upstream{calls: map[string]int{}}
	gw := gateway.New(gateway.Deps{Billing: eng, Catalog: cat, Providers: providers.Static{"openai": up, "anthropic": up}, Limiter: lim, Log: quiet},
		gateway.Options{})
	t.Cleanup(func() { gw.Close(context.Background()) })
	now := time.Now().UTC()
	a := models.Account{ID: ids.New("acct"), Email: ids.New("u") + "@example.com", PasswordHash: "x", Role: "user",
		Plan: "free", Active: true, EmailVerified: true, CreatedAt: now, UpdatedAt: now}
	a.EmailLower = a.Email
	if err := d.Create(&a).Error; err != nil {
		t.Fatal(err)
	}
	if _, _, err := (&billing.Ledger{DB: d}).Post(ctx, billing.Entry{AccountID: a.ID, Type: models.EntryTopUp,
		AmountMicros: 10_000_000, Reference: ids.New("ref")}); err != nil {
		t.Fatal(err)
	}
	k := models.APIKey{ID: ids.New("key"), AccountID: a.ID, Name: "batch", Prefix: "bv-x", KeyHash: ids.New("h"), Active: true,
		LimitReset: "none", CreatedAt: now, UpdatedAt: now}
	if err := d.Create(&k).Error; err != nil {
		t.Fatal(err)
	}
	fs := &files.Service{DB: d, Store: files.DBStore{DB: d}}
	f := &fixture{t: t, d: d, gw: gw, up: up, files: fs, p: &auth.Principal{Account: a, Key: &k}, now: now}
	f.svc = &batches.Service{DB: d, Files: fs, Gateway: gw, Log: quiet, Concurrency: 3, AccountConcurrency: 4,
		Now: func() time.Time { return f.now }}
	return f
}

func (f *fixture) balance() int64 {
	f.t.Helper()
	var a models.Account
	if err := f.d.Where("id = ?", f.p.Account.ID).Take(&a).Error; err != nil {
		f.t.Fatal(err)
	}
	return a.BalanceMicros
}

func (f *fixture) upload(lines ...string) string {
	f.t.Helper()
	file, err := f.files.Create(context.Background(), f.p.Account.ID, "batch", "in.jsonl", strings.NewReader(strings.Join(lines, "\n")+"\n"))
	if err != nil {
		f.t.Fatal(err)
	}
	return file.ID
}

func chatLine(id, model, text string) string {
	return fmt.Sprintf(`{"custom_id":%q,"method":"POST","url":"/v1/chat/completions","body":{"model":%q,"messages":[{"role":"user","content":%q}]}}`,
		id, model, text)
}

func (f *fixture) create(endpoint string, lines ...string) *models.Batch {
	f.t.Helper()
	b, err := f.svc.Create(context.Background(), f.p, batches.CreateInput{InputFileID: f.upload(lines...), Endpoint: endpoint,
		CompletionWindow: "24h"})
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

// run does what BatchWorkflow does, page by page.
func (f *fixture) run(id string, pageSize int) string {
	f.t.Helper()
	ctx := context.Background()
	if _, err := f.svc.Start(ctx, id); err != nil {
		f.t.Fatal(err)
	}
	next := int64(0)
	for {
		p, err := f.svc.RunPage(ctx, id, next, pageSize, nil)
		if err != nil {
			f.t.Fatal(err)
		}
		next = p.Next
		if p.Done || p.Stopped {
			break
		}
	}
	fin, err := f.svc.Finalize(ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return fin.Status
}

type outLine struct {
	ID       string `json:"id"`
	CustomID string `json:"custom_id"`
	Response *struct {
		StatusCode int             `json:"status_code"`
		RequestID  string          `json:"request_id"`
		Body       json.RawMessage `json:"body"`
	} `json:"response"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (f *fixture) lines(fileID *string) []outLine {
	f.t.Helper()
	if fileID == nil {
		return nil
	}
	_, rc, err := f.files.Open(context.Background(), f.p.Account.ID, *fileID)
	if err != nil {
		f.t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	var out []outLine
	sc := bufio.NewScanner(rc)
	for sc.Scan() {
		var l outLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			f.t.Fatalf("output line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

func (f *fixture) batch(id string) *models.Batch {
	f.t.Helper()
	b, err := f.svc.Get(context.Background(), f.p.Account.ID, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

// direct is what the same chat request costs made directly.
func (f *fixture) direct(text string) int64 {
	f.t.Helper()
	req, err := chat.ParseRequest([]byte(fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":%q}]}`, chatModel, text)))
	if err != nil {
		f.t.Fatal(err)
	}
	done, err := f.gw.Complete(context.Background(), gateway.Call{Principal: f.p, Request: req, Model: chatModel})
	if err != nil {
		f.t.Fatal(err)
	}
	return done.Settlement.ChargedMicros
}

func costOf(t *testing.T, body json.RawMessage) int64 {
	t.Helper()
	var v struct {
		Usage struct {
			CostMicros int64 `json:"cost_micros"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	return v.Usage.CostMicros
}

// A batch runs every line once, in pages: the output file has the lines
// that succeeded, in input order, each charged what the same request costs
// made directly; the failures (an unknown model, an upstream refusal) are
// in the error file, free; the balance drops by the sum of the charges.
func TestBatchRunsEachLineOnceAndChargesItLikeADirectRequest(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newFixture(t, dialect)
			var in []string
			for i := range 7 {
				in = append(in, chatLine(fmt.Sprintf("req-%d", i), chatModel, fmt.Sprintf("hello %d", i)))
			}
			in = append(in, chatLine("bad-model", "nope/not-a-model", "x"), chatLine("refused", chatModel, "fail"))
			b := f.create(batches.EndpointChat, in...)
			if b.Status != batches.StatusValidating || b.Total != 9 {
				t.Fatalf("created %s with %d lines", b.Status, b.Total)
			}
			before := f.balance()
			if st := f.run(b.ID, 4); st != batches.StatusCompleted {
				t.Fatalf("status %s", st)
			}
			drop := before - f.balance()
			b = f.batch(b.ID)
			if b.Completed != 7 || b.Failed != 2 || b.CompletedAt == nil || b.FinalizingAt == nil || b.InProgressAt == nil {
				t.Fatalf("counts %d/%d, timestamps %v %v %v", b.Completed, b.Failed, b.CompletedAt, b.FinalizingAt, b.InProgressAt)
			}
			out := f.lines(b.OutputFileID)
			var sum int64
			for i, l := range out {
				if l.CustomID != fmt.Sprintf("req-%d", i) || l.Response == nil || l.Response.StatusCode != 200 || l.Error != nil {
					t.Fatalf("output line %d: %+v", i, l)
				}
				var resp chat.Response
				if err := json.Unmarshal(l.Response.Body, &resp); err != nil {
					t.Fatal(err)
				}
				if got := resp.Choices[0].Message.Content.Text(); got != fmt.Sprintf("echo: hello %d", i) {
					t.Fatalf("line %d answered %q", i, got)
				}
				if f.up.count(fmt.Sprintf("hello %d", i)) != 1 {
					t.Fatalf("line %d sent %d times", i, f.up.count(fmt.Sprintf("hello %d", i)))
				}
				sum += costOf(t, l.Response.Body)
			}
			if len(out) != 7 || sum != drop || sum <= 0 {
				t.Fatalf("%d output lines costing %d; balance drop %d", len(out), sum, drop)
			}
			if direct := f.direct("hello 0"); direct != costOf(t, out[0].Response.Body) {
				t.Fatalf("a line cost %d, the same request made directly %d", costOf(t, out[0].Response.Body), direct)
			}
			errs := f.lines(b.ErrorFileID)
			if len(errs) != 2 || errs[0].CustomID != "bad-model" || errs[0].Response.StatusCode != 404 ||
				errs[1].CustomID != "refused" || errs[1].Response.StatusCode < 400 {
				t.Fatalf("error file %+v", errs)
			}
			var logs int64
			if err := f.d.Model(&models.UsageLog{}).Where("account_id = ? AND charged_micros > 0", f.p.Account.ID).Count(&logs).Error; err != nil {
				t.Fatal(err)
			}
			if logs != 8 { // 7 lines and the direct request
				t.Fatalf("%d charged usage logs, want 8", logs)
			}
		})
	}
}

// Exactly once across crashes: a line whose answer was recorded but whose
// charge did not commit is charged from the kept answer (no second
// upstream call); a line whose charge committed before the crash is not
// charged again.
func TestBatchLineChargedOnceAcrossCrashes(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newFixture(t, dialect)
			ctx := context.Background()
			b := f.create(batches.EndpointChat, chatLine("a", chatModel, "one"), chatLine("b", chatModel, "two"))
			if _, err := f.svc.Start(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
			// Crash 1: line a's answer was recorded, then the worker died
			// before the charge.
			kept := `{"id":"x","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"kept answer"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`
			if err := f.d.Model(&models.BatchLine{}).Where("batch_id = ? AND line_index = 0", b.ID).
				Updates(map[string]any{"status": "recorded", "model": chatModel, "answer": kept}).Error; err != nil {
				t.Fatal(err)
			}
			before := f.balance()
			if _, err := f.svc.RunPage(ctx, b.ID, 0, 10, nil); err != nil {
				t.Fatal(err)
			}
			if f.up.count("one") != 0 || f.up.count("two") != 1 {
				t.Fatalf("upstream calls: one %d, two %d", f.up.count("one"), f.up.count("two"))
			}
			lineCost := f.direct("probe")
			if drop := before - f.balance(); drop != 3*lineCost { // a (replayed), b, and the probe
				t.Fatalf("balance drop %d, want %d", drop, 3*lineCost)
			}
			// Crash 2: line a was charged, then the worker died before
			// recording its outcome: run again, it is not charged twice.
			if err := f.d.Model(&models.BatchLine{}).Where("batch_id = ? AND line_index = 0", b.ID).
				Updates(map[string]any{"status": "recorded", "output": nil}).Error; err != nil {
				t.Fatal(err)
			}
			if err := f.d.Model(&models.Batch{}).Where("id = ?", b.ID).Update("completed", 1).Error; err != nil {
				t.Fatal(err)
			}
			mid := f.balance()
			if _, err := f.svc.RunPage(ctx, b.ID, 0, 10, nil); err != nil {
				t.Fatal(err)
			}
			if f.balance() != mid || f.up.count("one") != 0 {
				t.Fatalf("charged again: balance %d → %d, upstream calls %d", mid, f.balance(), f.up.count("one"))
			}
			if st, err := f.svc.Finalize(ctx, b.ID); err != nil || st.Status != batches.StatusCompleted {
				t.Fatalf("finalize %v %v", st, err)
			}
			b = f.batch(b.ID)
			out := f.lines(b.OutputFileID)
			if b.Completed != 2 || len(out) != 2 || costOf(t, out[0].Response.Body) != lineCost {
				t.Fatalf("completed %d, output %+v", b.Completed, out)
			}
			var resp chat.Response
			if err := json.Unmarshal(out[0].Response.Body, &resp); err != nil || resp.Choices[0].Message.Content.Text() != "kept answer" {
				t.Fatalf("line a answered %s (%v)", out[0].Response.Body, err)
			}
			var n int64
			if err := f.d.Model(&models.UsageLog{}).Where("id LIKE ?", "chatcmpl-"+strings.TrimPrefix(b.ID, "batch_")+"-%").
				Count(&n).Error; err != nil || n != 2 {
				t.Fatalf("%d usage logs for the batch (%v)", n, err)
			}
		})
	}
}

// Embeddings and Responses lines: charged like direct requests, in their
// endpoint's shapes.
func TestBatchEmbeddingsAndResponses(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newFixture(t, dialect)
			emb := f.create(batches.EndpointEmbeddings,
				`{"custom_id":"e1","method":"POST","url":"/v1/embeddings","body":{"model":"openai/text-embedding-3-small","input":"hi"}}`)
			if st := f.run(emb.ID, 10); st != batches.StatusCompleted {
				t.Fatalf("embeddings batch %s", st)
			}
			out := f.lines(f.batch(emb.ID).OutputFileID)
			if len(out) != 1 || !strings.Contains(string(out[0].Response.Body), `"object":"list"`) || costOf(t, out[0].Response.Body) <= 0 {
				t.Fatalf("embeddings output %+v", out)
			}
			resp := f.create(batches.EndpointResponses,
				`{"custom_id":"r1","method":"POST","url":"/v1/responses","body":{"model":"openai/gpt-4o-mini","input":"hey","store":true}}`)
			if st := f.run(resp.ID, 10); st != batches.StatusCompleted {
				t.Fatalf("responses batch %s", st)
			}
			out = f.lines(f.batch(resp.ID).OutputFileID)
			var r struct {
				ID     string `json:"id"`
				Object string `json:"object"`
			}
			if len(out) != 1 || json.Unmarshal(out[0].Response.Body, &r) != nil || r.Object != "response" || !strings.HasPrefix(r.ID, "resp_") {
				t.Fatalf("responses output %+v", out)
			}
		})
	}
}

// Validation: a duplicate custom_id is refused (400); an unusable line
// fails the batch with OpenAI's errors; another account's file is 404.
func TestBatchValidation(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newFixture(t, dialect)
			ctx := context.Background()
			_, err := f.svc.Create(ctx, f.p, batches.CreateInput{InputFileID: f.upload(chatLine("x", chatModel, "a"), chatLine("x", chatModel, "b")),
				Endpoint: batches.EndpointChat, CompletionWindow: "24h"})
			if e, ok := apierr.As(err); !ok || e.Status != 400 || e.Code != "duplicate_custom_id" {
				t.Fatalf("duplicate custom_id: %v", err)
			}
			b := f.create(batches.EndpointChat, chatLine("ok", chatModel, "a"), `{not json`,
				`{"custom_id":"u","method":"POST","url":"/v1/embeddings","body":{}}`)
			if b.Status != batches.StatusFailed || b.FailedAt == nil || b.Errors == nil {
				t.Fatalf("bad input: %+v", b)
			}
			o := batches.ObjectOf(b)
			var errs struct {
				Object string `json:"object"`
				Data   []struct {
					Code string `json:"code"`
					Line int    `json:"line"`
				} `json:"data"`
			}
			if err := json.Unmarshal(o.Errors, &errs); err != nil || errs.Object != "list" || len(errs.Data) != 2 ||
				errs.Data[0].Code != "invalid_json_line" || errs.Data[0].Line != 2 || errs.Data[1].Code != "url_mismatch" {
				t.Fatalf("errors %s (%v)", o.Errors, err)
			}
			other := &auth.Principal{Account: models.Account{ID: "acct_other"}}
			if _, err := f.svc.Create(ctx, other, batches.CreateInput{InputFileID: f.upload(chatLine("a", chatModel, "a")),
				Endpoint: batches.EndpointChat, CompletionWindow: "24h"}); err == nil {
				t.Fatal("another account's file was taken")
			} else if e, ok := apierr.As(err); !ok || e.Status != 404 {
				t.Fatalf("another account's file: %v", err)
			}
			if _, err := f.svc.Get(ctx, "acct_other", b.ID); err == nil {
				t.Fatal("another account's batch was found")
			}
		})
	}
}

// Cancel midway: no line starts after it, the finished ones are in the
// output file, the batch ends cancelled. The 24h window: lines not run by
// then are expired, in the error file with batch_expired, and free.
func TestBatchCancelAndExpiry(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newFixture(t, dialect)
			ctx := context.Background()
			var in []string
			for i := range 6 {
				in = append(in, chatLine(fmt.Sprintf("c%d", i), chatModel, fmt.Sprintf("c%d", i)))
			}
			b := f.create(batches.EndpointChat, in...)
			if _, err := f.svc.Start(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.RunPage(ctx, b.ID, 0, 2, nil); err != nil {
				t.Fatal(err)
			}
			if c, err := f.svc.Cancel(ctx, f.p.Account.ID, b.ID); err != nil || c.Status != batches.StatusCancelling || c.CancellingAt == nil {
				t.Fatalf("cancel: %+v %v", c, err)
			}
			p, err := f.svc.RunPage(ctx, b.ID, 2, 2, nil)
			if err != nil || !p.Stopped {
				t.Fatalf("page after cancel %+v %v", p, err)
			}
			if st, err := f.svc.Finalize(ctx, b.ID); err != nil || st.Status != batches.StatusCancelled {
				t.Fatalf("finalize %+v %v", st, err)
			}
			b = f.batch(b.ID)
			if out := f.lines(b.OutputFileID); len(out) != 2 || b.Completed != 2 || b.CancelledAt == nil || f.up.count("c2") != 0 {
				t.Fatalf("cancelled batch: %d output lines, completed %d, c2 sent %d", len(out), b.Completed, f.up.count("c2"))
			}
			if _, err := f.svc.Cancel(ctx, f.p.Account.ID, b.ID); err != nil {
				t.Fatalf("cancel again: %v", err)
			}

			e := f.create(batches.EndpointChat, in...)
			if _, err := f.svc.Start(ctx, e.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.RunPage(ctx, e.ID, 0, 1, nil); err != nil {
				t.Fatal(err)
			}
			before := f.balance()
			f.now = f.now.Add(25 * time.Hour)
			if p, err := f.svc.RunPage(ctx, e.ID, 1, 10, nil); err != nil || !p.Stopped {
				t.Fatalf("page past the window %+v %v", p, err)
			}
			if st, err := f.svc.Finalize(ctx, e.ID); err != nil || st.Status != batches.StatusExpired {
				t.Fatalf("finalize %+v %v", st, err)
			}
			e = f.batch(e.ID)
			errs := f.lines(e.ErrorFileID)
			if len(errs) != 5 || errs[0].Error == nil || errs[0].Error.Code != "batch_expired" || errs[0].Response != nil ||
				e.ExpiredAt == nil || e.Completed != 1 || e.Failed != 5 || f.balance() != before {
				t.Fatalf("expired batch %+v, errors %+v", e, errs)
			}
		})
	}
}

// A deleted key fails the lines left, free.
func TestBatchOfADeletedKeyFails(t *testing.T) {
	f := newFixture(t, db.SQLite)
	b := f.create(batches.EndpointChat, chatLine("a", chatModel, "a"))
	now := time.Now().UTC()
	if err := f.d.Model(&models.APIKey{}).Where("id = ?", f.p.Key.ID).Update("deleted_at", now).Error; err != nil {
		t.Fatal(err)
	}
	before := f.balance()
	if st := f.run(b.ID, 10); st != batches.StatusCompleted {
		t.Fatal(st)
	}
	errs := f.lines(f.batch(b.ID).ErrorFileID)
	if len(errs) != 1 || errs[0].Response.StatusCode != 401 || f.balance() != before || f.up.count("a") != 0 {
		t.Fatalf("errors %+v", errs)
	}
}
