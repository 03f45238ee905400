package batches_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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

const claudeModel = "anthropic/claude-opus-5-5"

type anthropicEndpoints struct{ base string }

func (e anthropicEndpoints) Endpoint(name string) (string, string, bool) {
	return e.base, "sk-ant-test", name == "anthropic"
}

// nativeAnthropic turns BEAVER_BATCH_NATIVE=anthropic on, against the
// fake's Message Batches API; it returns the fake and its base URL.
func (f *fixture) nativeAnthropic() (*fakeupstream.Server, string) {
	fake := fakeupstream.New(fakeupstream.Options{})
	srv := httptest.NewServer(fake)
	f.t.Cleanup(srv.Close)
	f.svc.Native, f.svc.NativeEndpoints = []string{"anthropic"}, anthropicEndpoints{base: srv.URL}
	return fake, srv.URL
}

// runNative submits, polls until over, settles (twice: a retried
// activity) and finalizes batch id.
func (f *fixture) runNative(id string) batches.Finalized {
	f.t.Helper()
	ctx := context.Background()
	if native, err := f.svc.SubmitNative(ctx, id); err != nil || !native {
		f.t.Fatalf("native %v, %v", native, err)
	}
	f.pollNative(id)
	for range 2 {
		if err := f.svc.SettleNative(ctx, id); err != nil {
			f.t.Fatal(err)
		}
	}
	fin, err := f.svc.Finalize(ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return fin
}

func (f *fixture) pollNative(id string) {
	f.t.Helper()
	for i := 0; i < 20; i++ {
		done, err := f.svc.PollNative(context.Background(), id)
		if err != nil {
			f.t.Fatal(err)
		}
		if done {
			return
		}
	}
	f.t.Fatal("the provider batch never ended")
}

// chargedLines checks each output line of b is an OpenAI chat.completion
// of claudeModel charged exactly half its direct price (cache writes
// included), with one usage log of that charge, and returns the sum.
func (f *fixture) chargedLines(b *models.Batch, out []outLine) int64 {
	f.t.Helper()
	nl, err := f.gw.NativeBound(f.p, batches.EndpointChat, []byte(`{"model":"`+claudeModel+`","messages":[{"role":"user","content":"x"}]}`), *b.InProgressAt)
	if err != nil {
		f.t.Fatal(err)
	}
	var sum int64
	for i, l := range out {
		if l.Response == nil || l.Response.StatusCode != 200 {
			f.t.Fatalf("line %d: %+v", i, l)
		}
		var resp chat.Response
		if err := json.Unmarshal(l.Response.Body, &resp); err != nil {
			f.t.Fatal(err)
		}
		u := resp.Usage
		if resp.Model != claudeModel || resp.Object != chat.ObjectCompletion || len(resp.Choices) != 1 ||
			resp.Choices[0].Message.Content.Text() == "" || u == nil || u.PromptTokens == 0 || u.CompletionTokens == 0 || u.CostMicros == nil {
			f.t.Fatalf("line %d body %s", i, l.Response.Body)
		}
		t := pricing.Tokens{Prompt: int64(u.PromptTokens), Completion: int64(u.CompletionTokens)}
		if d := u.PromptTokensDetails; d != nil {
			t.Cached, t.CacheWrite, t.CacheWrite1h = int64(d.CachedTokens), int64(d.CacheWriteTokens), int64(d.CacheWrite1hTokens)
		}
		direct := pricing.ChargeTokens(nl.Entry.Price, t, *b.InProgressAt).ChargedMicros
		if want := direct - direct/2; *u.CostMicros != want || want == 0 {
			f.t.Fatalf("line %d charged %d, want half of %d", i, *u.CostMicros, direct)
		}
		var logs []models.UsageLog
		if err := f.d.Where("id = ?", resp.ID).Find(&logs).Error; err != nil || len(logs) != 1 || logs[0].ChargedMicros != *u.CostMicros {
			f.t.Fatalf("line %d usage logs %+v %v", i, logs, err)
		}
		sum += *u.CostMicros
	}
	return sum
}

func (f *fixture) noneReserved() {
	f.t.Helper()
	if a, k := f.reserved(); a != 0 || k != 0 {
		f.t.Fatalf("still reserved %d/%d", a, k)
	}
}

// A batch all on Anthropic's models goes to its Message Batches API:
// each line translated as the adapter translates a direct request, under
// a Beaver-made custom_id; each answer back as the same chat.completion,
// charged once at half the direct price (cache writes priced as direct);
// the hold released; settling twice charges once.
func TestAnthropicNativeBatchChargesEachLineOnce(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newFixture(t, dialect)
			fake, _ := f.nativeAnthropic()
			ctx := context.Background()
			b := f.create(batches.EndpointChat,
				chatLine("first line", claudeModel, "hello one"),
				chatLine("second/line", claudeModel, "hello two [[cache-write:5]]"),
				`{"custom_id":"third","method":"POST","url":"/v1/chat/completions","body":{"model":"`+claudeModel+
					`","max_tokens":50,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello three"}]}}`)
			before := f.balance()
			if _, err := f.svc.Start(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
			fin := f.runNative(b.ID)
			if fin.Status != batches.StatusCompleted {
				t.Fatalf("finalize %+v", fin)
			}
			b = f.batch(b.ID)
			out := f.lines(b.OutputFileID)
			if b.Completed != 3 || b.Failed != 0 || len(out) != 3 {
				t.Fatalf("counts %d/%d, %d lines", b.Completed, b.Failed, len(out))
			}
			for i, want := range []string{"first line", "second/line", "third"} {
				if out[i].CustomID != want {
					t.Fatalf("line %d custom_id %q", i, out[i].CustomID)
				}
			}
			sum := f.chargedLines(b, out)
			if drop := before - f.balance(); drop != sum {
				t.Fatalf("balance dropped %d, lines charged %d", drop, sum)
			}
			f.noneReserved()
			var msgs []fakeupstream.Recorded
			for _, r := range fake.Requests() {
				if r.Path == "/v1/messages" {
					msgs = append(msgs, r)
				}
			}
			if len(msgs) != 3 || f.up.count("hello one") != 0 {
				t.Fatalf("%d messages at the provider", len(msgs))
			}
			var third struct {
				Model     string `json:"model"`
				MaxTokens int    `json:"max_tokens"`
				System    string `json:"system"`
			}
			if err := json.Unmarshal(msgs[2].Body, &third); err != nil || third.Model != "claude-opus-5-5" ||
				third.MaxTokens != 50 || third.System != "be brief" {
				t.Fatalf("params %s (%v)", msgs[2].Body, err)
			}
			if h := msgs[0].Header; h.Get("x-api-key") != "sk-ant-test" || h.Get("anthropic-version") == "" {
				t.Fatalf("headers %v", h)
			}
		})
	}
}

