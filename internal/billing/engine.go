package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/models"
)

// The engine makes per-request billing cheap without giving up exactness:
//
//   - Admission holds a request's maximum cost in memory against a lease:
//     part of the account's balance (and of the API key's spend limit) that
//     this instance reserved in the database with one conditional UPDATE
//     (balance − reserved ≥ amount). Leases are taken with headroom, so a
//     busy key touches the database only when its lease runs low.
//   - Settlement computes the exact charge, and hands it to a committer
//     goroutine that writes many requests' usage logs, ledger entries and
//     balance changes in one transaction (group commit). A request's answer
//     is sent only after its transaction committed, so no charge a client
//     was shown can be lost, even by a kill right after.
//   - Unused lease amounts go back to the account when the key goes idle.
//     Leases are short-lived unless renewed (leases.go): a dead instance's
//     expire within LeaseTTL and any instance returns them. A lease with
//     nothing in flight is soon parked, after which other instances may
//     take money back from it, so a replica's idle lease never makes
//     another replica refuse a request of the same account.
//
// Invariants, across any number of instances: balance = sum(ledger);
// reserved = sum(leases) ≤ balance; charges never exceed what was reserved.

// Engine is one instance's billing engine.
type Engine struct {
	db       *db.DB
	plain    *db.DB      // without GORM's statement cache: for statements whose text varies
	stmts    *statements // the settlement commit's
	instance string
	log      *slog.Logger
	opts     EngineOptions

	mu     sync.Mutex
	leases map[leaseKey]*lease
	quotas map[string]*quota

	// validUntil (unix ns): admission spends leases from memory only
	// before it; each successful renewal moves it (see ensureRenewed).
	validUntil atomic.Int64
	renewMu    sync.Mutex
	parkWaits  map[string]chan struct{} // account → admissions waiting for other instances to park (e.mu)

	metrics engineMetrics
	queue   chan *pending
	// committing is held by whoever runs a commit: a settling request that
	// found no commit running, or the committer goroutine.
	committing sync.Mutex
	open       atomic.Int64 // holds admitted and not yet handed to a commit, nor released
	lastBatch  atomic.Int64 // rows of the last commit
	stop       chan struct{}
	done       sync.WaitGroup
	closed     sync.Once
}

// EngineOptions tune the engine; zero values take the defaults.
type EngineOptions struct {
	InstanceID string // unique per process; default random
	// LeaseTTL: leases expire this long after their last renewal (every
	// LeaseTTL/5), so a dead instance's reservations return within it;
	// default 15s.
	LeaseTTL time.Duration
	// SweepEvery: how often this instance returns the expired leases of
	// every instance (dead ones); default LeaseTTL/3.
	SweepEvery time.Duration
	// ParkAfter: a lease with nothing in flight for this long is parked,
	// and other instances may take money back from it; default 100ms.
	ParkAfter time.Duration
	// ParkWait: how long an admission that would be refused waits for
	// other instances' leases of the account to be parked; default 1s.
	ParkWait      time.Duration
	IdleReturn    time.Duration // unused lease amounts return after this idle time; default 2s
	LeaseHeadroom int64         // lease this many times a request's hold when extending; default 8
	MaxBatch      int           // requests per commit transaction; default 512
	// GatherWait is how long a commit under load waits for more requests
	// to settle with it (see gather); 0 = the default 1ms, negative = never.
	GatherWait time.Duration
	// AsyncCommit runs settlement transactions with synchronous_commit=off
	// on PostgreSQL: committed when PostgreSQL has them in memory, on disk
	// within its wal_writer_delay (x3). Survives a kill of Beaver, not a
	// crash of the database server. No effect on SQLite (whose commits are
	// always handed to the OS without fsync: synchronous=NORMAL).
	AsyncCommit bool
	// Events hears of low balances, charges and failed commits; nil = NoEvents.
	Events     Events
	Registerer prometheus.Registerer // optional: billing metrics
}

