package main

import (
	"context"
	"sync"
	"time"

	"github.com/beaver-gateway/beaver/internal/db"
)

// rechargeTrigger starts an account's AutoRechargeWorkflow when a charge
// takes its balance below the auto-recharge threshold. It is called after
// every settlement commit, so thresholds are cached in memory (a changed
// setting applies within rechargeCacheTTL).
type rechargeTrigger struct {
	db      *db.DB
	starter interface {
		StartAutoRecharge(ctx context.Context, accountID string) error
	}

	mu     sync.Mutex
	cached map[string]rechargeSetting
}

type rechargeSetting struct {
	threshold int64 // 0 = auto-recharge off
	loaded    time.Time
}

const rechargeCacheTTL = 30 * time.Second

func newRechargeTrigger(d *db.DB, starter interface {
	StartAutoRecharge(ctx context.Context, accountID string) error
}) *rechargeTrigger {
	return &rechargeTrigger{db: d, starter: starter, cached: map[string]rechargeSetting{}}
}

func (r *rechargeTrigger) onCharge(accountID string, before, after int64) {
	th := r.threshold(accountID)
	if th == 0 || before < th || after >= th {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = r.starter.StartAutoRecharge(ctx, accountID) // one per account at a time; a failure waits for the next crossing
}

func (r *rechargeTrigger) threshold(accountID string) int64 {
	r.mu.Lock()
	s, ok := r.cached[accountID]
	r.mu.Unlock()
	if ok && time.Since(s.loaded) < rechargeCacheTTL {
		return s.threshold
	}
	var rows []struct {
		ThresholdMicros int64
		Enabled         bool
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.db.WithContext(ctx).Table("auto_recharge").Select("threshold_micros", "enabled").
		Where("account_id = ?", accountID).Scan(&rows).Error; err != nil {
		return 0
	}
	s = rechargeSetting{loaded: time.Now()}
	if len(rows) == 1 && rows[0].Enabled {
		s.threshold = rows[0].ThresholdMicros
	}
	r.mu.Lock()
	r.cached[accountID] = s
	r.mu.Unlock()
	return s.threshold
}