// An errored line is not charged and goes to the error file as the same
// direct request's error.
func TestAnthropicNativeBatchErroredLine(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newFixture(t, dialect)
			f.nativeAnthropic()
			ctx := context.Background()
			b := f.create(batches.EndpointChat, chatLine("ok", claudeModel, "fine"), chatLine("bad", claudeModel, "no [[error:400]]"))
			before := f.balance()
			if _, err := f.svc.Start(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
			if fin := f.runNative(b.ID); fin.Status != batches.StatusCompleted {
				t.Fatalf("finalize %+v", fin)
			}
			b = f.batch(b.ID)
			out, errs := f.lines(b.OutputFileID), f.lines(b.ErrorFileID)
			if b.Completed != 1 || b.Failed != 1 || len(out) != 1 || len(errs) != 1 {
				t.Fatalf("counts %d/%d, files %d/%d", b.Completed, b.Failed, len(out), len(errs))
			}
			e := errs[0]
			var body struct {
				Error struct{ Type, Code, Message string } `json:"error"`
			}
			if e.CustomID != "bad" || e.Response == nil || e.Response.StatusCode != 400 ||
				json.Unmarshal(e.Response.Body, &body) != nil || body.Error.Type != "invalid_request_error" || body.Error.Message == "" {
				t.Fatalf("error line %+v %s", e, e.Response.Body)
			}
			if drop := before - f.balance(); drop != f.chargedLines(b, out) {
				t.Fatalf("balance dropped %d", drop)
			}
			f.noneReserved()
		})
	}
}

// Cancelling cancels the Message Batch: the lines that ran are charged
// once, the canceled ones go to the error file (batch_cancelled), free.
func TestAnthropicNativeBatchCancel(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newFixture(t, dialect)
			fake, _ := f.nativeAnthropic()
			ctx := context.Background()
			b := f.create(batches.EndpointChat, chatLine("a", claudeModel, "one"), chatLine("b", claudeModel, "two"),
				chatLine("c", claudeModel, "three"))
			before := f.balance()
			if _, err := f.svc.Start(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
			if native, err := f.svc.SubmitNative(ctx, b.ID); err != nil || !native {
				t.Fatalf("native %v %v", native, err)
			}
			// One request runs; then, cancelling, the next poll runs a second
			// (it was under way) and cancels the batch at Anthropic.
			if done, err := f.svc.PollNative(ctx, b.ID); err != nil || done {
				t.Fatalf("poll: %v %v", done, err)
			}
			if _, err := f.svc.Cancel(ctx, f.p.Account.ID, b.ID); err != nil {
				t.Fatal(err)
			}
			f.pollNative(b.ID)
			cancels := 0
			for _, r := range fake.Requests() {
				if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/cancel") {
					cancels++
				}
			}
			if cancels != 1 {
				t.Fatalf("%d cancels at the provider", cancels)
			}
			if err := f.svc.SettleNative(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
			if fin, err := f.svc.Finalize(ctx, b.ID); err != nil || fin.Status != batches.StatusCancelled {
				t.Fatalf("finalize %+v %v", fin, err)
			}
			b = f.batch(b.ID)
			out, errs := f.lines(b.OutputFileID), f.lines(b.ErrorFileID)
			if b.Completed != 2 || len(out) != 2 || len(errs) != 1 || errs[0].CustomID != "c" || errs[0].Error == nil ||
				errs[0].Error.Code != "batch_cancelled" {
				t.Fatalf("completed %d, output %+v, errors %+v", b.Completed, out, errs)
			}
			if drop := before - f.balance(); drop != f.chargedLines(b, out) {
				t.Fatalf("balance dropped %d", drop)
			}
			f.noneReserved()
		})
	}
}

