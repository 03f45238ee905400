package retention_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/retention"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

func TestCutoffIsAWholeUTCDay(t *testing.T) {
	now := time.Date(2030, 3, 1, 23, 59, 59, 0, time.FixedZone("UTC+5", 5*3600)) // 18:59:59 UTC
	for days, want := range map[int]time.Time{
		0:  time.Date(2030, 3, 1, 0, 0, 0, 0, time.UTC),
		1:  time.Date(2030, 2, 28, 0, 0, 0, 0, time.UTC),
		30: time.Date(2030, 1, 30, 0, 0, 0, 0, time.UTC),
	} {
		if got := retention.Cutoff(now, days); !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("Cutoff(%s, %d) = %s, want %s", now, days, got, want)
		}
	}
}

type fixture struct {
	d       *db.DB
	account string
}

func newFixture(t *testing.T, dialect string) *fixture {
	d := testenv.Open(t, dialect)
	now := time.Now().UTC()
	a := models.Account{ID: ids.New("acct"), Email: ids.New("u") + "@example.com", PasswordHash: "x", Role: "user",
		Plan: "free", Active: true, EmailVerified: true, CreatedAt: now, UpdatedAt: now}
	a.EmailLower = a.Email
	if err := d.Create(&a).Error; err != nil {
		t.Fatal(err)
	}
	return &fixture{d: d, account: a.ID}
}

// log writes a usage log created at, and its ledger entry.
func (f *fixture) log(t *testing.T, id string, at time.Time) {
	t.Helper()
	if err := f.d.Create(&models.UsageLog{ID: id, AccountID: f.account, Model: "openai/gpt-4o-mini", Provider: "openai",
		PriceVersion: 1, ChargedMicros: 7, CreatedAt: at}).Error; err != nil {
		t.Fatal(err)
	}
	if err := f.d.Create(&models.LedgerEntry{ID: ids.New("txn"), AccountID: f.account, Type: models.EntryCharge,
		AmountMicros: -7, Reference: "charge:" + id, CreatedAt: at}).Error; err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) kept(t *testing.T) map[string]bool {
	t.Helper()
	var got []string
	if err := f.d.Model(&models.UsageLog{}).Order("id").Pluck("id", &got).Error; err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, id := range got {
		out[id] = true
	}
	return out
}

// Whole UTC days are kept, older logs go in batches (each its own
// statement, progress after each), the ledger stays, and a second run
// finds nothing more.
func TestPruneDeletesWholeDaysInBatches(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newFixture(t, dialect)
			now := time.Date(2030, 6, 10, 15, 0, 0, 0, time.UTC)
			cutoff := time.Date(2030, 6, 3, 0, 0, 0, 0, time.UTC) // 7 days kept
			for i := range 7 {
				f.log(t, fmt.Sprintf("old-%d", i), cutoff.Add(-time.Duration(i+1)*time.Hour))
			}
			f.log(t, "edge", cutoff) // the first instant of the oldest day kept
			f.log(t, "recent", now.Add(-time.Hour))
			var progress []int64
			res, err := retention.Prune(context.Background(), f.d.DB, now, 7, 3, func(n int64) { progress = append(progress, n) })
			if err != nil {
				t.Fatal(err)
			}
			if res.Deleted != 7 || !res.Cutoff.Equal(cutoff) || !res.Before.Equal(cutoff) || res.HeldBy != "" {
				t.Fatalf("result %+v, want 7 deleted before %s", res, cutoff)
			}
			if fmt.Sprint(progress) != "[3 6 7]" {
				t.Errorf("progress %v, want [3 6 7]: one report per batch of 3", progress)
			}
			if kept := f.kept(t); len(kept) != 2 || !kept["edge"] || !kept["recent"] {
				t.Errorf("kept %v, want edge and recent", kept)
			}
			var ledger int64
			if err := f.d.Model(&models.LedgerEntry{}).Count(&ledger).Error; err != nil || ledger != 9 {
				t.Errorf("ledger entries %d (%v), want all 9 kept", ledger, err)
			}
			res, err = retention.Prune(context.Background(), f.d.DB, now, 7, 3, nil)
			if err != nil || res.Deleted != 0 {
				t.Errorf("second run: %+v, %v; want nothing more", res, err)
			}
		})
	}
}

// A batch or background response still running may be retried, and its
// retry knows a line was charged only by its usage log: a prune never
// reaches past the oldest running job, and catches up once it is over.
func TestPruneSparesUsageLogsOfRunningDurableJobs(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			f := newFixture(t, dialect)
			now := time.Date(2030, 6, 10, 15, 0, 0, 0, time.UTC)
			cutoff := retention.Cutoff(now, 1)
			jobStart := cutoff.Add(-48 * time.Hour)
			f.log(t, "before-job", jobStart.Add(-time.Minute))
			f.log(t, "batch-line", jobStart.Add(time.Minute)) // a line charged, its batch still running
			f.log(t, "response", jobStart.Add(2*time.Hour))
			batch := models.Batch{ID: "batch_running", AccountID: f.account, Endpoint: "/v1/chat/completions", InputFileID: "file_x",
				CompletionWindow: "24h", Status: "in_progress", CreatedAt: jobStart, ExpiresAt: jobStart.Add(24 * time.Hour)}
			if err := f.d.Create(&batch).Error; err != nil {
				t.Fatal(err)
			}
			resp := models.StoredResponse{ID: "resp_running", AccountID: f.account, Model: "openai/gpt-4o-mini",
				Status: "in_progress", Input: "[]", Response: "{}", CreatedAt: jobStart.Add(time.Hour),
				ExpiresAt: now.Add(time.Hour), Background: true}
			if err := f.d.Create(&resp).Error; err != nil {
				t.Fatal(err)
			}

			res, err := retention.Prune(context.Background(), f.d.DB, now, 1, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Deleted != 1 || !res.Before.Equal(jobStart) || res.HeldBy != "batch batch_running" {
				t.Fatalf("result %+v, want 1 deleted, held at %s by the batch", res, jobStart)
			}
			if kept := f.kept(t); len(kept) != 2 || !kept["batch-line"] || !kept["response"] {
				t.Fatalf("kept %v, want the running jobs' usage logs", kept)
			}

			// The batch ends: the background response, younger, holds next.
			if err := f.d.Model(&models.Batch{}).Where("id = ?", batch.ID).Update("status", "completed").Error; err != nil {
				t.Fatal(err)
			}
			res, err = retention.Prune(context.Background(), f.d.DB, now, 1, 0, nil)
			if err != nil || res.Deleted != 1 || res.HeldBy != "background response resp_running" {
				t.Fatalf("after the batch: %+v, %v; want the batch's log deleted, held by the response", res, err)
			}
			if err := f.d.Model(&models.StoredResponse{}).Where("id = ?", resp.ID).Update("status", "completed").Error; err != nil {
				t.Fatal(err)
			}
			res, err = retention.Prune(context.Background(), f.d.DB, now, 1, 0, nil)
			if err != nil || res.Deleted != 1 || res.HeldBy != "" || len(f.kept(t)) != 0 {
				t.Fatalf("after both: %+v, %v, kept %v; want everything old deleted", res, err, f.kept(t))
			}
		})
	}
}
