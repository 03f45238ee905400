package auth

// How a change to a role, an account's status, a key or a session reaches
// every replica before its answer is sent.
//
// Replicas serve keys, sessions and accounts from memory, so the request
// path has no database round trip, but only while they hold a lease: a sync
// that started at t0 (read the changes committed since the last one, drop
// what they made stale, record the acknowledgement and a heartbeat in
// auth_replicas) lets a replica trust its caches until t0+Lease on its
// monotonic clock. Without a lease it reads the database on every request.
//
// A change commits with an epoch (migrations/00008_auth_epochs.sql). The
// replica that made it drops its own entries, announces the epoch on the bus
// (each replica syncs on hearing it) and waits until no other replica can
// still serve what it made stale: every row in auth_replicas has acknowledged
// the epoch, except rows whose heartbeat is older than Lease+leaseMargin by
// the database's clock, whose leases have ended; the waiter deletes those, so
// that their owners' next sync does not renew a lease from a read that may
// predate the change (a replica that finds its row gone joins again and
// trusts its caches only from the sync after). If acknowledgements never
// come, Lease+leaseMargin after the commit every lease granted by a sync that
// started before it has ended, so the waiter answers then.

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/db"
)

const (
	// DefaultLease is how long a replica trusts its caches after a sync
	// began: the longest a change waits for a replica that stopped
	// answering without leaving.
	DefaultLease = 3 * time.Second
	// DefaultHeartbeat is how often a replica syncs without being told to.
	DefaultHeartbeat = 500 * time.Millisecond
	// leaseMargin covers the replicas' and the database's clocks running
	// at slightly different rates.
	leaseMargin = 100 * time.Millisecond
	// changeRetention is how long auth_changes rows are kept; a replica
	// further behind flushes its caches.
	changeRetention  = 10 * time.Minute
	changePruneEvery = time.Minute
	changeBatch      = 1000
	// maxWaitPoll bounds the pause between two looks at the
	// acknowledgements (they start at a millisecond and double).
	maxWaitPoll  = 20 * time.Millisecond
	syncLogEvery = time.Minute
)

// epochPrefix starts the bus message that announces a committed change.
const epochPrefix = "auth:"

// OnChange registers fn to be told of every change this replica applies:
// its invalidation messages, or bus.Flush when the replica fell too far
// behind to know them. fn runs before the replica acknowledges the change,
// so caches outside auth that hold key or account policy (billing's leases
// and quotas) are as fresh as auth's own when the change is answered.
func (s *Service) OnChange(fn func(msg string)) {
	s.hooksMu.Lock()
	s.hooks = append(s.hooks, fn)
	s.hooksMu.Unlock()
}

// apply drops what msgs name from every cache of this replica.
func (s *Service) apply(msgs []string) {
	for _, m := range msgs {
		s.cache.invalidate(m)
	}
	s.hooksMu.Lock()
	hooks := s.hooks
	s.hooksMu.Unlock()
	for _, fn := range hooks {
		for _, m := range msgs {
			fn(m)
		}
	}
}

