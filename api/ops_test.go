package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/api"
	"github.com/beaver-gateway/beaver/internal/config"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/workflows"
)

// statsEvents reads the "stats" events of GET /admin/stats/stream, decoded,
// one per receive; comments are skipped. It ends when the stream does.
func statsEvents(t *testing.T, res *http.Response) <-chan map[string]any {
	t.Helper()
	out := make(chan map[string]any)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<22)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "stats":
				var v map[string]any
				d := json.NewDecoder(strings.NewReader(strings.TrimPrefix(line, "data: ")))
				d.UseNumber()
				if err := d.Decode(&v); err != nil {
					t.Errorf("stats event: %v", err)
					return
				}
				out <- v
			case line == "":
				event = ""
			}
		}
	}()
	return out
}

func next(t *testing.T, events <-chan map[string]any) map[string]any {
	t.Helper()
	select {
	case v, ok := <-events:
		if !ok {
			t.Fatal("the stats stream ended")
		}
		return v
	case <-time.After(20 * time.Second): // a hang guard, not an ordering wait
		t.Fatal("no stats event")
	}
	return nil
}

func totals(t *testing.T, v map[string]any, field string) int64 {
	t.Helper()
	n, err := v["totals"].(map[string]any)[field].(json.Number).Int64()
	if err != nil {
		t.Fatalf("totals.%s: %v", field, err)
	}
	return n
}

func TestAdminStatsRangesAndAccess(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		for _, rg := range []string{"", "?range=1h", "?range=24h", "?range=7d", "?range=30d"} {
			r := h.do("GET", "/admin/stats"+rg, h.Admin.Token, nil).want(200)
			if len(r.list("series")) == 0 || r.get("totals") == nil || r.get("breakers") == nil {
				t.Fatalf("%s: %s", rg, r.Raw)
			}
			if r.str("top_accounts.granularity") != "day" {
				t.Fatalf("%s: top accounts %s", rg, r.Raw)
			}
			// No Temporal here: said so, not an error.
			if r.get("workflows.available") != false || r.str("workflows.reason") == "" {
				t.Fatalf("%s: workflows %s", rg, r.Raw)
			}
		}
		for _, path := range []string{"/admin/stats?range=2h", "/admin/stats?range=", "/admin/stats/stream?range=1y"} {
			r := h.do("GET", path, h.Admin.Token, nil).wantError(400, "invalid_request")
			if r.str("error.param") != "range" {
				t.Fatalf("%s: %s", path, r.Raw)
			}
		}
		u := h.newUser()
		for _, path := range []string{"/admin/stats", "/admin/stats/stream"} {
			h.do("GET", path, u.Token, nil).wantError(403, "forbidden")
			h.do("GET", path, "", nil).want(401)
		}
	})
}

// Traffic through the fake upstream shows in the view (totals, the model's
// row, money, top accounts), and the stream sends a snapshot at once and
// another after new traffic when it ticks (the test's ticks).
func TestAdminStatsAfterTrafficAndStream(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInferenceWith(t, dialect, fakeupstream.Options{}, func(pc *providers.Config) { pc.MaxRetries = -1 },
			func(c *config.Config) { c.OpsMaxStreams = 1 })
		ticks := make(chan time.Time)
		inf.Server.OpsTicks = func(time.Duration) (<-chan time.Time, func()) { return ticks, func() {} }
		u, key := inf.fundedKey("10", nil)
		model := "openai/gpt-4o-mini"
		var charged int64
		for range 2 {
			charged += inf.do("POST", "/v1/chat/completions", key, chatBody(model, "hello [[words:5]]")).want(200).num("usage.cost_micros")
		}
		inf.do("POST", "/v1/chat/completions", key, chatBody(model, "no [[error:400]]")).want(400)
		inf.do("POST", "/v1/chat/completions", key, chatBody(model, "down [[error:503]]")).want(502, 503)

		r := inf.do("GET", "/admin/stats?range=24h", inf.Admin.Token, nil).want(200)
		if r.num("totals.requests") != 4 || r.num("totals.client_errors") != 1 || r.num("totals.upstream_errors") != 1 ||
			r.num("totals.charged_micros") != charged || r.num("totals.margin_micros") <= 0 ||
			r.num("totals.margin_micros") >= charged {
			t.Fatalf("totals: %s", r.Raw)
		}
		if r.str("models.0.model") != model || r.num("models.0.requests") != 4 || r.get("models.0.upstream_p50_ms").(json.Number) == "0" {
			t.Fatalf("models: %s", r.Raw)
		}
		if r.str("money.step") != "hour" {
			t.Fatalf("money: %s", r.Raw)
		}
		if r.str("top_accounts.accounts.0.account_id") != u.ID || r.num("top_accounts.accounts.0.charged_micros") != charged {
			t.Fatalf("top accounts: %s", r.Raw)
		}
		if len(r.list("breakers")) == 0 || r.str("breakers.0.provider") == "" {
			t.Fatalf("breakers: %s", r.Raw)
		}

		req, _ := http.NewRequest("GET", inf.URL+"/admin/stats/stream?range=1h", nil)
		req.Header.Set("Authorization", "Bearer "+inf.Admin.Token)
		res, err := inf.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
		}
		events := statsEvents(t, res)
		first := next(t, events)
		if totals(t, first, "requests") != 4 {
			t.Fatalf("first snapshot: %v", first["totals"])
		}
		// One stream per process here: a second is refused.
		inf.do("GET", "/admin/stats/stream", inf.Admin.Token, nil).wantError(429, "rate_limit_exceeded")

		inf.do("POST", "/v1/chat/completions", key, chatBody(model, "again [[words:3]]")).want(200)
		ticks <- time.Now()
		if second := next(t, events); totals(t, second, "requests") != 5 {
			t.Fatalf("second snapshot: %v", second["totals"])
		}
		_ = res.Body.Close()
	})
}

// failingWorkflows is a Workflows whose Temporal answers and lists failures
// (the other methods are not called here).
type failingWorkflows struct {
	api.Workflows
	since time.Time
}

func (*failingWorkflows) Available() bool { return true }

func (f *failingWorkflows) FailedWorkflows(_ context.Context, since time.Time, limit int) (workflows.FailedWorkflows, error) {
	f.since = since
	return workflows.FailedWorkflows{Failed: 2, TimedOut: 1, Recent: []workflows.FailedWorkflow{{WorkflowID: "batch:b1", RunID: "r1",
		Type: "BatchWorkflow", Status: "failed", ClosedAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}}}, nil
}

// Failing workflows come from the Workflows' visibility query over the
// range.
func TestAdminStatsFailingWorkflows(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		wf := &failingWorkflows{}
		h := newHarness(t, dialect, harnessOpts{Deps: func(_ *testing.T, _ *harness, d *api.Deps) { d.Workflows = wf }})
		r := h.do("GET", "/admin/stats?range=7d", h.Admin.Token, nil).want(200)
		if r.get("workflows.available") != true || r.num("workflows.failed") != 2 || r.num("workflows.timed_out") != 1 ||
			r.str("workflows.recent.0.workflow_id") != "batch:b1" || r.str("workflows.recent.0.status") != "failed" {
			t.Fatalf("workflows: %s", r.Raw)
		}
		if from, _ := time.Parse(time.RFC3339, r.str("from")); !wf.since.Equal(from) {
			t.Fatalf("asked since %v, range from %v", wf.since, from)
		}
	})
}
