package billing

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/models"
)

// How leases behave across instances.
//
// Renewal. An instance renews its lease rows every LeaseTTL/5 (a settlement
// renews the row it charges); a row expires LeaseTTL after its last
// renewal. Admission spends a lease from memory only within LeaseTTL/2 of
// the start of the last renewal that succeeded (ensureRenewed), so an
// instance that cannot renew stops spending rows that may be returned as
// expired, given clocks that differ by less than LeaseTTL/2.
//
// Expiry. An instance that stopped (kill -9, crash) leaves rows that
// expire within LeaseTTL. Every instance returns the expired rows of every
// instance each SweepEvery; an admission short of balance returns those of
// its account at once; the Temporal schedule sweeps too. Each return is a
// transaction of conditional statements (the row is still expired and as
// read), so any number of instances may race on one row.
//
// Parking. A lease that had nothing in flight for ParkAfter is parked: its
// owner sets idle_since (and bumps version). Other instances may then take
// money from a parked row, with an update conditional on idle_since and on
// the version and amount they read (bumping version). Before it uses the
// lease again the owner claims it: one statement clears idle_since and
// returns what is left of the row, which is all the owner may spend from
// then on. Owner and taker serialise on the row, so money taken back is
// never spent by the owner, and money the owner holds for a request is
// never taken (it parks only with nothing in flight and claims before
// holding). Only a lease idle for ParkAfter costs these round trips;
// back-to-back requests never park.

// ensureRenewed renews this instance's leases when the last renewal is too
// old for admission to spend them from memory (see Renewal above).
func (e *Engine) ensureRenewed(ctx context.Context) error {
	if time.Now().UnixNano() < e.validUntil.Load() {
		return nil
	}
	return e.renew(ctx, false)
}

// leaseLoop renews this instance's leases.
func (e *Engine) leaseLoop() {
	defer e.done.Done()
	t := time.NewTicker(e.opts.LeaseTTL / 5)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), e.opts.LeaseTTL/2)
		if err := e.renew(ctx, true); err != nil {
			e.log.Warn("renew billing leases", "err", err)
		}
		cancel()
	}
}

// sweepLoop returns expired leases of any instance.
func (e *Engine) sweepLoop() {
	defer e.done.Done()
	t := time.NewTicker(e.opts.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		n, err := sweepExpired(ctx, e.db.DB)
		cancel()
		if err != nil {
			e.log.Warn("sweep expired billing leases", "err", err)
		} else if n > 0 {
			e.log.Info("returned expired billing leases of stopped instances", "leases", n)
		}
	}
}

// renewIDs is how many rows one renewal statement names.
const renewIDs = 500

// renew moves the expiry of this instance's lease rows, and forgets the
// rows that are gone (returned as expired by another instance: their open
// holds then settle straight against the balance). Unless force, it does
// nothing when a concurrent call renewed meanwhile.
//
// Rows are named by id, not by instance: a process restarted with the same
// BEAVER_INSTANCE_ID must not keep its predecessor's rows alive. On
// PostgreSQL, rows locked by someone else are skipped rather than waited
// for, so a renewal can never deadlock with a settlement that locks several
// of our rows in another order; such a row is being settled (which renews
// it) or returned.
func (e *Engine) renew(ctx context.Context, force bool) error {
	e.renewMu.Lock()
	defer e.renewMu.Unlock()
	start := time.Now()
	if !force && start.UnixNano() < e.validUntil.Load() {
		return nil
	}
	type row struct {
		l  *lease
		id string
	}
	var ours []row
	for _, l := range e.snapshot() {
		l.mu.Lock()
		if l.id != "" {
			ours = append(ours, row{l, l.id})
		}
		l.mu.Unlock()
	}
	q := `UPDATE balance_leases SET expires_at = ? WHERE id IN ?`
	if e.db.Dialect == db.Postgres {
		q = `UPDATE balance_leases SET expires_at = ? WHERE id IN (SELECT id FROM balance_leases WHERE id IN ? FOR UPDATE SKIP LOCKED)`
	}
	expires := start.UTC().Add(e.opts.LeaseTTL)
	have := map[string]bool{}
	for i := 0; i < len(ours); i += renewIDs {
		chunk := ours[i:min(i+renewIDs, len(ours))]
		ids := make([]string, len(chunk))
		for j, r := range chunk {
			ids[j] = r.id
		}
		if err := e.plain.WithContext(ctx).Exec(q, expires, ids).Error; err != nil {
			return fmt.Errorf("billing: renew leases: %w", err)
		}
		var found []string
		if err := e.plain.WithContext(ctx).Model(&models.BalanceLease{}).Where("id IN ?", ids).Pluck("id", &found).Error; err != nil {
			return fmt.Errorf("billing: renew leases: %w", err)
		}
		for _, id := range found {
			have[id] = true
		}
	}
	for _, r := range ours {
		if have[r.id] {
			continue
		}
		r.l.mu.Lock()
		r.l.waitParking()
		if r.l.id == r.id {
			if r.l.holds > 0 {
				e.log.Warn("billing lease was returned as expired while in use", "account", r.l.key.account)
			}
			r.l.lose()
		}
		r.l.mu.Unlock()
	}
	e.validUntil.Store(start.Add(e.opts.LeaseTTL / 2).UnixNano())
	return nil
}