// change runs fn in a transaction. When fn returns the invalidation
// messages of what it changed, they are recorded under the next epoch in
// the same transaction, and change returns only once no replica can serve
// the old state (see the top of this file). When fn changed nothing,
// perhaps because a concurrent or interrupted earlier attempt made this
// very change, it returns once every change committed so far holds
// everywhere. Errors from fn are returned as they are.
func (s *Service) change(ctx context.Context, fn func(tx *gorm.DB) ([]string, error)) error {
	var (
		epoch   int64
		targets []string
	)
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		t, err := fn(tx)
		if err != nil || len(t) == 0 {
			return err
		}
		targets = t
		// Last, so that the counter row is locked for as short a time as
		// possible: the lock serialises every change until commit.
		if err := tx.Exec("UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1").Error; err != nil {
			return fmt.Errorf("take an epoch: %w", err)
		}
		if err := tx.Raw("SELECT epoch FROM auth_epoch WHERE id = 1").Scan(&epoch).Error; err != nil {
			return fmt.Errorf("read the epoch: %w", err)
		}
		if err := tx.Exec("INSERT INTO auth_changes (epoch, targets, created_at) VALUES (?, ?, ?)",
			epoch, strings.Join(t, "\n"), s.Now()).Error; err != nil {
			return fmt.Errorf("record change %d: %w", epoch, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		if err := s.DB.WithContext(ctx).Raw("SELECT epoch FROM auth_epoch WHERE id = 1").Scan(&epoch).Error; err != nil {
			return fmt.Errorf("read the epoch: %w", err)
		}
		if epoch == 0 {
			return nil
		}
		// This replica too may not have applied that change yet.
		s.wake(bus.Flush)
		return s.await(ctx, epoch, "")
	}
	s.apply(targets)
	if err := s.Bus.Publish(ctx, epochPrefix+strconv.FormatInt(epoch, 10)); err != nil {
		s.log().Warn("change not announced on the bus; replicas apply it at their next heartbeat", "epoch", epoch, "err", err)
	}
	return s.await(ctx, epoch, s.instance) // applied here above
}

// await returns once every replica but skip has applied epoch (committed
// before the call) or cannot serve from its caches any more.
func (s *Service) await(ctx context.Context, epoch int64, skip string) error {
	deadline := time.Now().Add(s.Lease + leaseMargin) // the commit is behind us
	pause := time.Millisecond
	for {
		waiting, err := s.laggards(ctx, epoch, skip)
		if err == nil && len(waiting) == 0 {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("wait for replicas to apply change %d: %w", epoch, ctx.Err())
		}
		left := time.Until(deadline)
		if left <= 0 {
			// Safe: a replica that has not read the change holds no lease
			// from a sync that started after it, and older leases are over.
			s.log().Warn("replicas did not acknowledge a change; answered once their leases ended",
				"epoch", epoch, "replicas", waiting, "err", err)
			return nil
		}
		t := time.NewTimer(min(pause, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for replicas to apply change %d: %w", epoch, ctx.Err())
		case <-t.C:
		}
		pause = min(2*pause, maxWaitPoll)
	}
}

// laggards returns the replicas but skip that may still serve what epoch
// made stale. Replicas whose heartbeat lapsed hold no lease: they are
// fenced out (their rows deleted) rather than waited for.
func (s *Service) laggards(ctx context.Context, epoch int64, skip string) ([]string, error) {
	d := s.DB.WithContext(ctx)
	lapsed := (s.Lease + leaseMargin).Milliseconds()
	var rows []struct {
		InstanceID string
		Lapsed     int
	}
	query := "SELECT instance_id, CASE WHEN heartbeat_ms < " + nowMS(s.DB.Dialect) + " - ? THEN 1 ELSE 0 END AS lapsed " +
		"FROM auth_replicas WHERE acked_epoch < ? AND instance_id <> ?"
	if err := d.Raw(query, lapsed, epoch, skip).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("read acknowledgements: %w", err)
	}
	var waiting, fenced []string
	for _, r := range rows {
		if r.Lapsed == 1 {
			fenced = append(fenced, r.InstanceID)
		} else {
			waiting = append(waiting, r.InstanceID)
		}
	}
	if len(fenced) == 0 {
		return waiting, nil
	}
	// The condition is checked again under the row lock: a heartbeat that
	// commits first keeps its row, and is waited for at the next look.
	err := d.Exec("DELETE FROM auth_replicas WHERE instance_id <> ? AND heartbeat_ms < "+nowMS(s.DB.Dialect)+" - ?",
		s.instance, lapsed).Error // never ourselves: our lease is ours to end
	if err != nil {
		return nil, fmt.Errorf("fence out lapsed replicas: %w", err)
	}
	s.log().Warn("replicas with a lapsed heartbeat fenced out; they read the database until they rejoin",
		"replicas", fenced, "epoch", epoch)
	return append(waiting, fenced...), nil // look again: a fenced row may have been renewed meanwhile
}

// nowMS is the database's clock in milliseconds since 1970: one clock for
// every replica's heartbeat.
func nowMS(dialect string) string {
	if dialect == db.Postgres {
		return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
	}
	return "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"
}

// Start makes this replica one of those a change waits for, and lets it
// serve from its caches while it keeps up; before Start, and whenever it
// falls behind, every lookup reads the database. It returns once the caches
// are trusted. stop leaves (deletes this replica's row, so that changes do
// not wait for it) and returns when the background sync has ended.
func (s *Service) Start(ctx context.Context) (stop func(), err error) {
	for i := 0; ; i++ {
		trusted, err := s.sync(ctx)
		if err != nil {
			return nil, fmt.Errorf("auth: join the replicas: %w", err)
		}
		if trusted {
			break
		}
		if i == 2 {
			return nil, fmt.Errorf("auth: join the replicas: no lease after %d syncs (lease %s too short?)", i+1, s.Lease)
		}
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.syncLoop(loopCtx)
	}()
	return func() { cancel(); <-done }, nil
}

// wake asks for a sync soon (a change was announced, or the bus may have
// lost announcements).
func (s *Service) wake(msg string) {
	if e, ok := strings.CutPrefix(msg, epochPrefix); ok {
		if n, err := strconv.ParseInt(e, 10, 64); err == nil && n <= s.applied.Load() {
			return
		}
	} else if msg != bus.Flush {
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Service) syncLoop(ctx context.Context) {
	defer s.leave()
	tick := time.NewTicker(s.Heartbeat)
	defer tick.Stop()
	var failingSince, lastLog time.Time
	lastPrune := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.kick:
		}
		trusted, err := s.sync(ctx)
		if err == nil && !trusted {
			trusted, err = s.sync(ctx) // joined again: this one renews the lease
		}
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		switch {
		case err != nil:
			if failingSince.IsZero() {
				failingSince = now
			}
			if now.Sub(lastLog) >= syncLogEvery {
				s.log().Warn("auth sync failing; caches bypassed once the lease ends", "err", err, "since", failingSince)
				lastLog = now
			}
			continue
		case !failingSince.IsZero():
			s.log().Info("auth sync recovered", "failed_for", now.Sub(failingSince).Round(time.Millisecond), "trusted", trusted)
			failingSince, lastLog = time.Time{}, time.Time{}
		}
		if now.Sub(lastPrune) >= changePruneEvery {
			lastPrune = now
			if err := s.pruneChanges(ctx, s.Now().Add(-changeRetention)); err != nil && ctx.Err() == nil {
				s.log().Warn("auth changes not pruned", "err", err)
			}
		}
	}
}

