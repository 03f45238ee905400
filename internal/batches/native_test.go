package batches_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/batches"
	"github.com/beaver-gateway/beaver/internal/chat"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

type nativeEndpoints struct{ base string }

func (e nativeEndpoints) Endpoint(name string) (string, string, bool) {
	return e.base, "sk-test", name == "openai"
}

// native turns BEAVER_BATCH_NATIVE=openai on, against the fake's Batch API.
func (f *fixture) native() *fakeupstream.Server {
	fake := fakeupstream.New(fakeupstream.Options{})
	srv := httptest.NewServer(fake)
	f.t.Cleanup(srv.Close)
	f.svc.Native, f.svc.NativeEndpoints = []string{"openai"}, nativeEndpoints{base: srv.URL + "/v1"}
	return fake
}

func (f *fixture) reserved() (account, key int64) {
	f.t.Helper()
	var a models.Account
	var k models.APIKey
	if err := f.d.Where("id = ?", f.p.Account.ID).Take(&a).Error; err != nil {
		f.t.Fatal(err)
	}
	if err := f.d.Where("id = ?", f.p.Key.ID).Take(&k).Error; err != nil {
		f.t.Fatal(err)
	}
	return a.ReservedMicros, k.ReservedMicros
}

// A batch all on OpenAI's models goes to OpenAI's Batch API: held whole
// before it is sent, each line charged once at half the direct price
// (marked up as usual), the hold released at the end; settling again
// charges nothing more.
func TestNativeBatchChargesEachLineOnceAtTheBatchDiscount(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newFixture(t, dialect)
			f.native()
			ctx := context.Background()
			var in []string
			for i := range 3 {
				in = append(in, chatLine(fmt.Sprintf("req-%d", i), chatModel, fmt.Sprintf("hello number %d of the batch", i)))
			}
			b := f.create(batches.EndpointChat, in...)
			before := f.balance()
			if _, err := f.svc.Start(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
			native, err := f.svc.SubmitNative(ctx, b.ID)
			if err != nil || !native {
				t.Fatalf("native %v, %v", native, err)
			}
			if again, err := f.svc.SubmitNative(ctx, b.ID); err != nil || !again {
				t.Fatalf("submit again: %v %v", again, err)
			}
			var row models.Batch
			if err := f.d.Where("id = ?", b.ID).Take(&row).Error; err != nil {
				t.Fatal(err)
			}
			acctRes, keyRes := f.reserved()
			if row.NativeID == nil || row.HeldMicros <= 0 || acctRes != row.HeldMicros || keyRes != row.HeldMicros {
				t.Fatalf("native id %v, held %d, reserved %d/%d", row.NativeID, row.HeldMicros, acctRes, keyRes)
			}
			done := false
			for i := 0; i < 20 && !done; i++ {
				if done, err = f.svc.PollNative(ctx, b.ID); err != nil {
					t.Fatal(err)
				}
			}
			if !done {
				t.Fatal("the provider batch never finished")
			}
			for range 2 { // the settle activity run twice charges once
				if err := f.svc.SettleNative(ctx, b.ID); err != nil {
					t.Fatal(err)
				}
			}
			fin, err := f.svc.Finalize(ctx, b.ID)
			if err != nil || fin.Status != batches.StatusCompleted {
				t.Fatalf("finalize %+v %v", fin, err)
			}
			b = f.batch(b.ID)
			if b.Completed != 3 || b.Failed != 0 {
				t.Fatalf("counts %d/%d", b.Completed, b.Failed)
			}
			out := f.lines(b.OutputFileID)
			if len(out) != 3 {
				t.Fatalf("%d output lines", len(out))
			}
			nl, err := f.gw.NativeBound(f.p, batches.EndpointChat, []byte(`{"model":"`+chatModel+`","messages":[{"role":"user","content":"x"}]}`), *b.InProgressAt)
			if err != nil {
				t.Fatal(err)
			}
			var sum int64
			for i, l := range out {
				if l.CustomID != fmt.Sprintf("req-%d", i) || l.Response == nil || l.Response.StatusCode != 200 {
					t.Fatalf("line %d: %+v", i, l)
				}
				var resp chat.Response
				if err := json.Unmarshal(l.Response.Body, &resp); err != nil {
					t.Fatal(err)
				}
				u := resp.Usage
				if resp.Model != chatModel || u == nil || u.PromptTokens == 0 || u.CompletionTokens == 0 || u.CostMicros == nil {
					t.Fatalf("line %d body %s", i, l.Response.Body)
				}
				direct := pricing.ChargeTokens(nl.Entry.Price, pricing.Tokens{Prompt: int64(u.PromptTokens),
					Completion: int64(u.CompletionTokens)}, *b.InProgressAt).ChargedMicros
				if want := direct - direct/2; *u.CostMicros != want || want == 0 {
					t.Fatalf("line %d charged %d, want half of %d", i, *u.CostMicros, direct)
				}
				if u.CostDetails == nil || u.CostDetails.Lines[len(u.CostDetails.Lines)-1].Dimension != "batch" {
					t.Fatalf("line %d cost details %+v", i, u.CostDetails)
				}
				var logs []models.UsageLog
				if err := f.d.Where("id = ?", resp.ID).Find(&logs).Error; err != nil || len(logs) != 1 ||
					logs[0].ChargedMicros != *u.CostMicros {
					t.Fatalf("line %d usage logs %+v %v", i, logs, err)
				}
				sum += *u.CostMicros
			}
			if drop := before - f.balance(); drop != sum {
				t.Fatalf("balance dropped %d, lines charged %d", drop, sum)
			}
			if a, k := f.reserved(); a != 0 || k != 0 {
				t.Fatalf("still reserved %d/%d", a, k)
			}
			if err := f.d.Where("id = ?", b.ID).Take(&row).Error; err != nil || row.HeldMicros != 0 {
				t.Fatalf("held %d %v", row.HeldMicros, err)
			}
			if f.up.count("hello number 0 of the batch") != 0 {
				t.Fatal("a native line went through the gateway")
			}
		})
	}
}