// lose forgets a row that is gone (l.mu held): open holds settle straight
// against the balance (see commit).
func (l *lease) lose() {
	l.id, l.version, l.granted, l.held, l.parked = "", 0, 0, 0, false
	l.gen++
}

// stopping reports whether Close (or a crash in tests) began.
func (e *Engine) stopping() bool {
	select {
	case <-e.stop:
		return true
	default:
		return false
	}
}

// armPark schedules a park check of l after d (l.mu held).
func (e *Engine) armPark(l *lease, d time.Duration) {
	if l.parkArmed || l.parked || l.parking || l.id == "" {
		return
	}
	l.parkArmed = true
	time.AfterFunc(d, func() { e.park(l) })
}

// park marks l's row idle once it had nothing in flight for ParkAfter, so
// that other instances may take from it. The write happens outside l.mu,
// so that reclaimIdle, which only tries that lock, still finds the lease
// idle meanwhile; whoever uses or returns the lease waits for the write
// (waitParking), and nobody holds the lease before it is done.
func (e *Engine) park(l *lease) {
	l.mu.Lock()
	l.parkArmed = false
	if l.gone || l.parked || l.parking || l.holds > 0 || l.id == "" || e.stopping() {
		l.mu.Unlock()
		return
	}
	if wait := e.opts.ParkAfter - time.Since(l.used); wait > 0 {
		e.armPark(l, wait)
		l.mu.Unlock()
		return
	}
	id, version := l.id, l.version
	l.parking = true
	l.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := time.Now().UTC()
	r := e.db.WithContext(ctx).Exec(`UPDATE balance_leases SET idle_since = ?, version = version + 1, expires_at = ?
		WHERE id = ? AND version = ?`, now, now.Add(e.opts.LeaseTTL), id, version)

	l.mu.Lock()
	defer l.mu.Unlock()
	l.parking = false
	l.parkDone.Broadcast()
	switch {
	case r.Error != nil:
		e.log.Warn("park billing lease", "account", l.key.account, "err", r.Error) // the keeper arms it again
	case r.RowsAffected == 0:
		// Only the owner changes an unparked row's version: it is gone.
		if err := e.resync(ctx, l); err != nil {
			e.log.Warn("park billing lease", "account", l.key.account, "err", err)
		}
	default:
		l.parked, l.version = true, version+1
	}
}

// waitParking waits for a park write of l to finish (l.mu held). It lets
// go of l.mu while it waits: check l's state only after it.
func (l *lease) waitParking() {
	for l.parking {
		l.parkDone.Wait()
	}
}

// claim takes a parked lease back into use (l.mu held, no holds): it
// clears idle_since, after which nobody else takes from the row, and reads
// in the same statement what is left of it.
func (e *Engine) claim(ctx context.Context, l *lease) error {
	var rows []struct{ AmountMicros, Version int64 }
	err := e.db.WithContext(ctx).Raw(`UPDATE balance_leases SET idle_since = NULL, expires_at = ? WHERE id = ?
		RETURNING amount_micros, version`, time.Now().UTC().Add(e.opts.LeaseTTL), l.id).Scan(&rows).Error
	if err != nil {
		return fmt.Errorf("billing: claim lease: %w", err)
	}
	if len(rows) == 0 {
		l.lose() // taken whole, or returned as expired
		return nil
	}
	l.granted, l.version, l.parked = rows[0].AmountMicros, rows[0].Version, false
	return nil
}