// NewEngine starts the engine's committer and lease keeper.
func NewEngine(d *db.DB, log *slog.Logger, o EngineOptions) *Engine {
	if o.InstanceID == "" {
		o.InstanceID = ids.New("inst")
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 15 * time.Second
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = o.LeaseTTL / 3
	}
	if o.ParkAfter <= 0 {
		o.ParkAfter = 100 * time.Millisecond
	}
	if o.ParkWait <= 0 {
		o.ParkWait = time.Second
	}
	if o.IdleReturn <= 0 {
		o.IdleReturn = 2 * time.Second
	}
	if o.LeaseHeadroom <= 0 {
		o.LeaseHeadroom = 8
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 512
	}
	if o.GatherWait == 0 {
		o.GatherWait = time.Millisecond
	}
	o.Events = eventsOrNone(o.Events)
	// The engine runs the same few statements all day. The settlement
	// commit goes through database/sql with statements prepared once per
	// connection (statements.go); the rest (admission, the keeper) uses
	// GORM, with its statement cache on SQLite (outside transactions it
	// works; pgx caches prepared statements itself).
	prepared := &db.DB{DB: d.Session(&gorm.Session{PrepareStmt: d.Dialect == db.SQLite}), Dialect: d.Dialect}
	e := &Engine{db: prepared, plain: d, stmts: newStatements(d, o.AsyncCommit), instance: o.InstanceID, log: log, opts: o,
		leases: map[leaseKey]*lease{}, quotas: map[string]*quota{}, parkWaits: map[string]chan struct{}{},
		queue: make(chan *pending, 4096), stop: make(chan struct{})}
	e.metrics = newEngineMetrics(o.Registerer)
	e.validUntil.Store(time.Now().Add(o.LeaseTTL / 2).UnixNano()) // no lease yet
	e.done.Add(4)
	go e.commitLoop()
	go e.keeperLoop()
	go e.leaseLoop()
	go e.sweepLoop()
	return e
}

// InstanceID names this engine's leases.
func (e *Engine) InstanceID() string { return e.instance }

// Close commits what is queued, returns every lease and stops.
func (e *Engine) Close() {
	e.closed.Do(func() {
		close(e.stop)
		e.done.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, l := range e.snapshot() {
			l.mu.Lock()
			l.waitParking()
			if l.holds == 0 {
				if err := e.returnLease(ctx, l); err != nil {
					e.log.Warn("return lease at shutdown", "account", l.key.account, "err", err)
				}
			}
			l.mu.Unlock()
		}
		e.keepQuotas(ctx, time.Now(), true)
		e.stmts.close()
	})
}

type leaseKey struct{ account, key string }

type lease struct {
	mu      sync.Mutex
	key     leaseKey
	id      string // balance_leases row; "" = none
	version int64  // of our row, as we last changed or read it
	granted int64  // amount of our row
	held    int64  // sum of open holds
	holds   int
	used    time.Time // last admission or settlement
	stale   bool      // policy or account changed: give back unused amount first
	gone    bool      // removed from the engine; get a new one
	gen     int       // bumped when the row was lost; older holds settle directly
	// parked: the row says idle, so other instances may have taken money
	// from it; claim it before use. parking: that is being written (see
	// park); parkDone signals the end. parkArmed: a park check is scheduled.
	parked, parking, parkArmed bool
	parkDone                   sync.Cond

	spentSinceExtend int64 // charged since the last extension: sizes the next one
}

// AdmitRequest describes a request about to be sent upstream.
type AdmitRequest struct {
	AccountID    string
	Key          *models.APIKey // nil for session requests
	Price        pricing.Price
	PriceVersion int64
	PromptTokens int64 // estimate
	MaxTokens    int64 // requested completion cap; 0 = the model's
	ModelMax     int64 // the model's max_output_tokens
	MonthlyLimit int64 // requests per month; 0 = unlimited
	Choices      int64 // completions asked for (n); 0 = 1. Multiplies the completion hold.
	// At is the admission time, which selects time-of-day prices; zero =
	// now.
	At time.Time
}

// Hold is money set aside for one request.
type Hold struct {
	lease        *lease
	gen          int
	amount       int64
	AccountID    string
	KeyID        string
	Price        pricing.Price
	PriceVersion int64
	AdmittedAt   time.Time // selects the time-of-day prices it is charged at
	MaxTokens    int64     // the completion cap to send upstream (clamped)
	Clamped      bool      // MaxTokens was lowered to what the balance affords
	finished     bool
	quotaMonth   string
	quotaCounted bool // counted at admission (limited account), not by the commit
}

// Amount is the held micro-USD.
func (h *Hold) Amount() int64 { return h.amount }

