package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/api"
	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/chat"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/internal/responses"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
	"github.com/beaver-gateway/beaver/workflows"
)

// backgroundWorkflows is api.Workflows running BackgroundResponseWorkflow
// in process with the real activities (on a gateway of its own, as a
// worker process has), one run per response id, on its own goroutine as
// a worker would. held makes starts wait (a queue no worker polls yet)
// until release; down fails like an unreachable Temporal.
type backgroundWorkflows struct {
	api.Workflows
	acts    *activities.BackgroundResponseActivities
	down    atomic.Bool
	held    atomic.Bool
	mu      sync.Mutex
	waiting []string
	runs    map[string]chan bgRun
	cancels map[string]int
}

type bgRun struct {
	res activities.RunBackgroundResponseResult
	err error
}

func (f *backgroundWorkflows) Available() bool { return !f.down.Load() }

func (f *backgroundWorkflows) StartBackgroundResponse(_ context.Context, id string) error {
	if f.down.Load() {
		return apierr.Unavailable("Temporal is not available right now; try again in a moment")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.runs[id]; ok {
		return nil
	}
	f.runs[id] = make(chan bgRun, 1)
	if f.held.Load() {
		f.waiting = append(f.waiting, id)
		return nil
	}
	f.run(id)
	return nil
}

func (f *backgroundWorkflows) CancelBackgroundResponse(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancels[id]++
	return nil
}

// release runs the held starts.
func (f *backgroundWorkflows) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held.Store(false)
	for _, id := range f.waiting {
		f.run(id)
	}
	f.waiting = nil
}

func (f *backgroundWorkflows) run(id string) {
	done := f.runs[id]
	go func() {
		var s testsuite.WorkflowTestSuite
		env := testenv.WorkflowEnv(&s)
		// The run takes real time, and a busy machine may starve the
		// workflow goroutine: neither the testsuite's 3s test timeout nor
		// its 1s deadlock detector apply here.
		env.SetTestTimeout(time.Minute)
		env.SetWorkerOptions(worker.Options{DeadlockDetectionTimeout: time.Minute})
		env.RegisterWorkflow(workflows.BackgroundResponseWorkflow)
		env.RegisterActivity(f.acts)
		env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.BackgroundResponseWorkflowID(id)})
		env.ExecuteWorkflow(workflows.BackgroundResponseWorkflow, workflows.BackgroundResponseInput{ResponseID: id})
		var r bgRun
		if r.err = env.GetWorkflowError(); r.err == nil {
			r.err = env.GetWorkflowResult(&r.res)
		}
		done <- r
	}()
}

// result waits for the run of id to end.
func (f *backgroundWorkflows) result(t *testing.T, id string) bgRun {
	t.Helper()
	f.mu.Lock()
	done := f.runs[id]
	f.mu.Unlock()
	select {
	case r := <-done:
		done <- r
		return r
	case <-time.After(30 * time.Second):
		t.Fatalf("the run of %s did not end", id)
	}
	return bgRun{}
}

// newBackground is an inference harness whose API starts background
// responses on a backgroundWorkflows.
func newBackground(t *testing.T, dialect string) (*inference, *backgroundWorkflows) {
	t.Helper()
	inf := newInference(t, dialect, fakeupstream.Options{})
	gw := gateway.New(gateway.Deps{Billing: inf.Engine, Catalog: inf.Catalog, Providers: inf.Registry, Log: inf.Log}, gateway.Options{})
	t.Cleanup(func() { gw.Close(context.Background()) })
	f := &backgroundWorkflows{Workflows: inf.Server.Workflows,
		acts: &activities.BackgroundResponseActivities{DB: inf.DB, Gateway: gw, Log: inf.Log, CheckEvery: 20 * time.Millisecond},
		runs: map[string]chan bgRun{}, cancels: map[string]int{}}
	inf.Server.Workflows = f
	return inf, f
}

