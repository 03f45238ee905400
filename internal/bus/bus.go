// Package bus carries cache invalidations between API replicas. A replica
// that changes prices publishes a short message and every replica (itself
// included) drops what it cached; auth announces each committed change
// ("auth:<epoch>") so that replicas apply it at once rather than at their
// next heartbeat (internal/auth/coherence.go; its guarantee does not rest
// on delivery). Three
// implementations: Local (one process), Postgres (LISTEN/NOTIFY on the
// database every replica already shares, so no extra infrastructure) and
// Polled (a table the processes sharing one SQLite file poll). New picks the
// one for a database.
package bus

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/db"
)

// Flush is published (locally) when notifications may have been missed, for
// example after the LISTEN connection dropped: subscribers drop everything.
const Flush = "flush"

// Bus publishes invalidation messages to every subscriber of every replica.
type Bus interface {
	Publish(ctx context.Context, msg string) error
	Subscribe(fn func(msg string))
}

// New returns the bus that reaches every process using d (url is d's
// database URL, for the Postgres listener): Postgres on PostgreSQL, Polled
// on SQLite, where `beaver serve` and `beaver worker` may be two processes
// over one file. Both deliver in the background until ctx ends.
func New(ctx context.Context, d *db.DB, url string, log *slog.Logger) (Bus, error) {
	switch d.Dialect {
	case db.Postgres:
		return NewPostgres(ctx, d.DB, url, log), nil
	case db.SQLite:
		return NewPolled(ctx, d.DB, log)
	}
	return nil, fmt.Errorf("bus: unknown database dialect %q", d.Dialect)
}

// Local is the single-process bus.
type Local struct {
	mu   sync.RWMutex
	subs []func(string)
}

// NewLocal returns an in-process bus.
func NewLocal() *Local { return &Local{} }

// Publish delivers msg to every subscriber synchronously.
func (l *Local) Publish(_ context.Context, msg string) error {
	l.deliver(msg)
	return nil
}

// Subscribe registers fn.
func (l *Local) Subscribe(fn func(string)) {
	l.mu.Lock()
	l.subs = append(l.subs, fn)
	l.mu.Unlock()
}

func (l *Local) deliver(msg string) {
	l.mu.RLock()
	subs := l.subs
	l.mu.RUnlock()
	for _, fn := range subs {
		fn(msg)
	}
}

const channel = "beaver_invalidate"

// Postgres delivers through LISTEN/NOTIFY. Publish goes through the shared
// pool; a dedicated connection listens and reconnects with backoff, flushing
// local caches after each reconnect because messages sent meanwhile are lost.
type Postgres struct {
	Local
	db  *gorm.DB
	url string
	log *slog.Logger
}

// NewPostgres starts listening in the background until ctx ends.
func NewPostgres(ctx context.Context, gdb *gorm.DB, url string, log *slog.Logger) *Postgres {
	p := &Postgres{db: gdb, url: url, log: log}
	go p.listen(ctx)
	return p
}

// Publish notifies every replica; the local delivery happens at once so the
// publisher never serves a stale entry, even before the round trip.
func (p *Postgres) Publish(ctx context.Context, msg string) error {
	p.deliver(msg)
	return p.db.WithContext(ctx).Exec("SELECT pg_notify(?, ?)", channel, msg).Error
}

func (p *Postgres) listen(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := p.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		p.log.Warn("invalidation listener lost its connection; caches flushed", "err", err)
		p.deliver(Flush)
		time.Sleep(backoff)
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}

func (p *Postgres) listenOnce(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, p.url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return err
	}
	p.deliver(Flush) // anything published before LISTEN took effect
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		p.deliver(n.Payload)
	}
}