// minCompletion is how many completion tokens the balance must afford for a
// request to be admitted at all.
const minCompletion = 16

func monthOf(t time.Time) string { return t.UTC().Format("2006-01") }

// Admit checks the monthly quota and holds the request's maximum cost. When
// the balance (or key limit) cannot pay for the whole max_tokens, the cap is
// lowered to what it affords; below prompt + 16 tokens the answer is 402.
func (e *Engine) Admit(ctx context.Context, r AdmitRequest) (*Hold, error) {
	maxTok := admitMaxTokens(r)
	if r.Choices < 1 {
		r.Choices = 1
	}
	now := time.Now()
	counted, err := e.admitQuota(ctx, r.AccountID, r.MonthlyLimit, now)
	if err != nil {
		return nil, err
	}
	h, err := e.hold(ctx, r, maxTok)
	if err != nil {
		e.unquota(&Hold{AccountID: r.AccountID, quotaMonth: monthOf(now), quotaCounted: counted})
		return nil, err
	}
	h.quotaMonth, h.quotaCounted = monthOf(now), counted
	e.open.Add(1)
	return h, nil
}

// admitMaxTokens is the completion cap r is held for: max_tokens, at most
// the model's cap, the model's cap when unset (4096 without one).
func admitMaxTokens(r AdmitRequest) int64 {
	maxTok := r.MaxTokens
	if maxTok <= 0 || (r.ModelMax > 0 && maxTok > r.ModelMax) {
		maxTok = r.ModelMax
	}
	if maxTok <= 0 {
		maxTok = 4096
	}
	return maxTok
}

// HoldAmount is what Admit holds for r when the balance affords all of
// it: the request's true upper bound (a native batch holds each line's
// durably, package batches).
func HoldAmount(r AdmitRequest) int64 {
	choices := max(r.Choices, 1)
	p := r.Price
	return pricing.Cost(p.Input, p.Output, p.Fee, r.PromptTokens, admitMaxTokens(r)*choices)
}

func (e *Engine) leaseFor(k leaseKey) *lease {
	e.mu.Lock()
	defer e.mu.Unlock()
	l, ok := e.leases[k]
	if !ok {
		l = &lease{key: k}
		l.parkDone.L = &l.mu
		e.leases[k] = l
	}
	return l
}

func (e *Engine) hold(ctx context.Context, r AdmitRequest, maxTok int64) (*Hold, error) {
	keyID := ""
	if r.Key != nil {
		keyID = r.Key.ID
	}
	p := r.Price
	want := pricing.Cost(p.Input, p.Output, p.Fee, r.PromptTokens, maxTok*r.Choices)
	minTok := int64(minCompletion)
	if maxTok < minTok {
		minTok = maxTok
	}
	need := pricing.Cost(p.Input, p.Output, p.Fee, r.PromptTokens, minTok*r.Choices)
	canWait, waitUntil := true, time.Time{}
	for {
		if err := e.ensureRenewed(ctx); err != nil {
			return nil, err
		}
		l := e.leaseFor(leaseKey{r.AccountID, keyID})
		l.mu.Lock()
		l.waitParking() // before any check: it lets go of l.mu meanwhile
		if l.gone {
			l.mu.Unlock()
			continue
		}
		h, err := e.holdLocked(ctx, l, r, maxTok, want, need, canWait)
		l.mu.Unlock()
		if errors.Is(err, errParkPending) {
			// Outside the lease's lock: other admissions of the key go on.
			// Once the wait is over, one more try, then the refusal.
			if waitUntil.IsZero() {
				waitUntil = time.Now().Add(e.opts.ParkWait)
			}
			canWait = e.awaitParked(ctx, l.key.account, waitUntil) && time.Now().Before(waitUntil)
			continue
		}
		return h, err
	}
}

// reclaimIdle returns this instance's other leases of the same account that
// have no request in flight (mine.mu held); it reports whether any money
// came back. Without it, the idle lease of one key (kept for IdleReturn)
// would make another key of the account look short of balance. Other leases
// are only tried (TryLock): a lease that is busy is in use, and waiting for
// it while holding mine could deadlock with its own admission.
func (e *Engine) reclaimIdle(ctx context.Context, mine *lease) bool {
	back := false
	for _, l := range e.snapshot() {
		if l == mine || l.key.account != mine.key.account || !l.mu.TryLock() {
			continue
		}
		l.waitParking()
		if !l.gone && l.holds == 0 && l.granted > 0 {
			if err := e.returnLease(ctx, l); err != nil {
				e.log.Warn("reclaim idle lease", "account", l.key.account, "err", err)
			} else {
				back = true
				e.forget(l)
			}
		}
		l.mu.Unlock()
	}
	return back
}

