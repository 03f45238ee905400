package gateway_test

import (
	"context"
	"encoding/json"
	"io"
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
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

// Fallback chains through in-memory providers: which model answers, what
// is held and charged, and which failures move on to the next model.

const (
	haiku = "anthropic/claude-3-5-haiku-20241022"
	opus  = "anthropic/claude-3-opus-20240229"
	flash = "google/gemini-1.5-flash"
)

// routeFixture is a gateway with an in-memory provider per name.
type routeFixture struct {
	*fixture
	ups      map[string]*fakeProvider
	attempts gateway.Attempts
}

func newRouteFixture(t *testing.T, balance int64, opts gateway.Options, names ...string) *routeFixture {
	t.Helper()
	ctx := context.Background()
	d := testenv.Open(t, db.SQLite)
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
	ups := map[string]*fakeProvider{}
	provs := map[string]providers.Provider{}
	for _, n := range names {
		ups[n] = &fakeProvider{complete: func(context.Context, *chat.Request) (*chat.Response, error) {
			t.Errorf("provider %s called", n)
			return nil, &providers.Error{Status: 500}
		}}
		provs[n] = ups[n]
	}
	gw := gateway.New(gateway.Deps{Billing: eng, Catalog: cat, Providers: providers.Static(provs), Log: quiet}, opts)
	now := time.Now().UTC()
	a := models.Account{ID: ids.New("acct"), Email: ids.New("u") + "@example.com", PasswordHash: "x", Role: "user",
		Plan: "free", Active: true, EmailVerified: true, CreatedAt: now, UpdatedAt: now}
	a.EmailLower = a.Email
	if err := d.Create(&a).Error; err != nil {
		t.Fatal(err)
	}
	if _, _, err := (&billing.Ledger{DB: d}).Post(ctx, billing.Entry{AccountID: a.ID, Type: models.EntryTopUp,
		AmountMicros: balance, Reference: ids.New("ref")}); err != nil {
		t.Fatal(err)
	}
	return &routeFixture{fixture: &fixture{t: t, d: d, gw: gw, cat: cat, account: a}, ups: ups}
}

// request builds a call from a JSON body (model "" = as the body says).
func (f *routeFixture) request(body string) gateway.Call {
	f.t.Helper()
	req, err := chat.ParseRequest([]byte(body))
	if err != nil {
		f.t.Fatal(err)
	}
	return gateway.Call{Principal: &auth.Principal{Account: f.account}, Request: req, Model: req.Model,
		ClientIP: "127.0.0.1", RequestID: ids.New("req"), OnAttempts: func(a gateway.Attempts) { f.attempts = a }}
}

func body(model string, models ...string) string {
	b := map[string]any{"messages": []any{map[string]any{"role": "user", "content": "hello"}}}
	if model != "" {
		b["model"] = model
	}
	if models != nil {
		b["models"] = models
	}
	out, _ := json.Marshal(b)
	return string(out)
}

func (f *routeFixture) costOf(id string, in, out int64) int64 {
	f.t.Helper()
	e, err := f.cat.Resolve(id)
	if err != nil {
		f.t.Fatal(err)
	}
	return pricing.Cost(e.Price.Input, e.Price.Output, e.Price.Fee, in, out)
}

func answer(in, out int) func(context.Context, *chat.Request) (*chat.Response, error) {
	return func(context.Context, *chat.Request) (*chat.Response, error) {
		return &chat.Response{Choices: []chat.Choice{{Message: chat.Message{Role: "assistant", Content: text("hi")}, FinishReason: "stop"}},
			Usage: &chat.Usage{PromptTokens: in, CompletionTokens: out}}, nil
	}
}

func failWith(e error) func(context.Context, *chat.Request) (*chat.Response, error) {
	return func(context.Context, *chat.Request) (*chat.Response, error) { return nil, e }
}

func (f *routeFixture) usageLogs() []models.UsageLog {
	var logs []models.UsageLog
	if err := f.d.Where("account_id = ?", f.account.ID).Find(&logs).Error; err != nil {
		f.t.Fatal(err)
	}
	return logs
}

// The primary fails before any output; the request's next model answers.
// The response names that model, the charge is its price, once, and the
// attempts are reported in order.
func TestFallbackModelAnswersAndIsCharged(t *testing.T) {
	f := newRouteFixture(t, 1_000_000, gateway.Options{}, "openai", "anthropic")
	f.ups["openai"].complete = failWith(&providers.Error{Status: 503, Message: "overloaded"})
	f.ups["anthropic"].complete = answer(10, 5)
	before := f.balance()
	done, err := f.gw.Complete(context.Background(), f.request(body(model, haiku)))
	if err != nil {
		t.Fatal(err)
	}
	want := f.costOf(haiku, 10, 5)
	if done.Response.Model != haiku || done.Settlement.ChargedMicros != want || before-f.balance() != want {
		t.Fatalf("model %s charged %d (balance drop %d), want %s at %d", done.Response.Model, done.Settlement.ChargedMicros,
			before-f.balance(), haiku, want)
	}
	if f.ups["anthropic"].sent.Model != "claude-3-5-haiku-20241022" || f.ups["openai"].sent.Model != "gpt-4o-mini" {
		t.Errorf("sent %q then %q", f.ups["openai"].sent.Model, f.ups["anthropic"].sent.Model)
	}
	if got := f.attempts.String(); got != "openai/gpt-4o-mini:503, "+haiku+":200" {
		t.Errorf("attempts %q", got)
	}
	logs := f.usageLogs()
	if len(logs) != 1 || logs[0].Model != haiku || logs[0].Provider != "anthropic" || logs[0].ChargedMicros != want ||
		logs[0].ID != done.Response.ID {
		t.Fatalf("usage logs %+v", logs)
	}

	// model may be left out: the first of models is the primary.
	f.attempts = nil
	f.ups["openai"].complete = answer(3, 3)
	done, err = f.gw.Complete(context.Background(), f.request(body("", model, haiku)))
	if err != nil || done.Response.Model != model || f.attempts != nil {
		t.Fatalf("models only: %v, model %s, attempts %v", err, done.Response.Model, f.attempts)
	}
}

// The hold covers the chain's most expensive model: a balance that cannot
// pay an expensive fallback's full output lowers max_tokens even when the
// cheap primary answers, which is then charged at its own price.
func TestChainIsHeldAtItsMostExpensivePrice(t *testing.T) {
	f := newRouteFixture(t, 1_000_000, gateway.Options{}, "openai", "anthropic")
	f.ups["openai"].complete = answer(10, 20)
	if _, err := f.gw.Complete(context.Background(), f.request(body(model))); err != nil {
		t.Fatal(err)
	}
	if f.ups["openai"].sent.MaxTokens != nil {
		t.Fatalf("alone, gpt-4o-mini's hold fits $1: max_tokens %d sent", *f.ups["openai"].sent.MaxTokens)
	}
	done, err := f.gw.Complete(context.Background(), f.request(body(model, opus)))
	if err != nil {
		t.Fatal(err)
	}
	mt := f.ups["openai"].sent.MaxTokens
	opusE, _ := f.cat.Resolve(opus)
	// $1 affords about 1e6 / (opus's marked-up output per token) tokens.
	if mt == nil || int64(*mt) >= 16384 || int64(*mt) > 1_000_000*1_000_000/opusE.Price.Output {
		t.Fatalf("max_tokens sent %v: not clamped to what opus's price affords", mt)
	}
	if want := f.costOf(model, 10, 20); done.Settlement.ChargedMicros != want || done.Response.Model != model {
		t.Fatalf("charged %d, want gpt-4o-mini's %d", done.Settlement.ChargedMicros, want)
	}
	// The fallback gets the cap within its own output limit (4096).
	f.ups["openai"].complete = failWith(&providers.Error{Status: 502})
	f.ups["anthropic"].complete = answer(10, 20)
	done, err = f.gw.Complete(context.Background(), f.request(body(model, opus)))
	if err != nil {
		t.Fatal(err)
	}
	// Charged opus's price, not the chain's upper bound (whose cached-input
	// price is the top input price, above opus's own cached price).
	if want := f.costOf(opus, 10, 20); done.Settlement.ChargedMicros != want || done.Response.Model != opus {
		t.Fatalf("charged %d for %s, want opus's %d", done.Settlement.ChargedMicros, done.Response.Model, want)
	}
	if mt := f.ups["anthropic"].sent.MaxTokens; mt == nil || *mt > 4096 {
		t.Fatalf("opus got max_tokens %v, above its 4096", mt)
	}
}

// Only the provider's failures move on: the request's own faults (400, a
// request the format cannot carry) are answered at once.
func TestFallbackOnlyOnProviderFailures(t *testing.T) {
	for _, tt := range []struct {
		err      error
		fallback bool
	}{
		{&providers.Error{Message: "connection refused"}, true},
		{&providers.Error{Timeout: true, Message: "no headers"}, true},
		{&providers.Error{Status: 429, RetryAfter: time.Second}, true},
		{&providers.Error{Status: 500}, true},
		{&providers.Error{Status: 529}, true},
		{&providers.Error{Status: 401}, true},
		{&providers.Error{CircuitOpen: true, RetryAfter: time.Second}, true},
		{&providers.Error{Status: 400, Message: "bad"}, false},
		{&providers.Error{Status: 404}, false},
		{&chat.InvalidError{Message: "bad image", Param: "messages"}, false},
		{&providers.Error{Message: "cancelled", Err: context.Canceled}, false},
	} {
		f := newRouteFixture(t, 1_000_000, gateway.Options{}, "openai", "anthropic")
		f.ups["openai"].complete = failWith(tt.err)
		called := false
		f.ups["anthropic"].complete = func(ctx context.Context, r *chat.Request) (*chat.Response, error) {
			called = true
			return answer(1, 1)(ctx, r)
		}
		_, err := f.gw.Complete(context.Background(), f.request(body(model, haiku)))
		if called != tt.fallback || (err == nil) != tt.fallback {
			t.Errorf("%v: fell back %v (err %v), want %v", tt.err, called, err, tt.fallback)
		}
	}
}

// When every model fails, the answer is the last one's error in the
// contract's mapping, the attempts say what each did, and nothing is
// charged.
func TestEveryModelFails(t *testing.T) {
	f := newRouteFixture(t, 1_000_000, gateway.Options{}, "openai", "anthropic")
	f.ups["openai"].complete = failWith(&providers.Error{Status: 429, RetryAfter: 3 * time.Second})
	f.ups["anthropic"].complete = failWith(&providers.Error{Status: 502, Message: "bad gateway"})
	before := f.balance()
	_, err := f.gw.Complete(context.Background(), f.request(body(model, haiku)))
	ae, ok := apierr.As(err)
	if !ok || ae.Status != 502 || ae.Code != "upstream_error" || ae.RetryAfter != 0 {
		t.Fatalf("err = %v", err)
	}
	if got := f.attempts.String(); got != "openai/gpt-4o-mini:429, "+haiku+":502" {
		t.Errorf("attempts %q", got)
	}
	if f.balance() != before {
		t.Fatalf("failed chain charged %d", before-f.balance())
	}
	if logs := f.usageLogs(); len(logs) != 1 || logs[0].ChargedMicros != 0 || logs[0].Model != haiku {
		t.Fatalf("usage logs %+v", logs)
	}
}

// A stream falls back while nothing was sent: the sink opens once, on the
// model that answered, whose price is charged.
func TestStreamFallsBackBeforeItOpens(t *testing.T) {
	f := newRouteFixture(t, 1_000_000, gateway.Options{}, "openai", "anthropic")
	f.ups["openai"].err = &providers.Error{Message: "connection refused"}
	f.ups["anthropic"].stream = &fakeStream{words: []string{"a", "b"}, final: &chat.Usage{PromptTokens: 7, CompletionTokens: 2}, end: io.EOF}
	rec := &recorder{}
	before := f.balance()
	if err := f.gw.Stream(context.Background(), f.request(body(model, haiku)), rec); err != nil {
		t.Fatal(err)
	}
	want := f.costOf(haiku, 7, 2)
	last := rec.chunks[len(rec.chunks)-1]
	if rec.opened == "" || !rec.done || last.Usage == nil || *last.Usage.CostMicros != want || before-f.balance() != want {
		t.Fatalf("opened %q done %v last %+v, charged %d want %d", rec.opened, rec.done, last, before-f.balance(), want)
	}
	for _, c := range rec.chunks {
		if c.Model != haiku {
			t.Fatalf("chunk model %q, want %s", c.Model, haiku)
		}
	}
	if got := f.attempts.String(); got != "openai/gpt-4o-mini:error, "+haiku+":200" {
		t.Errorf("attempts %q", got)
	}
}

// A stream that fails after it opened is never retried or passed on: it is
// charged for what was delivered, at the price of the model that sent it.
func TestMidStreamFailureDoesNotFallBack(t *testing.T) {
	f := newRouteFixture(t, 1_000_000, gateway.Options{}, "openai", "anthropic")
	f.ups["openai"].stream = &fakeStream{words: []string{"one", "two", "three"}, soFar: &chat.Usage{PromptTokens: 5},
		end: &providers.Error{Message: "upstream connection lost"}}
	f.ups["anthropic"].err = &providers.Error{Status: 500}
	rec := &recorder{}
	before := f.balance()
	if err := f.gw.Stream(context.Background(), f.request(body(model, haiku)), rec); err != nil {
		t.Fatal(err)
	}
	if f.ups["anthropic"].sent != nil {
		t.Fatal("a stream that opened was passed on to the next model")
	}
	last := rec.chunks[len(rec.chunks)-1]
	want := f.costOf(model, 5, 3)
	if len(rec.errors) != 1 || last.Usage == nil || *last.Usage.CostMicros != want || before-f.balance() != want {
		t.Fatalf("errors %d, last %+v, charged %d want %d", len(rec.errors), last, before-f.balance(), want)
	}
	if f.attempts != nil {
		t.Errorf("one clean attempt reported: %v", f.attempts)
	}
}

// A configured chain applies when the request names no models; unknown
// models and providers this gateway lacks are left out of it. A request's
// own models replace it.
func TestConfiguredFallbacks(t *testing.T) {
	f := newRouteFixture(t, 1_000_000, gateway.Options{Fallbacks: map[string][]string{
		model: {"nope/missing", flash, haiku}, // google is not configured here
	}}, "openai", "anthropic")
	f.ups["openai"].complete = failWith(&providers.Error{Status: 503})
	f.ups["anthropic"].complete = answer(2, 2)
	done, err := f.gw.Complete(context.Background(), f.request(body(model)))
	if err != nil || done.Response.Model != haiku {
		t.Fatalf("configured chain: %v, model %v", err, done)
	}
	f.ups["anthropic"].sent = nil
	_, err = f.gw.Complete(context.Background(), f.request(body(model, "openai/gpt-4o")))
	if ae, ok := apierr.As(err); !ok || ae.Status != 502 || f.ups["anthropic"].sent != nil {
		t.Fatalf("request's models replace the configured chain: err %v, anthropic called %v", err, f.ups["anthropic"].sent != nil)
	}
	if got := f.attempts.String(); got != "openai/gpt-4o-mini:503, openai/gpt-4o:503" {
		t.Errorf("attempts %q", got)
	}
}

// Every model a request names must exist (400, param models) and be
// allowed to the key (403); nothing is held or sent otherwise.
func TestRequestModelsAreChecked(t *testing.T) {
	f := newRouteFixture(t, 1_000_000, gateway.Options{}, "openai", "anthropic")
	for _, b := range []string{body(model, "nope/missing"), body("", "nope/missing", model), body(model, haiku, "gpt-5-nope")} {
		_, err := f.gw.Complete(context.Background(), f.request(b))
		if ae, ok := apierr.As(err); !ok || ae.Status != http.StatusBadRequest || ae.Param != "models" {
			t.Errorf("%s: err %v", b, err)
		}
	}
	call := f.request(body(model, haiku))
	allowed := `["` + model + `"]`
	call.Principal = &auth.Principal{Account: f.account, Key: &models.APIKey{ID: "k", AllowedModels: &allowed}}
	if _, err := f.gw.Complete(context.Background(), call); err == nil {
		t.Fatal("a model outside the key's allowed models was accepted")
	} else if ae, _ := apierr.As(err); ae == nil || ae.Status != http.StatusForbidden {
		t.Fatalf("err %v", err)
	}
	if logs := f.usageLogs(); len(logs) != 0 {
		t.Fatalf("refused requests left %d usage logs", len(logs))
	}
}

// Perplexity's options (preset, web_search_options, max_tool_calls) go to
// Perplexity's models only: refused before anything is held when the
// primary model is another provider's; left out of the request a fallback
// model of another provider gets.
func TestProviderOptionsFollowTheirProvider(t *testing.T) {
	const sonar = "perplexity/llama-3.1-sonar-small-128k-online"
	f := newRouteFixture(t, 1_000_000, gateway.Options{}, "perplexity", "openai")
	withPreset := func(model string, models ...string) gateway.Call {
		var b map[string]any
		_ = json.Unmarshal([]byte(body(model, models...)), &b)
		b["preset"] = "pro-search"
		out, _ := json.Marshal(b)
		return f.request(string(out))
	}
	before := f.balance()
	_, err := f.gw.Complete(context.Background(), withPreset(model))
	if ae, ok := apierr.As(err); !ok || ae.Status != 400 || ae.Param != "preset" || f.ups["openai"].sent != nil {
		t.Fatalf("preset for %s: %v", model, err)
	}
	if f.balance() != before || len(f.usageLogs()) != 0 {
		t.Fatal("a refused request was held or logged")
	}

	f.ups["perplexity"].complete = failWith(&providers.Error{Status: 503, Message: "overloaded"})
	f.ups["openai"].complete = answer(3, 3)
	if _, err := f.gw.Complete(context.Background(), withPreset(sonar, model)); err != nil {
		t.Fatal(err)
	}
	if got := string(f.ups["perplexity"].sent.ProviderOptions["preset"]); got != `"pro-search"` {
		t.Errorf("perplexity got preset %s", got)
	}
	if f.ups["openai"].sent.ProviderOptions != nil {
		t.Errorf("the openai fallback got %v", f.ups["openai"].sent.ProviderOptions)
	}
}
