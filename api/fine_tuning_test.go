package api_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/api"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/catalog"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/finetune"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/internal/registry"
)

type ftStarter struct {
	mu      sync.Mutex
	started []string
}

func (s *ftStarter) Available() bool { return true }

func (s *ftStarter) StartFineTuningJob(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started = append(s.started, id)
	return nil
}

// newFineTuning is an API replica whose OpenAI is the fake upstream, with
// fine-tuning wired; the workflow's steps are run by the test (Poll, Settle).
func newFineTuning(t *testing.T, dialect string) (*harness, *finetune.Service, *ftStarter) {
	t.Helper()
	up := httptest.NewServer(fakeupstream.New(fakeupstream.Options{}))
	t.Cleanup(up.Close)
	var svc *finetune.Service
	st := &ftStarter{}
	h := newHarness(t, dialect, harnessOpts{Deps: func(t *testing.T, h *harness, d *api.Deps) {
		ctx := context.Background()
		cat := catalog.New(h.DB, h.Bus, h.Log)
		for _, step := range []func(context.Context) error{cat.Seed, cat.EnsurePrices, cat.Reload} {
			if err := step(ctx); err != nil {
				t.Fatal(err)
			}
		}
		eng := billing.NewEngine(h.DB, h.Log, billing.EngineOptions{IdleReturn: 100 * time.Millisecond})
		t.Cleanup(eng.Close)
		builtins := providers.DefaultConfigs()
		for name, pc := range builtins {
			pc.BaseURL = up.URL
			builtins[name] = pc
		}
		reg, err := registry.New(ctx, registry.Options{DB: h.DB, Bus: h.Bus, Keyed: auth.NewKeyed(h.Cfg.Secret),
			Builtins: builtins, Log: h.Log})
		if err != nil {
			t.Fatal(err)
		}
		svc = finetune.New(finetune.Options{DB: h.DB, Catalog: cat, Endpoints: reg, Workflows: st, Log: h.Log})
		d.Catalog, d.Billing, d.ProviderRegistry, d.FineTuning = cat, eng, reg, svc
	}})
	return h, svc, st
}