// resync reads l's row after another instance changed or removed it
// (l.mu held, no holds).
func (e *Engine) resync(ctx context.Context, l *lease) error {
	var row models.BalanceLease
	err := e.db.WithContext(ctx).Where("id = ?", l.id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		l.lose()
		return nil
	}
	if err != nil {
		return fmt.Errorf("billing: read lease: %w", err)
	}
	l.granted, l.version, l.parked = row.AmountMicros, row.Version, row.IdleSince != nil
	return nil
}

// takeBack returns to the account, for an admission short of short on
// the lease with row mine, what leases reserve for it that nobody can be
// using: all expired rows of the account (their instance stopped renewing
// them) and, up to short, parked rows (other instances', and ours that
// reclaimIdle could not lock). busy is what other instances hold in rows
// that are neither: in flight, or about to be parked.
func (e *Engine) takeBack(ctx context.Context, k leaseKey, mine string, short int64) (took, busy int64, err error) {
	now := time.Now().UTC()
	var rows []models.BalanceLease
	if err := e.db.WithContext(ctx).Where("account_id = ? AND id <> ? AND (instance_id <> ? OR expires_at < ? OR idle_since IS NOT NULL)",
		k.account, mine, e.instance, now).Find(&rows).Error; err != nil {
		return 0, 0, fmt.Errorf("billing: read leases of account: %w", err)
	}
	// The key's own leases first: taking from them frees its spend limit too.
	sort.Slice(rows, func(i, j int) bool {
		if a, b := rows[i].APIKeyID == k.key, rows[j].APIKeyID == k.key; a != b {
			return a
		}
		return rows[i].ID < rows[j].ID
	})
	for i := range rows {
		row := &rows[i]
		switch {
		case row.ExpiresAt.Before(now):
			ok, err := takeRow(ctx, e.db.DB, row, row.AmountMicros, "expires_at < ?", now)
			if err != nil {
				return took, busy, err
			}
			if ok {
				took += row.AmountMicros
				e.log.Info("returned an expired billing lease at admission", "account", k.account,
					"instance", row.InstanceID, "micros", row.AmountMicros)
			}
		case row.IdleSince != nil:
			if took >= short || row.AmountMicros == 0 {
				continue
			}
			take := min(row.AmountMicros, short-took)
			ok, err := takeRow(ctx, e.db.DB, row, take, "idle_since IS NOT NULL")
			if err != nil {
				return took, busy, err
			}
			if ok {
				took += take
			} else {
				busy += row.AmountMicros // claimed by its owner meanwhile
			}
		default:
			busy += row.AmountMicros
		}
	}
	return took, busy, nil
}

// awaitParked waits, for an admission that would be refused while other
// instances hold leases of the account that are neither parked nor
// expired, until one of them is parked, expires or is returned. It reports
// false when waiting longer is pointless (until passed, ctx ended, engine
// stopping). Concurrent admissions of one account share the polling.
func (e *Engine) awaitParked(ctx context.Context, account string, until time.Time) bool {
	deadline := time.NewTimer(time.Until(until))
	defer deadline.Stop()
	e.mu.Lock()
	ch, waiting := e.parkWaits[account]
	if !waiting {
		ch = make(chan struct{})
		e.parkWaits[account] = ch
	}
	e.mu.Unlock()
	if waiting {
		select {
		case <-ch:
			return true
		case <-ctx.Done():
		case <-deadline.C:
		case <-e.stop:
		}
		return false
	}
	defer func() {
		e.mu.Lock()
		delete(e.parkWaits, account)
		e.mu.Unlock()
		close(ch)
	}()
	poll := min(max(e.opts.ParkAfter/4, 5*time.Millisecond), 50*time.Millisecond)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return false
		case <-e.stop:
			return false
		case <-tick.C:
		}
		now := time.Now().UTC()
		var rows []models.BalanceLease
		if err := e.db.WithContext(ctx).Select("amount_micros", "idle_since", "expires_at").
			Where("account_id = ? AND instance_id <> ?", account, e.instance).Find(&rows).Error; err != nil {
			e.log.Warn("read leases of account", "account", account, "err", err)
			return false
		}
		var busy int64
		for _, r := range rows {
			if r.AmountMicros > 0 && (r.IdleSince != nil || r.ExpiresAt.Before(now)) {
				return true
			}
			busy += r.AmountMicros
		}
		if busy == 0 {
			return true // returned to the account
		}
	}
}