// A batch with a line on another provider, or with the switch off, is
// run by Beaver line by line as before.
func TestNativeBatchOnlyWhenEveryLineIsOnTheProvider(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			ctx := context.Background()
			for _, c := range []struct {
				name   string
				on     bool
				second string
			}{{"mixed", true, "anthropic/claude-opus-5-5"}, {"unknown", true, "nope/not-a-model"}, {"off", false, chatModel}} {
				f := newFixture(t, dialect)
				if c.on {
					f.native()
				}
				b := f.create(batches.EndpointChat, chatLine("a", chatModel, "one"), chatLine("b", c.second, "two"))
				if _, err := f.svc.Start(ctx, b.ID); err != nil {
					t.Fatal(err)
				}
				if native, err := f.svc.SubmitNative(ctx, b.ID); err != nil || native {
					t.Fatalf("%s: native %v %v", c.name, native, err)
				}
				if a, _ := f.reserved(); a != 0 {
					t.Fatalf("%s: reserved %d", c.name, a)
				}
				if st := f.run(b.ID, 10); st != batches.StatusCompleted || f.up.count("one") != 1 || (c.name != "unknown" && f.up.count("two") != 1) {
					t.Fatalf("%s: status %s, calls %d", c.name, st, f.up.count("one"))
				}
			}
		})
	}
}

// Cancelling a native batch cancels it at the provider: the lines it
// answered are charged (once), the others are not run, the hold is
// released.
func TestNativeBatchCancel(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newFixture(t, dialect)
			f.native()
			ctx := context.Background()
			b := f.create(batches.EndpointChat, chatLine("a", chatModel, "one"), chatLine("b", chatModel, "two"),
				chatLine("c", chatModel, "three"))
			before := f.balance()
			if _, err := f.svc.Start(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
			if native, err := f.svc.SubmitNative(ctx, b.ID); err != nil || !native {
				t.Fatalf("native %v %v", native, err)
			}
			for range 2 { // validating → in_progress; one line runs
				if done, err := f.svc.PollNative(ctx, b.ID); err != nil || done {
					t.Fatalf("poll: %v %v", done, err)
				}
			}
			if _, err := f.svc.Cancel(ctx, f.p.Account.ID, b.ID); err != nil {
				t.Fatal(err)
			}
			done := false
			for i := 0; i < 10 && !done; i++ {
				var err error
				if done, err = f.svc.PollNative(ctx, b.ID); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.svc.SettleNative(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
			fin, err := f.svc.Finalize(ctx, b.ID)
			if err != nil || fin.Status != batches.StatusCancelled {
				t.Fatalf("finalize %+v %v", fin, err)
			}
			b = f.batch(b.ID)
			out := f.lines(b.OutputFileID)
			if b.Completed == 0 || b.Completed >= 3 || int64(len(out)) != b.Completed {
				t.Fatalf("completed %d, %d output lines", b.Completed, len(out))
			}
			var sum int64
			for _, l := range out {
				var resp chat.Response
				if err := json.Unmarshal(l.Response.Body, &resp); err != nil || resp.Usage == nil || resp.Usage.CostMicros == nil {
					t.Fatalf("%s: %v", l.Response.Body, err)
				}
				sum += *resp.Usage.CostMicros
			}
			if drop := before - f.balance(); drop != sum || sum == 0 {
				t.Fatalf("balance dropped %d, lines charged %d", drop, sum)
			}
			if a, k := f.reserved(); a != 0 || k != 0 {
				t.Fatalf("still reserved %d/%d", a, k)
			}
		})
	}
}