// poll GETs the response until its status is want.
func (inf *inference) poll(key, id, want string) *resp {
	inf.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := inf.do("GET", "/v1/responses/"+id, key, nil).want(200)
		if r.str("status") == want {
			return r
		}
		if time.Now().After(deadline) {
			inf.t.Fatalf("response %s stays %s, want %s: %s", id, r.str("status"), want, r.Raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (inf *inference) usageLogs(genID string) []models.UsageLog {
	var logs []models.UsageLog
	if err := inf.DB.Where("id = ?", genID).Find(&logs).Error; err != nil {
		inf.t.Fatal(err)
	}
	return logs
}

// POST answers at once, queued; GET polls it to completed with the usage
// the provider reported, charged once at the published price; the id is
// the account's alone; a finished response cannot be cancelled.
func TestBackgroundResponseCompletes(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf, wf := newBackground(t, dialect)
		u, key := inf.fundedKey("10", nil)
		_, otherKey := inf.fundedKey("1", nil)
		before, _ := inf.balance(u.Token)
		r := inf.do("POST", "/v1/responses", key, responsesBody(storedModel, "write a poem [[words:7]]", "background", true,
			"instructions", "Be brief.")).want(200)
		id := r.str("id")
		if !strings.HasPrefix(id, "resp_") || r.str("object") != "response" || r.get("background") != true ||
			r.get("store") != true || (r.str("status") != "queued" && r.str("status") != "in_progress") || r.get("usage") != nil ||
			r.str("instructions") != "Be brief." || r.Header.Get("X-Beaver-Generation-Id") != responses.GenerationID(id) {
			t.Fatalf("queued response %s (headers %v)", r.Raw, r.Header)
		}
		done := inf.poll(key, id, "completed")
		if run := wf.result(t, id); run.err != nil || run.res.Status != "completed" {
			t.Fatalf("run: %+v (error %v)", run, run.err)
		}
		if done.str("id") != id || done.get("background") != true || done.num("created_at") != r.num("created_at") ||
			len(strings.Fields(done.str("output.0.content.0.text"))) != 7 || done.str("instructions") != "Be brief." {
			t.Fatalf("completed response %s", done.Raw)
		}
		in, out := done.num("usage.input_tokens"), done.num("usage.output_tokens")
		cost := done.num("usage.cost_micros")
		if want := inf.expectedCost(storedModel, in, out); out != 7 || in <= 0 || cost != want || cost <= 0 {
			t.Fatalf("usage %s, want cost %d", done.Raw, want)
		}
		after, _ := inf.balance(u.Token)
		inf.chargedOnce(u.ID, responses.GenerationID(id), cost, before, after)
		if n := len(inf.Fake.Requests()); n != 1 {
			t.Fatalf("%d upstream requests", n)
		}
		// Stored like any response: input items, and previous_response_id.
		inf.do("GET", "/v1/responses/"+id+"/input_items", key, nil).want(200)
		next := inf.do("POST", "/v1/responses", key, responsesBody(storedModel, "and another", "previous_response_id", id)).want(200)
		if next.num("usage.input_tokens") <= in {
			t.Fatalf("the chain did not carry the background turn: %s", next.Raw)
		}
		// Another account: 404 on GET and cancel.
		inf.do("GET", "/v1/responses/"+id, otherKey, nil).wantError(404, "not_found")
		inf.do("POST", "/v1/responses/"+id+"/cancel", otherKey, nil).wantError(404, "not_found")
		// Finished: cancel is 400; a response not made in the background too.
		inf.do("POST", "/v1/responses/"+id+"/cancel", key, nil).wantError(400, "invalid_request")
		inf.do("POST", "/v1/responses/"+next.str("id")+"/cancel", key, nil).wantError(400, "invalid_request")
		inf.invariant(u.ID)
		inf.waitReservedZero(u.ID)
	})
}

// A response cancelled while still queued never runs and costs nothing;
// cancelling it again answers it again.
func TestBackgroundResponseCancelQueuedIsFree(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf, wf := newBackground(t, dialect)
		u, key := inf.fundedKey("10", nil)
		before, _ := inf.balance(u.Token)
		wf.held.Store(true)
		id := inf.do("POST", "/v1/responses", key, responsesBody(storedModel, "never run", "background", true)).want(200).str("id")
		inf.poll(key, id, "queued")
		c := inf.do("POST", "/v1/responses/"+id+"/cancel", key, nil).want(200)
		if c.str("status") != "cancelled" || c.str("id") != id || c.get("background") != true {
			t.Fatalf("cancel answered %s", c.Raw)
		}
		inf.do("POST", "/v1/responses/"+id+"/cancel", key, nil).want(200)
		wf.release()
		if run := wf.result(t, id); run.err != nil || run.res.Status != "cancelled" {
			t.Fatalf("run: %+v (error %v)", run, run.err)
		}
		inf.poll(key, id, "cancelled")
		after, _ := inf.balance(u.Token)
		if after != before || len(inf.usageLogs(responses.GenerationID(id))) != 0 || len(inf.Fake.Requests()) != 0 {
			t.Fatalf("a queued cancel cost %d (usage logs %v, upstream requests %d)", before-after,
				inf.usageLogs(responses.GenerationID(id)), len(inf.Fake.Requests()))
		}
		wf.mu.Lock()
		cancels := wf.cancels[id]
		wf.mu.Unlock()
		if cancels == 0 {
			t.Fatal("the workflow was not cancelled")
		}
		inf.invariant(u.ID)
	})
}