// takeRow moves take micro-USD of a lease row back to its account (and
// key) if the row is still as read (version, amount) and still meets cond,
// deleting it when take is all of it. It reports false, having changed
// nothing, when the row changed. Rows are locked in the order every billing
// transaction uses (account, key, lease), so none of them can deadlock
// another.
func takeRow(ctx context.Context, d *gorm.DB, row *models.BalanceLease, take int64, cond string, args ...any) (bool, error) {
	err := d.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if take > 0 {
			r := tx.Exec(`UPDATE accounts SET reserved_micros = reserved_micros - ? WHERE id = ? AND reserved_micros >= ?`,
				take, row.AccountID, take)
			if r.Error != nil {
				return r.Error
			}
			if r.RowsAffected == 0 {
				return errLeaseChanged
			}
			if row.APIKeyID != "" {
				r := tx.Exec(`UPDATE api_keys SET reserved_micros = reserved_micros - ? WHERE id = ? AND reserved_micros >= ?`,
					take, row.APIKeyID, take)
				if r.Error != nil {
					return r.Error
				}
				if r.RowsAffected == 0 {
					return errLeaseChanged
				}
			}
		}
		where := "id = ? AND version = ? AND amount_micros = ?"
		if cond != "" {
			where += " AND " + cond
		}
		vals := append([]any{row.ID, row.Version, row.AmountMicros}, args...)
		var r *gorm.DB
		if take == row.AmountMicros {
			r = tx.Exec("DELETE FROM balance_leases WHERE "+where, vals...)
		} else {
			r = tx.Exec("UPDATE balance_leases SET amount_micros = amount_micros - ?, version = version + 1 WHERE "+where,
				append([]any{take}, vals...)...)
		}
		if r.Error != nil {
			return r.Error
		}
		if r.RowsAffected == 0 {
			return errLeaseChanged // rolls back
		}
		return nil
	})
	if errors.Is(err, errLeaseChanged) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("billing: return lease %s: %w", row.ID, err)
	}
	return true, nil
}

var errLeaseChanged = errors.New("lease changed while being returned")

// returnLease gives the unused part of our lease back (l.mu held, not
// parking, no holds).
func (e *Engine) returnLease(ctx context.Context, l *lease) error {
	if l.parked {
		if err := e.claim(ctx, l); err != nil { // so that nobody takes from it meanwhile
			return err
		}
	}
	for attempt := 0; l.id != ""; attempt++ {
		if attempt == 5 {
			return fmt.Errorf("billing: return lease %s: it keeps changing", l.id)
		}
		var row models.BalanceLease
		err := e.db.WithContext(ctx).Where("id = ?", l.id).Take(&row).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			break // returned as expired, or taken, already
		}
		if err != nil {
			return fmt.Errorf("billing: return lease: %w", err)
		}
		ok, err := takeRow(ctx, e.db.DB, &row, row.AmountMicros, "")
		if err != nil {
			return err
		}
		if ok {
			break
		}
	}
	l.id, l.version, l.granted, l.parked = "", 0, 0, false
	return nil
}

// SweepExpiredLeases returns the expired leases of every instance:
// instances that stopped renewing them (crashed or killed). Safe to run
// anywhere, any number of times, concurrently (the Temporal activity).
func SweepExpiredLeases(ctx context.Context, d *db.DB) (int, error) {
	return sweepExpired(ctx, d.DB)
}

func sweepExpired(ctx context.Context, d *gorm.DB) (int, error) {
	now := time.Now().UTC()
	var rows []models.BalanceLease
	if err := d.WithContext(ctx).Where("expires_at < ?", now).Limit(1000).Find(&rows).Error; err != nil {
		return 0, fmt.Errorf("billing: find expired leases: %w", err)
	}
	n := 0
	for i := range rows {
		ok, err := takeRow(ctx, d, &rows[i], rows[i].AmountMicros, "expires_at < ?", now)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}
