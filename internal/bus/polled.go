package bus

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/ids"
)

const (
	// PollInterval is how often a Polled bus reads new messages: how late
	// another process hears of a change (a revocation's answer waits that
	// long for the other process to apply it, see internal/auth). The
	// read is a primary-key range scan that almost always returns nothing
	// and, in WAL mode, neither waits for nor blocks the writer, so five a
	// second per process cost next to nothing.
	PollInterval = 200 * time.Millisecond
	// pollBatch bounds one read; a fuller backlog is read in several.
	pollBatch = 500
	// Retention is how long messages are kept: far longer than any poll
	// takes, so a slow process misses none; one that was stopped starts
	// from the newest id anyway.
	Retention = 10 * time.Minute
	// pruneEvery is how often a process deletes expired messages.
	pruneEvery = time.Minute
	// failureLogEvery rate-limits the log of a poll that keeps failing.
	failureLogEvery = time.Minute
)

// Polled carries messages between processes that share one SQLite file (the
// API and `beaver worker`), which has no LISTEN/NOTIFY: Publish inserts a
// row into bus_messages and every process polls for rows past the last id it
// has seen. SQLite has one writer at a time and assigns ids under its lock,
// so rows become visible in id order and the cursor never skips a row that
// commits late.
type Polled struct {
	Local
	db     *gorm.DB
	log    *slog.Logger
	origin string // this bus's rows, already delivered locally by Publish
	cursor int64  // the last id read; owned by the polling goroutine
}

// NewPolled starts polling in the background until ctx ends. Messages
// published before it are not delivered: the cursor starts at the newest id.
func NewPolled(ctx context.Context, gdb *gorm.DB, log *slog.Logger) (*Polled, error) {
	p := &Polled{db: gdb, log: log, origin: ids.New("bus")}
	if err := gdb.WithContext(ctx).Raw("SELECT COALESCE(MAX(id), 0) FROM bus_messages").Scan(&p.cursor).Error; err != nil {
		return nil, fmt.Errorf("bus: read newest message id: %w", err)
	}
	go p.run(ctx)
	return p, nil
}

// Publish delivers msg to this process's subscribers at once, so the
// publisher never serves a stale entry, then stores it for the other
// processes' next poll.
func (p *Polled) Publish(ctx context.Context, msg string) error {
	p.deliver(msg)
	err := p.db.WithContext(ctx).Exec("INSERT INTO bus_messages (origin, message, created_at) VALUES (?, ?, ?)",
		p.origin, msg, time.Now().UTC()).Error
	if err != nil {
		return fmt.Errorf("bus: publish %q: %w", msg, err)
	}
	return nil
}

// Prune deletes messages created before before, except the newest message:
// without AUTOINCREMENT SQLite would give its id to the next row, which
// every poller's cursor has already passed.
func (p *Polled) Prune(ctx context.Context, before time.Time) (int64, error) {
	r := p.db.WithContext(ctx).Exec("DELETE FROM bus_messages WHERE created_at < ? AND id < (SELECT MAX(id) FROM bus_messages)",
		before.UTC())
	if r.Error != nil {
		return 0, fmt.Errorf("bus: prune messages: %w", r.Error)
	}
	return r.RowsAffected, nil
}

func (p *Polled) run(ctx context.Context) {
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	var failingSince, lastLog time.Time
	lastPrune := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := p.poll(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			now := time.Now()
			if failingSince.IsZero() {
				failingSince = now
			}
			if now.Sub(lastLog) >= failureLogEvery {
				p.log.Warn("invalidation poll failing; other processes' changes wait for the cache TTL",
					"err", err, "since", failingSince)
				lastLog = now
			}
			continue
		}
		if !failingSince.IsZero() {
			// Messages may have been pruned, or the failure hid a gap: start over.
			p.log.Info("invalidation poll recovered; caches flushed", "failed_for", time.Since(failingSince).Round(time.Millisecond))
			p.deliver(Flush)
			failingSince, lastLog = time.Time{}, time.Time{}
		}
		if time.Since(lastPrune) >= pruneEvery {
			lastPrune = time.Now()
			if _, err := p.Prune(ctx, lastPrune.Add(-Retention)); err != nil && ctx.Err() == nil {
				p.log.Warn("invalidation messages not pruned", "err", err)
			}
		}
	}
}

// poll delivers every message past the cursor that another process
// published, in id order.
func (p *Polled) poll(ctx context.Context) error {
	for {
		rows, err := p.db.WithContext(ctx).Raw("SELECT id, origin, message FROM bus_messages WHERE id > ? ORDER BY id LIMIT ?",
			p.cursor, pollBatch).Rows()
		if err != nil {
			return fmt.Errorf("bus: poll messages: %w", err)
		}
		type message struct {
			id          int64
			origin, msg string
		}
		var batch []message
		for rows.Next() {
			var m message
			if err := rows.Scan(&m.id, &m.origin, &m.msg); err != nil {
				rows.Close()
				return fmt.Errorf("bus: read message: %w", err)
			}
			batch = append(batch, m)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("bus: poll messages: %w", err)
		}
		// Deliver after the rows are closed: subscribers may query the
		// database themselves.
		for _, m := range batch {
			p.cursor = m.id
			if m.origin != p.origin {
				p.deliver(m.msg)
			}
		}
		if len(batch) < pollBatch {
			return nil
		}
	}
}
