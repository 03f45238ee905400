package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/models"
)

// Outcome is what happened to an admitted request.
type Outcome struct {
	GenerationID     string // the response id; primary key of the usage log
	RequestID        string
	Model, Provider  string
	PromptTokens     int64
	CompletionTokens int64
	CachedTokens     int64
	ReasoningTokens  int64
	// CacheWriteTokens (of which CacheWrite1hTokens for an hour) are part
	// of PromptTokens; ToolCalls counts provider-run tool calls by tool.
	CacheWriteTokens   int64
	CacheWrite1hTokens int64
	ToolCalls          map[string]int64
	// AudioPromptTokens (of which CachedAudioTokens were cache reads) are
	// the audio tokens of PromptTokens, AudioCompletionTokens those of
	// CompletionTokens (OpenAI's Realtime usage); priced apart from text.
	AudioPromptTokens     int64
	CachedAudioTokens     int64
	AudioCompletionTokens int64
	UsageEstimated        bool // Beaver counted tokens itself (no upstream usage)
	Streamed              bool
	Cancelled             bool
	Error                 string // "" = success
	LatencyMS             int64

	// ImageInputTokens are part of PromptTokens, ImageOutputTokens part of
	// CompletionTokens; Images counts the images delivered (image models).
	ImageInputTokens, ImageOutputTokens, Images int64
}

// Settlement is the committed result of a request.
type Settlement struct {
	ChargedMicros      int64
	ProviderCostMicros int64
	MarkupMicros       int64
	UncollectedMicros  int64
	BalanceAfterMicros int64
	LedgerEntryID      string
	Details            *pricing.Details // the charge by dimension; nil when nothing was charged
}

type pending struct {
	hold    *Hold
	out     Outcome
	charge  pricing.Charge // after any uncollected part was removed
	uncoll  int64
	orphan  bool // the lease row was lost: charge the balance directly
	leaseID string
	res     Settlement
	err     error
	done    chan struct{}
	created time.Time
	group   *groupResult // set on the first item of each account group
}

type groupResult struct {
	account                    string
	balance, before, threshold int64
}

// ErrAlreadyFinished is returned when a hold is finished twice.
var ErrAlreadyFinished = errors.New("billing: hold already finished")