// sync applies the changes committed since the last sync, records the
// acknowledgement and heartbeat, and renews the lease from when it started.
// It reports whether the lease was renewed: not when this replica had no
// row (first sync, or fenced out), because waiters may have answered
// without it while it read, so only the next sync may renew.
func (s *Service) sync(ctx context.Context) (bool, error) {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	start := s.cache.mono()
	d := s.DB.WithContext(ctx)
	if !s.joined {
		// Start from now, with nothing cached (there is nothing on the
		// first join; after a stop, changes since may be unknown).
		var e int64
		if err := d.Raw("SELECT epoch FROM auth_epoch WHERE id = 1").Scan(&e).Error; err != nil {
			return false, fmt.Errorf("read the epoch: %w", err)
		}
		s.apply([]string{bus.Flush})
		s.applied.Store(e)
	} else if err := s.catchUp(d); err != nil {
		return false, err
	}
	acked := s.applied.Load()
	r := d.Exec("UPDATE auth_replicas SET acked_epoch = ?, heartbeat_ms = "+nowMS(s.DB.Dialect)+" WHERE instance_id = ?",
		acked, s.instance)
	if r.Error != nil {
		return false, fmt.Errorf("acknowledge epoch %d: %w", acked, r.Error)
	}
	if r.RowsAffected == 1 {
		s.cache.trustUntil(start + s.Lease)
		return true, nil
	}
	s.cache.trustUntil(0)
	if s.joined {
		s.log().Warn("this replica was fenced out after its heartbeat lapsed; rejoining", "instance", s.instance)
	}
	err := d.Exec("INSERT INTO auth_replicas (instance_id, acked_epoch, heartbeat_ms) VALUES (?, ?, "+nowMS(s.DB.Dialect)+") "+
		"ON CONFLICT (instance_id) DO UPDATE SET acked_epoch = excluded.acked_epoch, heartbeat_ms = excluded.heartbeat_ms",
		s.instance, acked).Error
	if err != nil {
		return false, fmt.Errorf("join the replicas: %w", err)
	}
	s.joined = true
	return false, nil
}

// catchUp applies the changes past the last applied epoch, in order.
func (s *Service) catchUp(d *gorm.DB) error {
	for {
		var rows []struct {
			Epoch   int64
			Targets string
		}
		if err := d.Raw("SELECT epoch, targets FROM auth_changes WHERE epoch > ? ORDER BY epoch LIMIT ?",
			s.applied.Load(), changeBatch).Scan(&rows).Error; err != nil {
			return fmt.Errorf("read changes: %w", err)
		}
		if len(rows) == 0 {
			return nil
		}
		if from := s.applied.Load(); rows[0].Epoch != from+1 {
			s.log().Warn("auth changes pruned before this replica read them; caches flushed", "applied", from, "next", rows[0].Epoch)
			s.apply([]string{bus.Flush})
		}
		for _, r := range rows {
			s.apply(strings.Split(r.Targets, "\n"))
			s.applied.Store(r.Epoch)
		}
		if len(rows) < changeBatch {
			return nil
		}
	}
}

// leave stops trusting the caches and deletes this replica's row.
func (s *Service) leave() {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.cache.trustUntil(0)
	s.joined = false
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.DB.WithContext(ctx).Exec("DELETE FROM auth_replicas WHERE instance_id = ?", s.instance).Error; err != nil {
		s.log().Warn("could not leave the replicas; changes wait for this one until its heartbeat lapses", "err", err)
	}
}

// pruneChanges deletes changes recorded before before, except the newest:
// a replica that missed some then sees a gap rather than nothing.
func (s *Service) pruneChanges(ctx context.Context, before time.Time) error {
	err := s.DB.WithContext(ctx).Exec("DELETE FROM auth_changes WHERE created_at < ? AND epoch < (SELECT MAX(epoch) FROM auth_changes)",
		before).Error
	if err != nil {
		return fmt.Errorf("prune auth changes: %w", err)
	}
	return nil
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}
