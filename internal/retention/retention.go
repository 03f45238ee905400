// Package retention deletes usage logs past BEAVER_USAGE_LOG_RETENTION_DAYS.
// Only usage_logs rows go: the ledger (every charge, with its amount and
// balance) is kept forever, and so are the aggregates written at
// settlement.
//
// Durable jobs decide whether a line was charged by whether its usage log
// exists (gateway.Durable: a batch line, a background response retried
// after a crash). Deleting the usage log of a job still running would make
// its retry charge the recorded answer a second time, so a prune never
// reaches past the creation of the oldest batch or background response
// still running: every usage log such a job wrote is newer than the job.
package retention

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// BatchSize is how many usage logs one statement deletes: each batch is
// its own short transaction, so a backlog never holds locks for long.
const BatchSize = 5000

// Cutoff is the start (00:00 UTC) of the oldest whole day kept when days
// days are kept: usage logs created before it go. days 0 keeps only today.
func Cutoff(now time.Time, days int) time.Time {
	y, m, d := now.UTC().Date()
	return time.Date(y, m, d-days, 0, 0, 0, 0, time.UTC)
}

// Result says what one prune did.
type Result struct {
	Cutoff time.Time // from the retention: whole UTC days
	// Before is the bound actually used: Cutoff, or the creation of the
	// oldest durable job still running when that is earlier (HeldBy names
	// it).
	Before  time.Time
	HeldBy  string
	Deleted int64
}

// Prune deletes the usage logs created before Cutoff(now, days), capped by
// the oldest running durable job, batchSize rows per statement (BatchSize
// when 0). progress, when set, is told the running total after each
// statement (an activity's heartbeat). It is idempotent: a retry deletes
// what is left.
func Prune(ctx context.Context, d *gorm.DB, now time.Time, days, batchSize int, progress func(deleted int64)) (Result, error) {
	if days < 0 {
		return Result{}, fmt.Errorf("retention: %d days", days)
	}
	if batchSize <= 0 {
		batchSize = BatchSize
	}
	res := Result{Cutoff: Cutoff(now, days)}
	var err error
	res.Before, res.HeldBy, err = horizon(ctx, d, res.Cutoff)
	if err != nil {
		return res, err
	}
	for {
		r := d.WithContext(ctx).Exec(`DELETE FROM usage_logs WHERE id IN
			(SELECT id FROM usage_logs WHERE created_at < ? ORDER BY created_at LIMIT ?)`, res.Before, batchSize)
		if r.Error != nil {
			return res, fmt.Errorf("retention: delete usage logs before %s: %w", res.Before.Format(time.RFC3339), r.Error)
		}
		res.Deleted += r.RowsAffected
		if progress != nil {
			progress(res.Deleted)
		}
		if r.RowsAffected < int64(batchSize) {
			return res, nil
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
	}
}

// running are the durable jobs whose retries read their usage logs, with
// their statuses while they may still run (the migration's partial indexes).
var running = []struct {
	table, kind string
	statuses    []string
}{
	{"batches", "batch", []string{"validating", "in_progress", "finalizing", "cancelling"}},
	{"stored_responses", "background response", []string{"queued", "in_progress"}},
}

// horizon is cutoff, or the creation of the oldest running durable job
// when that is earlier, and that job ("" when cutoff stands).
func horizon(ctx context.Context, d *gorm.DB, cutoff time.Time) (time.Time, string, error) {
	before, by := cutoff, ""
	for _, j := range running {
		var rows []struct {
			ID        string
			CreatedAt time.Time
		}
		if err := d.WithContext(ctx).Table(j.table).Select("id", "created_at").Where("status IN ?", j.statuses).
			Order("created_at").Limit(1).Find(&rows).Error; err != nil {
			return time.Time{}, "", fmt.Errorf("retention: oldest running %s: %w", j.kind, err)
		}
		if len(rows) == 1 && rows[0].CreatedAt.Before(before) {
			before, by = rows[0].CreatedAt.UTC(), j.kind+" "+rows[0].ID
		}
	}
	return before, by, nil
}
