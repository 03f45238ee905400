package gateway_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/internal/ratelimit"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

// The gateway is tested without HTTP: a real billing engine and catalog on
// SQLite, and an in-memory provider whose answers each test sets.

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const model = "openai/gpt-4o-mini"

type fixture struct {
	t       *testing.T
	d       *db.DB
	gw      *gateway.Gateway
	cat     *catalog.Catalog
	up      *fakeProvider
	account models.Account
}

func newFixture(t *testing.T, opts gateway.Options) *fixture {
	t.Helper()
	return newFixtureOn(t, db.SQLite, opts, nil)
}

// newFixtureOn is newFixture on a database of dialect; provs, when set, are
// the gateway's providers instead of the in-memory one.
func newFixtureOn(t *testing.T, dialect string, opts gateway.Options, provs map[string]providers.Provider) *fixture {
	t.Helper()
	ctx := context.Background()
	d := testenv.Open(t, dialect)
	cat := catalog.New(d, bus.NewLocal(), quiet)
	if err := cat.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.ReviveRetired(t, d)
	if err := cat.EnsurePrices(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cat.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	eng := billing.NewEngine(d, quiet, billing.EngineOptions{})
	t.Cleanup(eng.Close)
	lim, err := ratelimit.New(ratelimit.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	up := &fakeProvider{}
	if provs == nil {
		provs = map[string]providers.Provider{"openai": up}
	}
	gw := gateway.New(gateway.Deps{Billing: eng, Catalog: cat, Providers: providers.Static(provs), Limiter: lim, Log: quiet}, opts)
	// Before the engine closes (cleanups run last first): requests whose
	// client left are settled.
	t.Cleanup(func() { gw.Close(context.Background()) })
	now := time.Now().UTC()
	a := models.Account{ID: ids.New("acct"), Email: ids.New("u") + "@example.com", PasswordHash: "x", Role: "user",
		Plan: "free", Active: true, EmailVerified: true, CreatedAt: now, UpdatedAt: now}
	a.EmailLower = a.Email
	if err := d.Create(&a).Error; err != nil {
		t.Fatal(err)
	}
	if _, _, err := (&billing.Ledger{DB: d}).Post(ctx, billing.Entry{AccountID: a.ID, Type: models.EntryTopUp,
		AmountMicros: 1_000_000, Reference: ids.New("ref")}); err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, d: d, gw: gw, cat: cat, up: up, account: a}
}

func (f *fixture) call(text string) gateway.Call {
	f.t.Helper()
	req, err := chat.ParseRequest([]byte(`{"model":"` + model + `","messages":[{"role":"user","content":"` + text + `"}]}`))
	if err != nil {
		f.t.Fatal(err)
	}
	return gateway.Call{Principal: &auth.Principal{Account: f.account}, Request: req, Model: model, ClientIP: "127.0.0.1", RequestID: "req-1"}
}

func (f *fixture) balance() int64 {
	f.t.Helper()
	var a models.Account
	if err := f.d.Where("id = ?", f.account.ID).Take(&a).Error; err != nil {
		f.t.Fatal(err)
	}
	return a.BalanceMicros
}

func (f *fixture) cost(in, out int) int64 { return f.costOf(model, in, out) }

func (f *fixture) costOf(model string, in, out int) int64 {
	e, err := f.cat.Resolve(model)
	if err != nil {
		f.t.Fatal(err)
	}
	return pricing.Cost(e.Price.Input, e.Price.Output, e.Price.Fee, int64(in), int64(out))
}

func (f *fixture) lastLog() models.UsageLog {
	f.t.Helper()
	var l models.UsageLog
	if err := f.d.Where("account_id = ?", f.account.ID).Order("created_at DESC").First(&l).Error; err != nil {
		f.t.Fatal(err)
	}
	return l
}

// ---- the fake provider ----

type fakeProvider struct {
	complete func(ctx context.Context, req *chat.Request) (*chat.Response, error)
	stream   *fakeStream
	err      error // Stream fails before its first byte
	sent     *chat.Request
}

func (p *fakeProvider) Complete(ctx context.Context, req *chat.Request) (*chat.Response, error) {
	p.sent = req
	return p.complete(ctx, req)
}

func (p *fakeProvider) Stream(_ context.Context, req *chat.Request) (providers.Stream, error) {
	p.sent = req
	if p.err != nil {
		return nil, p.err
	}
	return p.stream, nil
}

// fakeStream sends words, then ends with end (io.EOF or a failure), with
// usage as the upstream reported it so far.
type fakeStream struct {
	words  []string
	final  *chat.Usage // the usage chunk at a normal end
	soFar  *chat.Usage // what Usage() reports when the stream did not end normally
	end    error
	i      int
	closed bool
	ended  bool // the final usage chunk was read
}

func (s *fakeStream) Recv() (*chat.Chunk, error) {
	if s.i < len(s.words) {
		w := s.words[s.i]
		s.i++
		return &chat.Chunk{Choices: []chat.ChunkChoice{{Delta: chat.Delta{Content: &w}}}}, nil
	}
	if s.i == len(s.words) && s.end == io.EOF && s.final != nil {
		s.i++
		s.ended = true
		return &chat.Chunk{Usage: s.final}, nil
	}
	return nil, s.end
}

func (s *fakeStream) Usage() *chat.Usage {
	if s.ended {
		return s.final
	}
	return s.soFar
}

func (s *fakeStream) Close() error { s.closed = true; return nil }

// recorder is a Sink that keeps what it was sent; it can play a client that
// leaves after goneAfter chunks.
type recorder struct {
	opened    string
	chunks    []*chat.Chunk
	errors    []*chat.ErrorEvent
	errorAt   []int // len(chunks) when each error event came
	done      bool
	goneAfter int // 0 = stays
}

func (r *recorder) Open(id string) { r.opened = id }
func (r *recorder) Send(c *chat.Chunk) bool {
	if r.goneAfter > 0 && len(r.chunks) >= r.goneAfter {
		return false
	}
	r.chunks = append(r.chunks, c)
	return true
}
func (r *recorder) SendError(e *chat.ErrorEvent) bool {
	if r.goneAfter > 0 && len(r.chunks) >= r.goneAfter {
		return false
	}
	r.errors = append(r.errors, e)
	r.errorAt = append(r.errorAt, len(r.chunks))
	return true
}
func (r *recorder) Done() { r.done = true }

func text(s string) chat.Content {
	var c chat.Content
	_ = c.UnmarshalJSON([]byte(`"` + s + `"`))
	return c
}

// ---- tests ----

func TestCompleteChargesTheReportedUsage(t *testing.T) {
	f := newFixture(t, gateway.Options{})
	f.up.complete = func(context.Context, *chat.Request) (*chat.Response, error) {
		return &chat.Response{Choices: []chat.Choice{{Message: chat.Message{Role: "assistant", Content: text("hi there")}, FinishReason: "stop"}},
			Usage: &chat.Usage{PromptTokens: 12, CompletionTokens: 30}}, nil
	}
	before := f.balance()
	done, err := f.gw.Complete(context.Background(), f.call("hello"))
	if err != nil {
		t.Fatal(err)
	}
	want := f.cost(12, 30)
	u := done.Response.Usage
	if done.Settlement.ChargedMicros != want || *u.CostMicros != want || u.TotalTokens != 42 || before-f.balance() != want {
		t.Fatalf("charged %d (usage %d, balance drop %d), want %d", done.Settlement.ChargedMicros, *u.CostMicros, before-f.balance(), want)
	}
	if done.Response.Model != model || done.Response.ID == "" || f.up.sent.Model != "gpt-4o-mini" {
		t.Fatalf("response model %q id %q, sent model %q", done.Response.Model, done.Response.ID, f.up.sent.Model)
	}
	if l := f.lastLog(); l.ID != done.Response.ID || l.ChargedMicros != want || l.UsageEstimated {
		t.Fatalf("usage log %+v", l)
	}
}

// An answer without usage from a provider that cannot count tokens: the
// prompt at the bound admission held, the text by the estimator.
func TestCompleteWithoutUsageIsEstimated(t *testing.T) {
	f := newFixture(t, gateway.Options{})
	f.up.complete = func(context.Context, *chat.Request) (*chat.Response, error) {
		return &chat.Response{Choices: []chat.Choice{{Message: chat.Message{Role: "assistant", Content: text("abcdefgh")}}}}, nil
	}
	done, err := f.gw.Complete(context.Background(), f.call("hello"))
	if err != nil {
		t.Fatal(err)
	}
	// "hello" → 5 bytes + 8 per message + 8; "abcdefgh" → 2.
	if u := done.Response.Usage; u.PromptTokens != 21 || u.CompletionTokens != 2 || !f.lastLog().UsageEstimated {
		t.Fatalf("usage %+v", u)
	}
}

func TestUpstreamFailureBeforeOutputIsFree(t *testing.T) {
	f := newFixture(t, gateway.Options{})
	f.up.complete = func(context.Context, *chat.Request) (*chat.Response, error) {
		return nil, &providers.Error{Status: http.StatusTooManyRequests, Message: "slow down", RetryAfter: 3 * time.Second}
	}
	before := f.balance()
	_, err := f.gw.Complete(context.Background(), f.call("hello"))
	if ae, ok := apierr.As(err); !ok || ae.Status != 429 || ae.Code != "upstream_rate_limited" || ae.RetryAfter != 3*time.Second {
		t.Fatalf("err = %v", err)
	}
	f.up.err = &providers.Error{Status: 500, Message: "boom"}
	f.up.stream = &fakeStream{}
	rec := &recorder{}
	if err := f.gw.Stream(context.Background(), f.call("hello"), rec); err == nil || rec.opened != "" {
		t.Fatalf("stream failure before output: err %v, opened %q", err, rec.opened)
	}
	if f.balance() != before {
		t.Fatalf("failures cost %d", before-f.balance())
	}
}

func TestStreamDeliversThenChargesInTheLastChunk(t *testing.T) {
	f := newFixture(t, gateway.Options{})
	f.up.stream = &fakeStream{words: []string{"a", " b", " c"}, final: &chat.Usage{PromptTokens: 7, CompletionTokens: 3}, end: io.EOF}
	rec := &recorder{}
	before := f.balance()
	if err := f.gw.Stream(context.Background(), f.call("hello"), rec); err != nil {
		t.Fatal(err)
	}
	if rec.opened == "" || len(rec.chunks) != 4 || !rec.done || !f.up.stream.closed {
		t.Fatalf("opened %q, %d chunks, done %v, closed %v", rec.opened, len(rec.chunks), rec.done, f.up.stream.closed)
	}
	last := rec.chunks[3]
	if len(last.Choices) != 0 || last.Usage == nil || *last.Usage.CostMicros != f.cost(7, 3) || before-f.balance() != f.cost(7, 3) {
		t.Fatalf("usage chunk %+v, charged %d", last.Usage, before-f.balance())
	}
	for _, c := range rec.chunks {
		if c.ID != rec.opened || c.Model != model {
			t.Fatalf("chunk id %q model %q", c.ID, c.Model)
		}
	}
}

// A stream cut midway bills the prompt count the upstream sent early, and
// at least the delivered text's estimate.
func TestCutStreamBillsUpstreamPromptAndDeliveredText(t *testing.T) {
	f := newFixture(t, gateway.Options{})
	f.up.stream = &fakeStream{words: []string{"abcd", "efgh", "ijkl"}, soFar: &chat.Usage{PromptTokens: 5, CompletionTokens: 1},
		end: &providers.Error{Message: "upstream stream ended before completion"}}
	rec := &recorder{}
	before := f.balance()
	if err := f.gw.Stream(context.Background(), f.call("hello"), rec); err != nil {
		t.Fatal(err)
	}
	n := len(rec.chunks)
	if n != 5 || rec.chunks[3].Error == nil || *rec.chunks[3].Choices[0].FinishReason != chat.FinishLength || !rec.done {
		t.Fatalf("chunks %d, error chunk %+v, done %v", n, rec.chunks[min(3, n-1)], rec.done)
	}
	// OpenAI's error event comes just before the final chunk, with the same error.
	if len(rec.errors) != 1 || rec.errorAt[0] != 3 || rec.errors[0].Error != *rec.chunks[3].Error ||
		rec.errors[0].Error.Code != "upstream_error" || rec.errors[0].Error.Param != nil {
		t.Fatalf("error events %+v at %v, final chunk error %+v", rec.errors, rec.errorAt, rec.chunks[3].Error)
	}
	u := rec.chunks[4].Usage
	if u.PromptTokens != 5 || u.CompletionTokens != 3 || before-f.balance() != f.cost(5, 3) {
		t.Fatalf("usage %+v, charged %d, want 5 + 3 tokens", u, before-f.balance())
	}
	if l := f.lastLog(); l.Error == nil || l.UsageEstimated || !l.Streamed {
		t.Fatalf("usage log %+v", l)
	}
}

// A client that leaves mid-stream stops the relay at once, is charged for
// what the upstream sent (the chunk it failed to take included), and gets
// no usage chunk.
func TestClientThatLeavesMidStreamPaysWhatWasReceived(t *testing.T) {
	f := newFixture(t, gateway.Options{})
	f.up.stream = &fakeStream{words: []string{"abcd", "efgh", "ijkl", "mnop"}, final: &chat.Usage{PromptTokens: 5, CompletionTokens: 4}, end: io.EOF}
	rec := &recorder{goneAfter: 2}
	before := f.balance()
	if err := f.gw.Stream(context.Background(), f.call("hello"), rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.chunks) != 2 || rec.done || !f.up.stream.closed {
		t.Fatalf("%d chunks, done %v, closed %v", len(rec.chunks), rec.done, f.up.stream.closed)
	}
	// Received "abcd", "efgh" and "ijkl" (the third was refused by the
	// client): 3 tokens by the estimator; no upstream count arrived, and
	// this provider cannot count: the prompt at its bound (5 + 8 + 8).
	if l := f.lastLog(); !l.Cancelled || l.CompletionTokens != 3 || !l.UsageEstimated || before-f.balance() != f.cost(21, 3) {
		t.Fatalf("usage log %+v, charged %d", l, before-f.balance())
	}
}

func TestKeyPolicyAndVerifiedEmail(t *testing.T) {
	f := newFixture(t, gateway.Options{RequireVerifiedEmail: true})
	call := f.call("hello")
	call.Principal.Key = &models.APIKey{ID: "key_1", AllowedModels: ptr(`["anthropic/claude-3-5-haiku-20241022"]`)}
	if _, err := f.gw.Complete(context.Background(), call); !isCode(err, "forbidden") {
		t.Fatalf("model outside allowed_models: %v", err)
	}
	call.Principal.Account.EmailVerified = false
	if _, err := f.gw.Check(context.Background(), call.Principal); !isCode(err, "email_not_verified") {
		t.Fatalf("unverified: %v", err)
	}
}

func TestCheckCountsTheRateLimit(t *testing.T) {
	f := newFixture(t, gateway.Options{})
	p := &auth.Principal{Account: f.account, Key: &models.APIKey{ID: ids.New("key"), RPMLimit: ptr(int64(2))}}
	for i := 0; i < 2; i++ {
		rl, err := f.gw.Check(context.Background(), p)
		if err != nil || !rl.Applied || rl.Limit != 2 || rl.Remaining != int64(1-i) {
			t.Fatalf("request %d: %+v %v", i, rl, err)
		}
	}
	rl, err := f.gw.Check(context.Background(), p)
	if ae, ok := apierr.As(err); !ok || ae.Code != "rate_limit_exceeded" || ae.RetryAfter <= 0 || !rl.Applied {
		t.Fatalf("third: %+v %v", rl, err)
	}
	// The window opened a moment ago: Retry-After is the whole seconds until
	// it reopens, at most the minute (never the 61 s that rounding the
	// window's end up to a whole second used to give), and the same value
	// the OpenAI-style reset header shows.
	ae, _ := apierr.As(err)
	if ae.RetryAfter > time.Minute || ae.RetryAfter < 59*time.Second || ae.RetryAfter%time.Second != 0 || rl.ResetIn != ae.RetryAfter {
		t.Fatalf("Retry-After %v, ResetIn %v: want the same whole seconds in [59s, 60s]", ae.RetryAfter, rl.ResetIn)
	}
}

func TestInsufficientBalanceNeverCallsTheUpstream(t *testing.T) {
	f := newFixture(t, gateway.Options{})
	if err := f.d.Exec("UPDATE accounts SET balance_micros = 0 WHERE id = ?", f.account.ID).Error; err != nil {
		t.Fatal(err)
	}
	f.up.complete = func(context.Context, *chat.Request) (*chat.Response, error) { panic("upstream called") }
	if _, err := f.gw.Complete(context.Background(), f.call("hello")); !isCode(err, "insufficient_balance") {
		t.Fatalf("err = %v", err)
	}
}

func isCode(err error, code string) bool {
	ae, ok := apierr.As(err)
	return ok && ae.Code == code
}

func ptr[T any](v T) *T { return &v }