// forget removes a returned lease from the engine (l.mu held).
func (e *Engine) forget(l *lease) {
	e.mu.Lock()
	if e.leases[l.key] == l {
		delete(e.leases, l.key)
	}
	e.mu.Unlock()
	l.gone = true
}

// holdLocked holds the request against l (l.mu held, not parking). When the request
// would be refused while other instances hold leases of the account that
// may soon be parked, it returns errParkPending if canWait.
func (e *Engine) holdLocked(ctx context.Context, l *lease, r AdmitRequest, maxTok, want, need int64, canWait bool) (*Hold, error) {
	if l.stale && l.holds == 0 && l.granted > 0 {
		if err := e.returnLease(ctx, l); err != nil {
			return nil, err
		}
	}
	l.stale = false
	if l.parked {
		if err := e.claim(ctx, l); err != nil {
			return nil, err
		}
	}
	if avail := l.granted - l.held; avail < want {
		// Ask for the shortfall with headroom, then without, then whatever is left.
		// Lease ahead by the largest of a multiple of this request, twice
		// what was spent since the last extension, and what is held now, so
		// a busy key extends less and less often. Held counts long streams,
		// which spend nothing until they end: thousands opening at once
		// would otherwise extend (a write, under l.mu) every few admissions.
		short := want - avail
		ahead := max(short*e.opts.LeaseHeadroom, 2*l.spentSinceExtend, l.held)
		ok, err := e.extend(ctx, l, short+ahead)
		if err == nil && !ok {
			ok, err = e.extend(ctx, l, short)
		}
		if err == nil && !ok && e.reclaimIdle(ctx, l) {
			ok, err = e.extend(ctx, l, short)
		}
		// Then what leases reserve and nobody can be using: expired ones
		// (dead instances) and parked ones.
		var busy int64
		if err == nil && !ok {
			var took int64
			if took, busy, err = e.takeBack(ctx, l.key, l.id, short); err == nil && took > 0 {
				ok, err = e.extend(ctx, l, short)
			}
		}
		if err != nil {
			return nil, err
		}
		if !ok {
			// Lease whatever is left; another instance may take some of it
			// between our read and our update, so read again then.
			var source string
			for attempt := 0; !ok; attempt++ {
				var left int64
				left, source, err = e.remaining(ctx, l.key)
				if err != nil {
					return nil, err
				}
				avail = l.granted - l.held // a lost row (see extend) starts again at 0
				if avail+left < need || attempt == 8 {
					if canWait && avail+left+busy >= need {
						return nil, errParkPending
					}
					return nil, refusal(source, need, avail+left)
				}
				if ok, err = e.extend(ctx, l, left); err != nil {
					return nil, err
				}
			}
			budget := l.granted - l.held
			t := pricing.MaxOutputTokens(r.Price, r.PromptTokens, budget)
			if t >= 0 {
				t /= r.Choices // every choice gets the same cap
			}
			if t < 0 && t != -1 || t >= 0 && t < 1 {
				return nil, refusal(source, need, budget)
			}
			if t >= 0 && t < maxTok {
				maxTok = t
				want = pricing.Cost(r.Price.Input, r.Price.Output, r.Price.Fee, r.PromptTokens, maxTok*r.Choices)
				h := e.newHold(l, r, want, maxTok)
				h.Clamped = true
				return h, nil
			}
		}
	}
	return e.newHold(l, r, want, maxTok), nil
}

func (e *Engine) newHold(l *lease, r AdmitRequest, amount, maxTok int64) *Hold {
	l.held += amount
	l.holds++
	l.used = time.Now()
	keyID := ""
	if r.Key != nil {
		keyID = r.Key.ID
	}
	at := r.At
	if at.IsZero() {
		at = time.Now()
	}
	return &Hold{lease: l, gen: l.gen, amount: amount, AccountID: r.AccountID, KeyID: keyID, Price: r.Price,
		PriceVersion: r.PriceVersion, AdmittedAt: at, MaxTokens: maxTok}
}

