package worker_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/activities"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/responses"
	"github.com/beaver-gateway/beaver/models"
	"github.com/beaver-gateway/beaver/workflows"
)

// Background responses on the real worker: a queued response runs through
// the worker's gateway to completed, charged once; one cancelled before it
// ran stays free. BEAVER_RECORD_HISTORIES=1 records both runs for the
// replay test.
func TestBackgroundResponseEndToEnd(t *testing.T) {
	e := startE2E(t)
	ctx := context.Background()
	acct := e.account(t, "background@beaver.test", "correct-horse-battery-9")
	if _, _, err := (&billing.Ledger{DB: e.db}).Post(ctx, billing.Entry{AccountID: acct.ID, Type: models.EntryTopUp,
		AmountMicros: 10_000_000, Reference: "e2e:background"}); err != nil {
		t.Fatal(err)
	}
	key, _, err := e.auth.CreateKey(ctx, acct.ID, "background", auth.KeyPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	queue := func(id, status string) {
		t.Helper()
		req, err := responses.ParseRequest([]byte(`{"model":"openai/gpt-4o-mini","input":"hello [[words:4]]","background":true}`))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		resp, _ := json.Marshal(responses.Queued(req, id, now.Unix()))
		if status != responses.StatusQueued {
			resp, _ = responses.WithStatus(resp, status, nil)
		}
		job, _ := json.Marshal(responses.NewJob(req, "", ""))
		jobText := string(job)
		if err := e.db.Create(&models.StoredResponse{ID: id, AccountID: acct.ID, APIKeyID: &key.ID, Model: req.Chat.Model,
			Status: status, Input: "[]", Response: string(resp), CreatedAt: now, ExpiresAt: now.Add(time.Hour),
			Background: true, Job: &jobText}).Error; err != nil {
			t.Fatal(err)
		}
	}

	t.Run("completed", func(t *testing.T) {
		id := "resp_e2ebackground1"
		queue(id, responses.StatusQueued)
		if err := e.wf.StartBackgroundResponse(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := e.wf.StartBackgroundResponse(ctx, id); err != nil { // a retried start: the same run
			t.Fatal(err)
		}
		var res activities.RunBackgroundResponseResult
		e.result(t, workflows.BackgroundResponseWorkflowID(id), "background_response_completed", &res)
		var row models.StoredResponse
		e.db.Where("id = ?", id).Take(&row)
		var log models.UsageLog
		if err := e.db.Where("id = ?", responses.GenerationID(id)).Take(&log).Error; err != nil {
			t.Fatal(err)
		}
		if res.Status != responses.StatusCompleted || row.Status != responses.StatusCompleted || res.ChargedMicros != log.ChargedMicros ||
			log.ChargedMicros <= 0 || log.CompletionTokens != 4 {
			t.Fatalf("result %+v, row %s, usage log %+v", res, row.Status, log)
		}
		if err := e.wf.CancelBackgroundResponse(ctx, id); err != nil { // ended: nothing to cancel
			t.Fatal(err)
		}
	})

	t.Run("cancelled before it ran", func(t *testing.T) {
		id := "resp_e2ebackground2"
		queue(id, responses.StatusCancelled)
		if err := e.wf.StartBackgroundResponse(ctx, id); err != nil {
			t.Fatal(err)
		}
		var res activities.RunBackgroundResponseResult
		e.result(t, workflows.BackgroundResponseWorkflowID(id), "background_response_cancelled", &res)
		var n int64
		e.db.Model(&models.UsageLog{}).Where("id = ?", responses.GenerationID(id)).Count(&n)
		if res.Status != responses.StatusCancelled || n != 0 {
			t.Fatalf("result %+v, usage logs %d", res, n)
		}
	})
}
