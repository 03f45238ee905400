package worker_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/finetune"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/internal/temporalx"
	"github.com/beaver-gateway/beaver/models"
	"github.com/beaver-gateway/beaver/workflows"
)

// A fine-tuning job on the real worker and a Temporal dev server: created
// through the service (the hold), followed by FineTuningJobWorkflow on the
// fake OpenAI (each poll moves the job one state on), settled once.
func TestFineTuningEndToEnd(t *testing.T) {
	e := startE2E(t)
	ctx := context.Background()
	acct := e.account(t, "tuner@example.com", "tuner password 123")
	const start = 20_000_000
	if _, _, err := (&billing.Ledger{DB: e.db}).Post(ctx, billing.Entry{AccountID: acct.ID, Type: models.EntryTopUp,
		AmountMicros: start, Reference: "e2e-ft-topup"}); err != nil {
		t.Fatal(err)
	}
	starter := workflows.NewStarter(workflows.StarterOptions{Conn: temporalx.ConnFor(e.c, quiet), Auth: e.auth,
		Log: quiet, FineTuningPollEvery: 50 * time.Millisecond})
	ft := finetune.New(finetune.Options{DB: e.db, Catalog: e.catalog, Endpoints: e.reg, Workflows: starter, Log: quiet})
	line := `{"messages":[{"role":"user","content":"Say hi"},{"role":"assistant","content":"Hi there."}]}` + "\n"
	rawFile, err := ft.UploadTrainingFile(ctx, acct.ID, "train.jsonl", []byte(strings.Repeat(line, 12)))
	if err != nil {
		t.Fatal(err)
	}
	var file struct{ ID string }
	_ = json.Unmarshal(rawFile, &file)
	rawJob, err := ft.Create(ctx, finetune.CreateInput{AccountID: acct.ID,
		Body: []byte(`{"model":"gpt-4o-mini","training_file":"` + file.ID + `","suffix":"e2e","hyperparameters":{"n_epochs":3}}`)})
	if err != nil {
		t.Fatal(err)
	}
	var job struct{ ID string }
	_ = json.Unmarshal(rawJob, &job)

	var res workflows.FineTuningJobResult
	e.result(t, workflows.FineTuningJobWorkflowID(job.ID), "fine_tuning_succeeded", &res)
	var row models.FineTuningJob
	if err := e.db.Where("id = ?", job.ID).Take(&row).Error; err != nil {
		t.Fatal(err)
	}
	trained := int64(12*(2+2+3+3)) * 3 // words + 3 per message, 3 epochs
	want := pricing.Cost(row.TrainingPriceMicros, 0, 0, trained, 0)
	if res.Status != "succeeded" || res.TrainedTokens != trained || res.ChargedMicros != want || row.SettledAt == nil ||
		res.FineTunedModel != "openai/ft:gpt-4o-mini:fake-org:e2e:fake0002" {
		t.Fatalf("result %+v, want %d tokens charged %d", res, trained, want)
	}
	var a models.Account
	if err := e.db.Where("id = ?", acct.ID).Take(&a).Error; err != nil {
		t.Fatal(err)
	}
	if a.BalanceMicros != start-want || a.ReservedMicros != 0 {
		t.Fatalf("balance %d reserved %d, want %d and 0", a.BalanceMicros, a.ReservedMicros, start-want)
	}
	if _, err := e.catalog.ResolveFor(res.FineTunedModel, acct.ID); err != nil {
		t.Fatalf("the owner's fine-tuned model: %v", err)
	}
}