// A response cancelled while its provider works: cancelled at once, its
// run stops; the provider's answer is still read and billed by its usage,
// exactly once, as for a client that left (and GET stays cancelled).
func TestBackgroundResponseCancelInFlight(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf, wf := newBackground(t, dialect)
		u, key := inf.fundedKey("10", nil)
		before, _ := inf.balance(u.Token)
		id := inf.do("POST", "/v1/responses", key, responsesBody(storedModel, "slowly [[chunk-delay:100]] [[words:10]]",
			"background", true)).want(200).str("id")
		inf.poll(key, id, "in_progress")
		deadline := time.Now().Add(10 * time.Second)
		for len(inf.Fake.Requests()) == 0 { // the provider was asked
			if time.Now().After(deadline) {
				t.Fatal("the provider was never asked")
			}
			time.Sleep(5 * time.Millisecond)
		}
		c := inf.do("POST", "/v1/responses/"+id+"/cancel", key, nil).want(200)
		if c.str("status") != "cancelled" {
			t.Fatalf("cancel answered %s", c.Raw)
		}
		if run := wf.result(t, id); run.err != nil || run.res.Status != "cancelled" {
			t.Fatalf("run: %+v (error %v)", run, run.err)
		}
		genID := responses.GenerationID(id)
		deadline = time.Now().Add(20 * time.Second)
		for len(inf.usageLogs(genID)) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the cancelled request was never billed")
			}
			time.Sleep(10 * time.Millisecond)
		}
		log := inf.usageLogs(genID)[0]
		after, _ := inf.balance(u.Token)
		if want := inf.expectedCost(storedModel, log.PromptTokens, log.CompletionTokens); log.CompletionTokens != 10 ||
			!log.Cancelled || log.ChargedMicros != want {
			t.Fatalf("usage log %+v, want a charge of %d", log, want)
		}
		inf.chargedOnce(u.ID, genID, log.ChargedMicros, before, after)
		inf.poll(key, id, "cancelled")
		inf.invariant(u.ID)
		inf.waitReservedZero(u.ID)
	})
}

// What the POST refuses: background with store false, background with
// stream; and without Temporal it answers 503 with nothing stored or held.
func TestBackgroundResponseRefusals(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf, wf := newBackground(t, dialect)
		u, key := inf.fundedKey("10", nil)
		inf.do("POST", "/v1/responses", key, responsesBody(storedModel, "x", "background", true, "store", false)).
			wantError(400, "invalid_request")
		inf.do("POST", "/v1/responses", key, responsesBody(storedModel, "x", "background", true, "stream", true)).
			wantError(400, "invalid_request")
		wf.down.Store(true)
		inf.do("POST", "/v1/responses", key, responsesBody(storedModel, "x", "background", true)).wantError(503, "service_unavailable")
		var n int64
		inf.DB.Model(&models.StoredResponse{}).Count(&n)
		if _, reserved := inf.balance(u.Token); n != 0 || reserved != 0 {
			t.Fatalf("%d rows stored, %d reserved", n, reserved)
		}
		_, broke := inf.fundedKey("0", nil)
		wf.down.Store(false)
		inf.do("POST", "/v1/responses", broke, responsesBody(storedModel, "x", "background", true)).wantError(402, "insufficient_balance")
		if len(inf.Fake.Requests()) != 0 {
			t.Fatal("a refused request reached the provider")
		}
	})
}

