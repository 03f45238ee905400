package billing

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
)

// The monthly request quota is enforced in the database, like the balance,
// so that any number of replicas together admit at most the limit:
// accounts.monthly_requests counts every admitted request of usage_month.
//
// To keep the hot path off the database, an instance reserves request
// slots in blocks with one conditional UPDATE (count + k ≤ limit) and
// spends them from memory. Blocks start at one slot and grow while much of
// the quota is left (at most a sixteenth of what remains, and 64), so near
// the limit every request is counted on its own and no replica is refused
// while another sits on unused slots. Unused slots are given back when the
// account goes idle. A killed instance's unused slots stay counted until the
// month ends: the quota may under-admit by a block, never over-admit.
//
// Accounts without a limit are counted by the settlement commit instead (in
// the same batched UPDATE as the charge), which costs nothing extra.

const maxQuotaBlock = 64

type quota struct {
	mu    sync.Mutex
	month string
	slots int64 // counted in the database by this instance, not yet used
	block int64 // size of the next reservation
	used  time.Time
	gone  bool        // removed from the engine: get a new one
	stale atomic.Bool // the account changed (its limit may be lower): give slots back first
}

func (e *Engine) quotaFor(accountID string) *quota {
	e.mu.Lock()
	defer e.mu.Unlock()
	q, ok := e.quotas[accountID]
	if !ok {
		q = &quota{block: 1}
		e.quotas[accountID] = q
	}
	return q
}

// admitQuota takes one slot of the account's monthly quota. counted reports
// whether the request was counted here (limit > 0) rather than at commit.
func (e *Engine) admitQuota(ctx context.Context, accountID string, limit int64, now time.Time) (counted bool, err error) {
	if limit <= 0 {
		return false, nil
	}
	month := monthOf(now)
	q := e.lockedQuota(accountID)
	defer q.mu.Unlock()
	if q.month != month {
		// Slots of a past month were counted in that month's number; the new
		// month starts from the database's count.
		q.month, q.slots, q.block = month, 0, 1
	}
	if q.stale.Load() {
		if err := e.returnSlots(ctx, accountID, q); err != nil {
			return false, err
		}
		q.stale.Store(false)
	}
	if q.slots == 0 {
		if err := e.reserveSlots(ctx, accountID, q, limit, now); err != nil {
			return false, err
		}
	}
	q.slots--
	q.used = now
	return true, nil
}

// reserveSlots counts q.block more requests in the database when the limit
// allows it, else one; neither → 429 monthly_quota_exceeded.
func (e *Engine) reserveSlots(ctx context.Context, accountID string, q *quota, limit int64, now time.Time) error {
	for _, k := range []int64{q.block, 1} {
		var counts []int64
		err := e.db.WithContext(ctx).Raw(`UPDATE accounts
			SET monthly_requests = CASE WHEN usage_month = ? THEN monthly_requests + ? ELSE ? END, usage_month = ?
			WHERE id = ? AND (CASE WHEN usage_month = ? THEN monthly_requests ELSE 0 END) + ? <= ?
			RETURNING monthly_requests`, q.month, k, k, q.month, accountID, q.month, k, limit).Scan(&counts).Error
		if err != nil {
			return fmt.Errorf("billing: reserve monthly quota: %w", err)
		}
		if len(counts) == 1 {
			q.slots += k
			q.block = max(1, min(2*q.block, maxQuotaBlock, (limit-counts[0])/16))
			return nil
		}
		if k == 1 {
			break
		}
	}
	q.block = 1
	next := time.Date(now.UTC().Year(), now.UTC().Month()+1, 1, 0, 0, 0, 0, time.UTC)
	return apierr.QuotaExceeded(next.Sub(now), "monthly request quota of %d requests is used up; it resets at %s",
		limit, next.Format(time.RFC3339))
}

// returnSlots gives unused slots back to the database (q.mu held).
func (e *Engine) returnSlots(ctx context.Context, accountID string, q *quota) error {
	if q.slots == 0 {
		return nil
	}
	err := e.db.WithContext(ctx).Exec(`UPDATE accounts SET monthly_requests = monthly_requests - ?
		WHERE id = ? AND usage_month = ? AND monthly_requests >= ?`, q.slots, accountID, q.month, q.slots).Error
	if err != nil {
		return fmt.Errorf("billing: return monthly quota: %w", err)
	}
	q.slots, q.block = 0, 1
	return nil
}

// unquota gives a counted request's slot back (it never reached the
// upstream, or its settlement failed): the next admission spends it.
func (e *Engine) unquota(h *Hold) {
	if !h.quotaCounted {
		return
	}
	q := e.lockedQuota(h.AccountID)
	defer q.mu.Unlock()
	if q.month == "" {
		q.month, q.block = h.quotaMonth, 1
	}
	if q.month == h.quotaMonth {
		q.slots++ // a slot of a past month is void: that month's count keeps it
	}
}

// lockedQuota returns the account's quota state, locked.
func (e *Engine) lockedQuota(accountID string) *quota {
	for {
		q := e.quotaFor(accountID)
		q.mu.Lock()
		if !q.gone {
			return q
		}
		q.mu.Unlock()
	}
}

// keepQuotas returns the slots of accounts idle for longer than IdleReturn
// (or all of them when all is set, at shutdown).
func (e *Engine) keepQuotas(ctx context.Context, now time.Time, all bool) {
	e.mu.Lock()
	ids := make([]string, 0, len(e.quotas))
	qs := make([]*quota, 0, len(e.quotas))
	for id, q := range e.quotas {
		ids, qs = append(ids, id), append(qs, q)
	}
	e.mu.Unlock()
	for i, q := range qs {
		q.mu.Lock()
		if q.slots > 0 && (all || q.stale.Load() || now.Sub(q.used) > e.opts.IdleReturn) {
			if err := e.returnSlots(ctx, ids[i], q); err != nil {
				e.log.Warn("return monthly quota slots", "account", ids[i], "err", err)
			} else {
				q.stale.Store(false)
			}
		}
		if q.slots == 0 && now.Sub(q.used) > e.opts.IdleReturn {
			e.mu.Lock()
			if e.quotas[ids[i]] == q {
				delete(e.quotas, ids[i])
			}
			e.mu.Unlock()
			q.gone = true
		}
		q.mu.Unlock()
	}
}