func refusal(source string, need, have int64) error {
	if have < 0 {
		have = 0
	}
	if source == "key_limit" {
		return apierr.KeyLimitExceeded("this API key's spend limit leaves $%s; this request needs at least $%s (prompt + %d completion tokens)",
			money.Format(have), money.Format(need), minCompletion)
	}
	return apierr.InsufficientBalance("insufficient balance: available $%s, this request needs at least $%s (prompt + %d completion tokens); top up to continue",
		money.Format(have), money.Format(need), minCompletion)
}

// remaining reads what the account (and key) could still lease, and which
// of the two binds.
func (e *Engine) remaining(ctx context.Context, k leaseKey) (int64, string, error) {
	var a models.Account
	if err := e.db.WithContext(ctx).Select("balance_micros", "reserved_micros").Where("id = ?", k.account).Take(&a).Error; err != nil {
		return 0, "", fmt.Errorf("billing: read balance: %w", err)
	}
	left, source := a.BalanceMicros-a.ReservedMicros, "balance"
	if k.key != "" {
		var key models.APIKey
		if err := e.db.WithContext(ctx).Where("id = ?", k.key).Take(&key).Error; err != nil {
			return 0, "", fmt.Errorf("billing: read key: %w", err)
		}
		if key.SpendLimitMicros != nil {
			spent := key.SpentMicros
			if start := auth.CurrentPeriodStart(key.LimitReset, time.Now()); !start.IsZero() && (key.PeriodStart == nil || key.PeriodStart.Before(start)) {
				spent = 0
			}
			if kl := *key.SpendLimitMicros - spent - key.ReservedMicros; kl < left {
				left, source = kl, "key_limit"
			}
		}
	}
	if left < 0 {
		left = 0
	}
	return left, source, nil
}

// extend grows the lease by amount with conditional updates; false means the
// account or key cannot cover it (nothing changed).
func (e *Engine) extend(ctx context.Context, l *lease, amount int64) (bool, error) {
	if amount <= 0 {
		return true, nil
	}
	now := time.Now().UTC()
	e.metrics.extends.Inc()
	var newID string
	err := e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		r := tx.Exec(`UPDATE accounts SET reserved_micros = reserved_micros + ?
			WHERE id = ? AND balance_micros - reserved_micros >= ?`, amount, l.key.account, amount)
		if r.Error != nil {
			return r.Error
		}
		if r.RowsAffected == 0 {
			return errRefused
		}
		if l.key.key != "" {
			if start := auth.CurrentPeriodStart(keyReset(tx, l.key.key), now); !start.IsZero() {
				if err := tx.Exec(`UPDATE api_keys SET spent_micros = 0, period_start = ?
					WHERE id = ? AND (period_start IS NULL OR period_start < ?)`, start, l.key.key, start).Error; err != nil {
					return err
				}
			}
			r := tx.Exec(`UPDATE api_keys SET reserved_micros = reserved_micros + ?
				WHERE id = ? AND (spend_limit_micros IS NULL OR spent_micros + reserved_micros + ? <= spend_limit_micros)`,
				amount, l.key.key, amount)
			if r.Error != nil {
				return r.Error
			}
			if r.RowsAffected == 0 {
				return errRefused
			}
		}
		expires := now.Add(e.opts.LeaseTTL)
		if l.id != "" {
			// Conditional on the version: a row another instance took from
			// (which only happens to parked rows, claimed before use) is lost.
			r := tx.Exec(`UPDATE balance_leases SET amount_micros = amount_micros + ?, expires_at = ?, updated_at = ? WHERE id = ? AND version = ?`,
				amount, expires, now, l.id, l.version)
			if r.Error != nil {
				return r.Error
			}
			if r.RowsAffected == 1 {
				return nil
			}
			return errLeaseLost
		}
		newID = ids.New("lease")
		return tx.Create(&models.BalanceLease{ID: newID, InstanceID: e.instance, AccountID: l.key.account,
			APIKeyID: l.key.key, AmountMicros: amount, ExpiresAt: expires, CreatedAt: now, UpdatedAt: now}).Error
	})
	switch {
	case errors.Is(err, errRefused):
		return false, nil
	case errors.Is(err, errLeaseLost):
		// Our row was swept (this process stalled past the TTL). Its money is
		// no longer reserved: start a new row; open holds settle directly
		// against the balance (see commit).
		e.log.Warn("billing lease was swept while in use; re-leasing", "account", l.key.account)
		l.lose()
		return e.extend(ctx, l, amount)
	case err != nil:
		return false, fmt.Errorf("billing: extend lease: %w", err)
	}
	if newID != "" {
		l.id, l.version = newID, 0
	}
	l.granted += amount
	l.spentSinceExtend = 0
	return true, nil
}