// An attempt that crashed after Anthropic made the Message Batch and
// before its id was recorded: the retry finds it among the batches made
// since the Beaver batch started, waits (fails, to be retried) until it
// has ended and its custom_ids show it is this batch's, then takes it up:
// no second Message Batch is made, nothing is held twice.
func TestAnthropicNativeBatchCreatedBeforeACrashIsTakenUp(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newFixture(t, dialect)
			fake, base := f.nativeAnthropic()
			ctx := context.Background()
			// Someone else's batch of the same size on the same key, ended: not taken.
			other := `{"requests":[{"custom_id":"x-0","params":{"model":"claude-opus-5-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}}]}`
			otherID := f.anthropicCall(base, http.MethodPost, "/v1/messages/batches", other)
			for range 2 {
				f.anthropicCall(base, http.MethodGet, "/v1/messages/batches/"+otherID, "")
			}
			b := f.create(batches.EndpointChat, chatLine("only", claudeModel, "hello"))
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
			// Another Beaver batch of the same size, sent (and recorded) since,
			// still running: not a candidate.
			b2 := f.create(batches.EndpointChat, chatLine("other", claudeModel, "hello too"))
			if _, err := f.svc.Start(ctx, b2.ID); err != nil {
				t.Fatal(err)
			}
			if native, err := f.svc.SubmitNative(ctx, b2.ID); err != nil || !native {
				t.Fatalf("second batch: native %v, %v", native, err)
			}
			// The crash: the provider's batch exists, its id was never recorded.
			if err := f.d.Model(&models.Batch{}).Where("id = ?", b.ID).Update("native_id", nil).Error; err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.SubmitNative(ctx, b.ID); err == nil {
				t.Fatal("took up a batch whose custom_ids could not be read yet")
			}
			f.anthropicCall(base, http.MethodGet, "/v1/messages/batches/"+first, "") // it runs its request and ends
			if native, err := f.svc.SubmitNative(ctx, b.ID); err != nil || !native {
				t.Fatalf("retry: native %v, %v", native, err)
			}
			if err := f.d.Where("id = ?", b.ID).Take(&row).Error; err != nil || row.NativeID == nil || *row.NativeID != first {
				t.Fatalf("retry recorded %v, want %s (%v)", row.NativeID, first, err)
			}
			created := 0
			for _, r := range fake.Requests() {
				if r.Method == http.MethodPost && r.Path == "/v1/messages/batches" {
					created++
				}
			}
			if created != 3 { // someone else's, this batch's and the second batch's
				t.Fatalf("%d Message Batches created, want 3", created)
			}
			var row2 models.Batch
			if err := f.d.Where("id = ?", b2.ID).Take(&row2).Error; err != nil {
				t.Fatal(err)
			}
			if acct, _ := f.reserved(); acct != row.HeldMicros+row2.HeldMicros {
				t.Fatalf("reserved %d, held %d: the retry held twice", acct, row.HeldMicros)
			}
			before := f.balance()
			var sum int64
			for _, id := range []string{b.ID, b2.ID} {
				f.pollNative(id)
				if err := f.svc.SettleNative(ctx, id); err != nil {
					t.Fatal(err)
				}
				if fin, err := f.svc.Finalize(ctx, id); err != nil || fin.Status != batches.StatusCompleted {
					t.Fatalf("finalize %+v %v", fin, err)
				}
				done := f.batch(id)
				out := f.lines(done.OutputFileID)
				if len(out) != 1 {
					t.Fatalf("batch %s: %d output lines", id, len(out))
				}
				sum += f.chargedLines(done, out)
			}
			if drop := before - f.balance(); drop != sum {
				t.Fatalf("balance dropped %d, lines charged %d", drop, sum)
			}
			f.noneReserved()
		})
	}
}

// anthropicCall calls the fake's Message Batches API directly (another
// client of the same key, or time passing at Anthropic) and returns the
// batch id it answers with.
func (f *fixture) anthropicCall(base, method, path, body string) string {
	f.t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("x-api-key", "sk-ant-other")
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var b struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || resp.StatusCode != 200 {
		f.t.Fatal(fmt.Errorf("%s %s: %d %w", method, path, resp.StatusCode, errors.Join(err)))
	}
	return b.ID
}