func TestFineTuningJobsAPI(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h, svc, st := newFineTuning(t, dialect)
		ctx := context.Background()
		owner, other := h.newUser(), h.newUser()
		h.topUp(owner.ID, "50")
		h.topUp(other.ID, "50")
		keyID, key := h.createKey(owner, map[string]any{"name": "tuning"})
		line := `{"messages":[{"role":"user","content":"Say hi"},{"role":"assistant","content":"Hi there."}]}` + "\n"
		// Uploaded as the SDKs do: POST /v1/files, purpose fine-tune, passed
		// on to OpenAI (whose file id comes back), not kept in Beaver's store.
		up := h.upload(key, "fine-tune", "train.jsonl", strings.Repeat(line, 10)).want(200)
		file := struct{ ID string }{up.str("id")}
		if !strings.HasPrefix(file.ID, "file-") || up.str("purpose") != "fine-tune" {
			t.Fatalf("uploaded %s", up.Raw)
		}
		if local := h.do("GET", "/v1/files?purpose=fine-tune", key, nil).want(200); len(local.list("data")) != 0 {
			t.Fatalf("a training file was kept in Beaver's store: %s", local.Raw)
		}

		created := h.do("POST", "/v1/fine_tuning/jobs", key, map[string]any{"model": "gpt-4.1-mini", "training_file": file.ID,
			"suffix": "api", "method": map[string]any{"type": "supervised",
				"supervised": map[string]any{"hyperparameters": map[string]any{"n_epochs": 2}}}}).want(200)
		id := created.str("id")
		if created.str("object") != "fine_tuning.job" || created.str("status") != "validating_files" ||
			created.str("training_file") != file.ID || !strings.HasPrefix(id, "ftjob-") || len(st.started) != 1 {
			t.Fatalf("created %s", created.Raw)
		}
		bal := h.do("GET", "/account/balance", owner.Token, nil).want(200)
		if bal.num("reserved_micros") <= 0 || bal.num("available_micros") != bal.num("balance_micros")-bal.num("reserved_micros") {
			t.Fatalf("balance during the job %s", bal.Raw)
		}

		list := h.do("GET", "/v1/fine_tuning/jobs?limit=5", key, nil).want(200)
		if list.str("object") != "list" || len(list.list("data")) != 1 || list.get("has_more") != false {
			t.Fatalf("list %s", list.Raw)
		}
		if got := h.do("GET", "/v1/fine_tuning/jobs/"+id, key, nil).want(200); got.str("status") != "queued" {
			t.Fatalf("retrieve %s", got.Raw)
		}
		ev := h.do("GET", "/v1/fine_tuning/jobs/"+id+"/events?limit=10", key, nil).want(200)
		if ev.str("object") != "list" || len(ev.list("data")) != 2 {
			t.Fatalf("events %s", ev.Raw)
		}
		// Another account: 404 for everything of the job.
		h.do("GET", "/v1/fine_tuning/jobs/"+id, other.Token, nil).wantError(404, "not_found")
		h.do("POST", "/v1/fine_tuning/jobs/"+id+"/cancel", other.Token, nil).wantError(404, "not_found")
		h.do("GET", "/v1/fine_tuning/jobs/"+id+"/events", other.Token, nil).wantError(404, "not_found")
		if l := h.do("GET", "/v1/fine_tuning/jobs", other.Token, nil).want(200); len(l.list("data")) != 0 {
			t.Fatalf("another account lists %s", l.Raw)
		}

		// The workflow's steps: poll to the end, settle (twice: once charged).
		for i := 0; i < 5; i++ {
			r, err := svc.Poll(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if r.Terminal {
				break
			}
		}
		for i := 0; i < 2; i++ {
			if _, err := svc.Settle(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		after := h.do("GET", "/account/balance", owner.Token, nil).want(200)
		charged := int64(50_000_000) - after.num("balance_micros")
		if after.num("reserved_micros") != 0 || charged <= 0 {
			t.Fatalf("after settlement %s", after.Raw)
		}
		if k := h.do("GET", "/api-keys/"+keyID, owner.Token, nil).want(200); k.num("usage.spent_micros") != charged {
			t.Fatalf("key after settlement %s, want %d spent", k.Raw, charged)
		}
		if n := h.scalar("SELECT reserved_micros FROM api_keys WHERE id = ?", keyID); n != 0 {
			t.Fatalf("key reserves %d after settlement", n)
		}
		gen := h.do("GET", "/v1/generation?id="+id, owner.Token, nil).want(200)
		if gen.num("data.charged_micros") != charged || gen.num("data.prompt_tokens") != 10*(2+2+3+3)*2 {
			t.Fatalf("generation %s", gen.Raw)
		}

		// The fine-tuned model: the owner's to list and use; 404 for anyone else.
		ftModel := "openai/ft:gpt-4.1-mini:fake-org:api:fake0002"
		hasModel := func(token string) bool {
			for _, m := range h.do("GET", "/v1/models", token, nil).want(200).list("data") {
				if m.(map[string]any)["id"] == ftModel {
					return true
				}
			}
			return false
		}
		if !hasModel(key) || hasModel(other.Token) || hasModel("") {
			t.Fatal("the fine-tuned model must be in its owner's GET /v1/models only")
		}
		h.do("GET", "/v1/models/"+ftModel, key, nil).want(200)
		h.do("GET", "/v1/models/"+ftModel, other.Token, nil).wantError(404, "model_not_found")
		chat := map[string]any{"model": ftModel, "messages": []any{map[string]any{"role": "user", "content": "hello"}}}
		h.do("POST", "/v1/chat/completions", key, chat).want(200)
		h.do("POST", "/v1/chat/completions", other.Token, chat).wantError(404, "model_not_found")
	})
}

func TestFineTuningRefusedWithoutBalance(t *testing.T) {
	h, svc, st := newFineTuning(t, "sqlite")
	u := h.newUser()
	h.topUp(u.ID, "0.01")
	raw, err := svc.UploadTrainingFile(context.Background(), u.ID, "t.jsonl",
		[]byte(strings.Repeat(`{"messages":[{"role":"user","content":"`+strings.Repeat("word ", 200)+`"}]}`+"\n", 50)))
	if err != nil {
		t.Fatal(err)
	}
	var file struct{ ID string }
	_ = json.Unmarshal(raw, &file)
	r := h.do("POST", "/v1/fine_tuning/jobs", u.Token, map[string]any{"model": "gpt-4.1", "training_file": file.ID}).
		wantError(402, "insufficient_balance")
	if r.str("error.limit_source") != "balance" || len(st.started) != 0 {
		t.Fatalf("402 %s, %d workflows", r.Raw, len(st.started))
	}
	h.do("GET", "/v1/fine_tuning/jobs/ftjob-nope", u.Token, nil).wantError(404, "not_found")

	// A key's spend limit holds like the balance.
	h.topUp(u.ID, "100")
	_, limited := h.createKey(u, map[string]any{"name": "small", "spend_limit_usd": "0.01"})
	h.do("POST", "/v1/fine_tuning/jobs", limited, map[string]any{"model": "gpt-4.1", "training_file": file.ID}).
		wantError(402, "key_limit_exceeded")
	if n := h.scalar("SELECT COALESCE(SUM(reserved_micros), 0) FROM accounts WHERE id = ?", u.ID); n != 0 || len(st.started) != 0 {
		t.Fatalf("reserved %d after a refusal, %d workflows", n, len(st.started))
	}
}