// The crash windows of a run, on the activity itself: an answer recorded
// but not charged (the worker died between the two) is charged on the
// retry without asking the provider again; a charge committed before the
// worker died is not charged again, and the retry completes the response
// from the recorded answer; a finished run is left alone.
func TestBackgroundResponseCrashWindowsChargeOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf, wf := newBackground(t, dialect)
		u, key := inf.fundedKey("10", nil)
		acts := wf.acts
		ctx := context.Background()
		queue := func(input string) string {
			wf.held.Store(true)
			return inf.do("POST", "/v1/responses", key, responsesBody(storedModel, input, "background", true)).want(200).str("id")
		}
		run := func(id string) activities.RunBackgroundResponseResult {
			t.Helper()
			res, err := acts.RunBackgroundResponse(ctx, activities.RunBackgroundResponseInput{ResponseID: id})
			if err != nil {
				t.Fatalf("run %s: %v", id, err)
			}
			return res
		}

		// Recorded, then the crash: the retry replays and charges once.
		id := queue("recorded then crashed")
		entry, err := inf.Catalog.Resolve(storedModel)
		if err != nil {
			t.Fatal(err)
		}
		model := entry.ID
		recorded, _ := json.Marshal(&chat.Response{Choices: []chat.Choice{{Message: chat.Message{Role: "assistant",
			Content: chat.TextContent("kept from before the crash")}, FinishReason: "stop"}},
			Usage: &chat.Usage{PromptTokens: 12, CompletionTokens: 5}})
		rec := string(recorded)
		if err := inf.DB.Model(&models.StoredResponse{}).Where("id = ?", id).
			Updates(map[string]any{"status": "in_progress", "answer": rec, "answer_model": model}).Error; err != nil {
			t.Fatal(err)
		}
		before, _ := inf.balance(u.Token)
		res := run(id)
		after, _ := inf.balance(u.Token)
		want := inf.expectedCost(storedModel, 12, 5)
		if res.Status != "completed" || res.ChargedMicros != want || len(inf.Fake.Requests()) != 0 {
			t.Fatalf("replay: %+v (want %d), upstream requests %d", res, want, len(inf.Fake.Requests()))
		}
		inf.chargedOnce(u.ID, responses.GenerationID(id), want, before, after)
		got := inf.do("GET", "/v1/responses/"+id, key, nil).want(200)
		if got.str("status") != "completed" || got.str("output.0.content.0.text") != "kept from before the crash" ||
			got.num("usage.cost_micros") != want || got.num("usage.input_tokens") != 12 {
			t.Fatalf("replayed response %s", got.Raw)
		}
		// Run again (a retry after the run finished): nothing happens.
		if again := run(id); again.Status != "completed" {
			t.Fatalf("second run: %+v", again)
		}
		if b, _ := inf.balance(u.Token); b != after {
			t.Fatalf("a finished run charged again: %d → %d", after, b)
		}

		// Charged, then the crash before the response was stored: the
		// retry charges nothing and completes it from the recorded answer.
		id = queue("charged then crashed [[words:6]]")
		before, _ = inf.balance(u.Token)
		first := run(id)
		if first.Status != "completed" || len(inf.Fake.Requests()) != 1 {
			t.Fatalf("first run: %+v, upstream requests %d", first, len(inf.Fake.Requests()))
		}
		var row models.StoredResponse
		inf.DB.Where("id = ?", id).Take(&row)
		completed := row.Response
		running, err := responses.WithStatus(json.RawMessage(mustJSON(t, map[string]any{"id": id, "object": "response",
			"status": "in_progress", "background": true, "output": []any{}})), "in_progress", nil)
		if err != nil {
			t.Fatal(err)
		}
		inf.DB.Model(&models.StoredResponse{}).Where("id = ?", id).
			Updates(map[string]any{"status": "in_progress", "response": string(running)})
		mid, _ := inf.balance(u.Token)
		second := run(id)
		after, _ = inf.balance(u.Token)
		if second.Status != "completed" || second.ChargedMicros != first.ChargedMicros || mid != after || len(inf.Fake.Requests()) != 1 {
			t.Fatalf("retry after the charge: %+v (first %+v), balance %d → %d, upstream requests %d", second, first, mid, after,
				len(inf.Fake.Requests()))
		}
		inf.chargedOnce(u.ID, responses.GenerationID(id), first.ChargedMicros, before, after)
		got = inf.do("GET", "/v1/responses/"+id, key, nil).want(200)
		var was map[string]any
		_ = json.Unmarshal([]byte(completed), &was)
		if got.str("status") != "completed" || got.num("usage.cost_micros") != first.ChargedMicros ||
			got.str("output.0.content.0.text") != was["output"].([]any)[0].(map[string]any)["content"].([]any)[0].(map[string]any)["text"] {
			t.Fatalf("completed on retry %s, was %s", got.Raw, completed)
		}
		inf.invariant(u.ID)
		inf.waitReservedZero(u.ID)
	})
}