var (
	errRefused     = errors.New("refused")
	errLeaseLost   = errors.New("lease lost")
	errParkPending = errors.New("other instances' leases may be parked soon")
)

func keyReset(tx *gorm.DB, keyID string) string {
	var reset string
	tx.Model(&models.APIKey{}).Select("limit_reset").Where("id = ?", keyID).Scan(&reset)
	return reset
}

// Invalidate marks leases of an account or key stale, so that their unused
// amount is returned and re-leased under the new limits.
func (e *Engine) Invalidate(msg string) {
	kind, id, _ := strings.Cut(msg, ":")
	var stale []*lease
	e.mu.Lock()
	for k, l := range e.leases {
		if (kind == "key" && k.key == id) || (kind == "account" && k.account == id) || kind == "flush" {
			stale = append(stale, l)
		}
	}
	if kind == "account" || kind == "flush" {
		for acc, q := range e.quotas {
			if kind == "flush" || acc == id {
				q.stale.Store(true) // the limit may have been lowered
			}
		}
	}
	e.mu.Unlock()
	// Outside e.mu: the keeper holds a lease's mu while it takes e.mu to
	// forget the lease. A lease forgotten meanwhile is marked for nothing.
	for _, l := range stale {
		l.mu.Lock()
		l.stale = true
		l.mu.Unlock()
	}
}

// keeperLoop returns idle leases and quota slots (leaseLoop renews leases).
func (e *Engine) keeperLoop() {
	defer e.done.Done()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		e.keep()
	}
}

// snapshot lists the current leases without holding the engine lock while
// they are worked on.
func (e *Engine) snapshot() []*lease {
	e.mu.Lock()
	defer e.mu.Unlock()
	ls := make([]*lease, 0, len(e.leases))
	for _, l := range e.leases {
		ls = append(ls, l)
	}
	return ls
}

func (e *Engine) keep() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := time.Now()
	for _, l := range e.snapshot() {
		l.mu.Lock()
		l.waitParking()
		switch {
		case l.holds == 0 && (now.Sub(l.used) > e.opts.IdleReturn || l.stale):
			if err := e.returnLease(ctx, l); err != nil {
				e.log.Warn("return idle lease", "account", l.key.account, "err", err)
			} else {
				e.forget(l)
			}
		case l.holds == 0 && l.id != "" && !l.parked:
			e.armPark(l, e.opts.ParkAfter) // e.g. after a refusal that leased and held nothing
		}
		l.mu.Unlock()
	}
	e.keepQuotas(ctx, now, false)
}

// sortedKeys returns map keys in order (deterministic lock order in commits).
func sortedKeys[V any](m map[leaseKey]V) []leaseKey {
	out := make([]leaseKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].account != out[j].account {
			return out[i].account < out[j].account
		}
		return out[i].key < out[j].key
	})
	return out
}

type engineMetrics struct {
	batch   prometheus.Histogram
	commit  prometheus.Histogram
	extends prometheus.Counter
}

func newEngineMetrics(r prometheus.Registerer) engineMetrics {
	m := engineMetrics{
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "beaver_billing_commit_batch_size",
			Help: "Requests settled per commit transaction.", Buckets: prometheus.ExponentialBuckets(1, 2, 10)}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "beaver_billing_commit_seconds",
			Help: "Duration of settlement commit transactions.", Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14)}),
		extends: prometheus.NewCounter(prometheus.CounterOpts{Name: "beaver_billing_lease_extensions_total",
			Help: "Balance lease extensions (database round trips on admission)."}),
	}
	if r != nil {
		for _, c := range []prometheus.Collector{m.batch, m.commit, m.extends} {
			if err := r.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if !errors.As(err, &are) {
					panic(err)
				}
			}
		}
	}
	return m
}
