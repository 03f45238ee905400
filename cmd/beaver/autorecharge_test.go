package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

type startRecorder struct {
	mu  sync.Mutex
	ids []string
}

func (s *startRecorder) StartAutoRecharge(_ context.Context, accountID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids = append(s.ids, accountID)
	return nil
}

// Auto-recharge starts only when a charge crosses the account's own
// auto-recharge threshold, and only when it is enabled.
func TestRechargeTriggerCrossesOwnThreshold(t *testing.T) {
	d := testenv.Open(t, db.SQLite)
	now := time.Now().UTC()
	mk := func(enabled bool, threshold int64) string {
		a := models.Account{ID: ids.New("acct"), Email: ids.New("u") + "@x.test", PasswordHash: "x", Role: "user", Plan: "free",
			Active: true, LowBalanceThresholdMicros: 1_000_000, CreatedAt: now, UpdatedAt: now}
		a.EmailLower = a.Email
		if err := d.Create(&a).Error; err != nil {
			t.Fatal(err)
		}
		if err := d.Exec(`INSERT INTO auto_recharge (account_id, enabled, threshold_micros, amount_micros, updated_at) VALUES (?, ?, ?, ?, ?)`,
			a.ID, enabled, threshold, 10_000_000, now).Error; err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	on, off := mk(true, 5_000_000), mk(false, 5_000_000)
	rec := &startRecorder{}
	tr := newRechargeTrigger(d, rec)
	tr.onCharge(on, 6_000_000, 5_500_000)  // above the threshold: nothing
	tr.onCharge(on, 5_500_000, 4_900_000)  // crosses 5 USD (above the 1 USD alert threshold): start
	tr.onCharge(on, 4_900_000, 4_800_000)  // already below: nothing
	tr.onCharge(off, 5_500_000, 4_900_000) // disabled: nothing
	if len(rec.ids) != 1 || rec.ids[0] != on {
		t.Fatalf("starts: %v", rec.ids)
	}
}