// Finish settles a request: it charges prompt + completion tokens at the
// hold's price (zero for requests that failed before any output), writes the
// usage log and ledger entry, releases the rest of the hold, and returns once
// all of that is committed. The caller's context may be cancelled (client
// gone): settlement goes on regardless.
func (e *Engine) Finish(ctx context.Context, h *Hold, o Outcome) (*Settlement, error) {
	if h.finished {
		return nil, ErrAlreadyFinished
	}
	h.finished = true
	ctx = context.WithoutCancel(ctx)
	charge := pricing.ChargeTokens(h.Price, pricing.Tokens{Prompt: o.PromptTokens, Completion: o.CompletionTokens,
		Cached: o.CachedTokens, Reasoning: o.ReasoningTokens, CacheWrite: o.CacheWriteTokens,
		CacheWrite1h: o.CacheWrite1hTokens, Tools: o.ToolCalls, AudioPrompt: o.AudioPromptTokens, CachedAudio: o.CachedAudioTokens,
		AudioCompletion: o.AudioCompletionTokens, ImageInput: o.ImageInputTokens, ImageOutput: o.ImageOutputTokens,
		Images: o.Images}, h.AdmittedAt)
	if o.PromptTokens == 0 && o.CompletionTokens == 0 && o.Images == 0 {
		charge = pricing.Charge{} // nothing reached the upstream model: no fee either
	}
	p := &pending{hold: h, out: o, done: make(chan struct{}), created: time.Now()}
	l := h.lease
	l.mu.Lock()
	p.orphan = h.gen != l.gen
	if extra := charge.ChargedMicros - h.amount; extra > 0 && !p.orphan {
		// The upstream used more than we held (the prompt estimate was low):
		// take the difference from the lease, extending it if needed; what
		// the account cannot cover is not charged and is recorded.
		if avail := l.granted - l.held; avail < extra {
			ok, err := e.extend(ctx, l, extra-avail)
			if err == nil && !ok {
				if left, _, rerr := e.remaining(ctx, l.key); rerr == nil && left > 0 {
					_, _ = e.extend(ctx, l, min(left, extra-avail))
				}
			}
		}
		take := min(extra, l.granted-l.held)
		if take < 0 || h.gen != l.gen {
			take = 0
		}
		l.held += take
		h.amount += take
		p.uncoll = extra - take
	}
	p.orphan = h.gen != l.gen
	// Captured here because the committer must never take a lease's mutex
	// inside its transaction (admission holds that mutex while waiting on
	// the database: that would deadlock).
	p.leaseID = l.id
	l.mu.Unlock()
	if p.uncoll > 0 {
		charge.ChargedMicros -= p.uncoll
		charge.MarkupMicros = charge.ChargedMicros - charge.ProviderCostMicros
		if charge.Details != nil { // the lines still sum to what is charged
			charge.Details.Lines = append(charge.Details.Lines, pricing.Line{Dimension: "uncollected", Quantity: 1,
				Unit: "request", PriceMicros: -p.uncoll, CostMicros: -p.uncoll})
		}
		e.log.Warn("request cost more than the account could cover; the difference is not charged",
			"account", h.AccountID, "generation", o.GenerationID, "uncollected_micros", p.uncoll)
	}
	p.charge = charge

	e.open.Add(-1) // from here on it is in a batch or the queue: see gather
	if e.committing.TryLock() {
		// No commit is running: commit here, with whatever else is queued,
		// instead of handing over to the committer goroutine and back (two
		// wake-ups, most of the settlement time of a lone request).
		e.commit(e.gather(e.fill([]*pending{p})))
		e.committing.Unlock()
	} else {
		select {
		case e.queue <- p:
		case <-e.stop:
			e.committing.Lock()
			e.commit([]*pending{p})
			e.committing.Unlock()
		}
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if p.err != nil {
		return nil, p.err
	}
	return &p.res, nil
}

// Release gives a hold back without a usage log (the request never reached
// the upstream, e.g. it was refused by a later check).
func (e *Engine) Release(h *Hold) {
	if h.finished {
		return
	}
	h.finished = true
	e.open.Add(-1)
	l := h.lease
	l.mu.Lock()
	if h.gen == l.gen {
		l.held -= h.amount
	}
	l.holds--
	l.used = time.Now()
	if l.holds == 0 {
		e.armPark(l, e.opts.ParkAfter)
	}
	l.mu.Unlock()
	e.unquota(h)
}

// commitLoop commits what queued up while another commit was running, one
// batch per transaction (group commit).
func (e *Engine) commitLoop() {
	defer e.done.Done()
	for {
		var first *pending
		select {
		case first = <-e.queue:
		case <-e.stop:
			// drain what is left
			for {
				select {
				case p := <-e.queue:
					e.committing.Lock()
					e.commit([]*pending{p})
					e.committing.Unlock()
				default:
					return
				}
			}
		}
		e.committing.Lock()
		e.commit(e.gather(e.fill([]*pending{first})))
		e.committing.Unlock()
	}
}

// fill adds what is queued to batch, up to MaxBatch, without waiting.
func (e *Engine) fill(batch []*pending) []*pending {
	for len(batch) < e.opts.MaxBatch {
		select {
		case p := <-e.queue:
			batch = append(batch, p)
		default:
			return batch
		}
	}
	return batch
}

// gather waits a little for more rows when commits have company: under
// load a commit costs about the same for one row as for ten (its WAL
// frames and locks are per transaction), so waiting up to GatherWait for
// requests that are about to settle takes CPU off every request. It waits
// only while the batch, or the last one, holds several requests and
// admitted requests are still out; a lone request never waits.
func (e *Engine) gather(batch []*pending) []*pending {
	wait := e.opts.GatherWait
	if wait <= 0 || len(batch) >= e.opts.MaxBatch || e.open.Load() <= 0 ||
		(len(batch) < 2 && e.lastBatch.Load() < 2) {
		return batch
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for len(batch) < e.opts.MaxBatch && e.open.Load() > 0 {
		select {
		case p := <-e.queue:
			batch = append(batch, p)
		case <-t.C:
			return batch
		}
	}
	return batch
}

// commit writes a batch, retrying transient failures, and finally item by
// item so that one bad record cannot fail the others.
func (e *Engine) commit(batch []*pending) {
	var err error
	e.metrics.batch.Observe(float64(len(batch)))
	for attempt, wait := 0, 20*time.Millisecond; attempt < 3; attempt, wait = attempt+1, wait*4 {
		start := time.Now()
		err = e.commitTx(batch)
		e.lastBatch.Store(int64(len(batch)))
		e.metrics.commit.Observe(time.Since(start).Seconds())
		if err == nil {
			e.afterCommit(batch)
			return
		}
		if len(batch) > 1 {
			break
		}
		time.Sleep(wait)
	}
	if len(batch) > 1 {
		for _, p := range batch {
			e.commit([]*pending{p})
		}
		return
	}
	e.log.Error("billing commit failed; request not charged", "generation", batch[0].out.GenerationID, "err", err)
	e.opts.Events.CommitFailed(err)
	p := batch[0]
	p.err = fmt.Errorf("billing: commit: %w", err)
	e.releaseAfter(p, false)
	close(p.done)
}

type group struct {
	key       leaseKey
	leaseID   string
	leaseSum  int64 // charged from the lease
	directSum int64 // charged straight from the balance (lost lease)
	items     []*pending
}

func (e *Engine) commitTx(batch []*pending) error {
	now := time.Now().UTC()
	month := monthOf(now)
	groups := map[leaseKey]*group{}
	for _, p := range batch {
		p.group = nil
		k := p.hold.lease.key
		g, ok := groups[k]
		if !ok {
			g = &group{key: k}
			groups[k] = g
		}
		g.items = append(g.items, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if e.stmts.dialect == db.Postgres {
		return e.commitPG(ctx, groups, now, month)
	}
	tx, err := e.stmts.begin(ctx)
	if err != nil {
		return err
	}
	return tx.commit(e.writeBatch(tx, groups, now, month))
}

// writeBatch writes a batch's groups inside tx: balances, keys, leases,
// then the usage logs, their days' sums and ledger entries in multi-row
// INSERTs.
func (e *Engine) writeBatch(tx *stmtTx, groups map[leaseKey]*group, now time.Time, month string) error {
	var logs []models.UsageLog
	var entries []models.LedgerEntry
	for _, k := range sortedKeys(groups) {
		g := groups[k]
		total, uncounted := g.sum()
		balance, threshold, seq, err := chargeAccount(tx, k.account, total, g.leaseSum, g.directSum, uncounted, g.entries(), month, now)
		if err != nil {
			return err
		}
		if g.chargesKey() {
			if _, err := tx.exec(`UPDATE api_keys SET spent_micros = spent_micros + ?, reserved_micros = reserved_micros - ? WHERE id = ?`,
				total, g.leaseSum, k.key); err != nil {
				return err
			}
		}
		// Rows are locked in the same order as lease extension takes them
		// (account, key, lease), so the two never deadlock. A lease in use
		// is renewed here too (the renewal skips rows that are locked).
		if g.leaseSum > 0 {
			n, err := tx.exec(`UPDATE balance_leases SET amount_micros = amount_micros - ?, updated_at = ?, expires_at = ?
				WHERE id = ? AND amount_micros >= ?`, g.leaseSum, now, now.Add(e.opts.LeaseTTL), g.leaseID, g.leaseSum)
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("lease %s no longer covers %d micros", g.leaseID, g.leaseSum)
			}
		}
		logs, entries = g.settle(balance, seq, now, logs, entries)
		// Applied after the commit (see afterCommit), never for a rolled-back try.
		g.items[0].group = &groupResult{account: k.account, balance: balance, before: balance + total, threshold: threshold}
	}
	if err := insertUsageLogs(tx, logs); err != nil {
		return err
	}
	if err := addDailyUsage(tx, logs); err != nil {
		return err
	}
	return insertLedgerEntries(tx, entries)
}

// sum splits the group's charges into what its lease covers and what is
// charged straight from the balance (items whose lease row was lost), and
// counts the requests the month's counter still has to count.
func (g *group) sum() (total int64, uncounted int) {
	g.leaseSum, g.directSum, g.leaseID = 0, 0, ""
	for _, p := range g.items {
		if p.orphan || p.leaseID == "" {
			g.directSum += p.charge.ChargedMicros
		} else {
			g.leaseID = p.leaseID
			g.leaseSum += p.charge.ChargedMicros
		}
		// Requests of accounts with a monthly limit were counted at
		// admission (see quota.go); the others are counted here.
		if !p.hold.quotaCounted {
			uncounted++
		}
	}
	return g.leaseSum + g.directSum, uncounted
}

// entries counts the ledger entries the group writes: one per request that
// was charged anything.
func (g *group) entries() int64 {
	var n int64
	for _, p := range g.items {
		if p.charge.ChargedMicros > 0 {
			n++
		}
	}
	return n
}

// chargesKey reports whether the group changes its API key's row.
func (g *group) chargesKey() bool {
	return g.key.key != "" && (g.leaseSum+g.directSum > 0 || g.leaseSum > 0)
}

// settle fills in each item's settlement and appends its usage log and
// ledger entry, given the account's balance and ledger seq after the
// group's charges.
func (g *group) settle(balance, seq int64, now time.Time, logs []models.UsageLog, entries []models.LedgerEntry) ([]models.UsageLog, []models.LedgerEntry) {
	running := balance + g.leaseSum + g.directSum
	seq -= g.entries()
	for _, p := range g.items {
		running -= p.charge.ChargedMicros
		p.res = Settlement{ChargedMicros: p.charge.ChargedMicros, ProviderCostMicros: p.charge.ProviderCostMicros,
			MarkupMicros: p.charge.MarkupMicros, UncollectedMicros: p.uncoll, BalanceAfterMicros: running,
			Details: p.charge.Details}
		o := p.out
		var keyID, errText *string
		if p.hold.KeyID != "" {
			keyID = &p.hold.KeyID
		}
		if o.Error != "" {
			errText = &o.Error
		}
		logs = append(logs, models.UsageLog{ID: o.GenerationID, RequestID: o.RequestID, AccountID: g.key.account, APIKeyID: keyID,
			Model: o.Model, Provider: o.Provider, PriceVersion: p.hold.PriceVersion,
			PromptTokens: o.PromptTokens, CompletionTokens: o.CompletionTokens, CachedTokens: o.CachedTokens,
			ReasoningTokens: o.ReasoningTokens, CacheWriteTokens: o.CacheWriteTokens, CacheWrite1hTokens: o.CacheWrite1hTokens,
			UsageEstimated: o.UsageEstimated, CostDetails: detailsJSON(p.charge.Details),
			ProviderCostMicros: p.charge.ProviderCostMicros, MarkupMicros: p.charge.MarkupMicros,
			ChargedMicros: p.charge.ChargedMicros, UncollectedMicros: p.uncoll, BalanceAfterMicros: running,
			Streamed: o.Streamed, Cancelled: o.Cancelled, Error: errText, LatencyMS: o.LatencyMS, CreatedAt: now})
		if p.charge.ChargedMicros > 0 {
			id := ids.New("txn")
			p.res.LedgerEntryID = id
			seq++
			entries = append(entries, models.LedgerEntry{ID: id, AccountID: g.key.account, Type: models.EntryCharge,
				AmountMicros: -p.charge.ChargedMicros, BalanceAfterMicros: running,
				Reference: "charge:" + o.GenerationID, Description: o.Model, CreatedAt: now, Seq: seq})
		}
	}
	return logs, entries
}

// chargeAccount takes a group's total from the account's balance (and its
// lease's part from reserved), counts uncounted requests in the month,
// takes seq numbers for the group's ledger entries, and returns the balance
// after, the low-balance threshold and the last seq taken. The condition
// guards what was charged outside a lease.
func chargeAccount(tx *stmtTx, account string, total, leased, direct int64, uncounted int, entries int64, month string, now time.Time) (balance, threshold, seq int64, err error) {
	rows, err := tx.query(`UPDATE accounts SET balance_micros = balance_micros - ?, reserved_micros = reserved_micros - ?,
		monthly_requests = CASE WHEN usage_month = ? THEN monthly_requests + ? ELSE ? END, usage_month = ?,
		ledger_seq = ledger_seq + ?, updated_at = ?
		WHERE id = ? AND balance_micros - reserved_micros >= ?
		RETURNING balance_micros, low_balance_threshold_micros, ledger_seq`,
		total, leased, month, uncounted, uncounted, month, entries, now, account, direct)
	if err != nil {
		return 0, 0, 0, err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, 0, 0, err
		}
		return 0, 0, 0, fmt.Errorf("account %s cannot cover %d micros charged outside a lease", account, direct)
	}
	if err := rows.Scan(&balance, &threshold, &seq); err != nil {
		return 0, 0, 0, err
	}
	return balance, threshold, seq, rows.Close()
}

func (e *Engine) afterCommit(batch []*pending) {
	_, quiet := e.opts.Events.(NoEvents)
	for _, p := range batch {
		if g := p.group; g != nil && !quiet {
			if g.before >= g.threshold && g.balance < g.threshold {
				go e.opts.Events.LowBalance(g.account, g.balance, g.threshold)
			}
			if g.balance < g.before {
				go e.opts.Events.Charged(g.account, g.before, g.balance)
			}
		}
	}
	for _, p := range batch {
		e.releaseAfter(p, true)
		close(p.done)
	}
}

// releaseAfter updates the in-memory lease once a request is settled (or
// its commit failed: then nothing was charged and the hold just returns).
func (e *Engine) releaseAfter(p *pending, committed bool) {
	h := p.hold
	l := h.lease
	l.mu.Lock()
	if h.gen == l.gen && !p.orphan {
		if committed {
			l.granted -= p.charge.ChargedMicros
			l.spentSinceExtend += p.charge.ChargedMicros
		}
		l.held -= h.amount
	}
	l.holds--
	l.used = time.Now()
	if l.holds == 0 {
		e.armPark(l, e.opts.ParkAfter)
	}
	l.mu.Unlock()
	if !committed {
		e.unquota(h)
	}
}

// detailsJSON is a charge's breakdown as stored in its usage log; nil when
// nothing was charged.
func detailsJSON(d *pricing.Details) *string {
	if d == nil {
		return nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil // a struct of strings and integers always marshals
	}
	s := string(b)
	return &s
}