// A batch held for a native run whose submission failed, and that cannot
// go native on the next attempt (the switch turned off), gets its hold
// back and is run by Beaver.
func TestNativeBatchHoldReleasedWhenItFallsBack(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newFixture(t, dialect)
			f.native()
			srv := httptest.NewServer(nil)
			srv.Close() // the provider cannot be reached
			f.svc.NativeEndpoints = nativeEndpoints{base: srv.URL + "/v1"}
			ctx := context.Background()
			b := f.create(batches.EndpointChat, chatLine("a", chatModel, "one"))
			if _, err := f.svc.Start(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.SubmitNative(ctx, b.ID); err == nil {
				t.Fatal("submitted to a closed server")
			}
			if a, k := f.reserved(); a <= 0 || k != a {
				t.Fatalf("reserved %d/%d", a, k)
			}
			f.svc.Native = nil
			if native, err := f.svc.SubmitNative(ctx, b.ID); err != nil || native {
				t.Fatalf("native %v %v", native, err)
			}
			if a, k := f.reserved(); a != 0 || k != 0 {
				t.Fatalf("still reserved %d/%d", a, k)
			}
			if st := f.run(b.ID, 10); st != batches.StatusCompleted || f.up.count("one") != 1 {
				t.Fatalf("status %s", st)
			}
		})
	}
}

// An embeddings batch on OpenAI's models goes native too, charged from
// the provider's usage at the batch rate.
func TestNativeBatchEmbeddings(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newFixture(t, dialect)
			f.native()
			ctx := context.Background()
			b := f.create(batches.EndpointEmbeddings,
				`{"custom_id":"e1","method":"POST","url":"/v1/embeddings","body":{"model":"openai/text-embedding-3-small","input":"hello embedding world"}}`)
			before := f.balance()
			if _, err := f.svc.Start(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
			if native, err := f.svc.SubmitNative(ctx, b.ID); err != nil || !native {
				t.Fatalf("native %v %v", native, err)
			}
			for done := false; !done; {
				var err error
				if done, err = f.svc.PollNative(ctx, b.ID); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.svc.SettleNative(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
			if fin, err := f.svc.Finalize(ctx, b.ID); err != nil || fin.Status != batches.StatusCompleted {
				t.Fatalf("finalize %+v %v", fin, err)
			}
			out := f.lines(f.batch(b.ID).OutputFileID)
			if len(out) != 1 || f.up.count("embed:hello embedding world") != 0 {
				t.Fatalf("output %+v", out)
			}
			var body struct {
				Model string `json:"model"`
				Usage struct {
					PromptTokens int   `json:"prompt_tokens"`
					CostMicros   int64 `json:"cost_micros"`
				} `json:"usage"`
			}
			if err := json.Unmarshal(out[0].Response.Body, &body); err != nil || body.Model != "openai/text-embedding-3-small" ||
				body.Usage.PromptTokens == 0 {
				t.Fatalf("body %s", out[0].Response.Body)
			}
			if drop := before - f.balance(); drop != body.Usage.CostMicros {
				t.Fatalf("balance dropped %d, charged %d", drop, body.Usage.CostMicros)
			}
			if a, k := f.reserved(); a != 0 || k != 0 {
				t.Fatalf("still reserved %d/%d", a, k)
			}
		})
	}
}

// An attempt that crashed after OpenAI created the batch and before its id
// was recorded: the retry finds the provider batch by its beaver_batch_id
// tag and takes it up, instead of sending (and paying for) a second one.
func TestNativeBatchCreatedBeforeACrashIsTakenUp(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newFixture(t, dialect)
			fake := f.native()
			ctx := context.Background()
			b := f.create(batches.EndpointChat, chatLine("only", chatModel, "hello"))
			if _, err := f.svc.Start(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
			if native, err := f.svc.SubmitNative(ctx, b.ID); err != nil || !native {
				t.Fatalf("native %v, %v", native, err)
			}
			var row models.Batch
			if err := f.d.Where("id = ?", b.ID).Take(&row).Error; err != nil || row.NativeID == nil {
				t.Fatalf("batch %+v, %v", row, err)
			}
			first := *row.NativeID
			// The crash: the provider's batch exists, its id was never recorded.
			if err := f.d.Model(&models.Batch{}).Where("id = ?", b.ID).Update("native_id", nil).Error; err != nil {
				t.Fatal(err)
			}
			if native, err := f.svc.SubmitNative(ctx, b.ID); err != nil || !native {
				t.Fatalf("retry: native %v, %v", native, err)
			}
			if err := f.d.Where("id = ?", b.ID).Take(&row).Error; err != nil || row.NativeID == nil || *row.NativeID != first {
				t.Fatalf("retry recorded %v, want %s (%v)", row.NativeID, first, err)
			}
			created := 0
			for _, r := range fake.Requests() {
				if r.Method == "POST" && strings.HasSuffix(r.Path, "/batches") {
					created++
				}
			}
			if created != 1 {
				t.Fatalf("%d provider batches created, want 1", created)
			}
			if acct, _ := f.reserved(); acct != row.HeldMicros {
				t.Fatalf("reserved %d, held %d: the retry held twice", acct, row.HeldMicros)
			}
		})
	}
}
