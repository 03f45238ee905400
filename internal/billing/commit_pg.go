package billing

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/beaver-gateway/beaver/internal/dailyusage"
	"github.com/beaver-gateway/beaver/models"
)

// On PostgreSQL a settlement batch is one statement: the account, key and
// lease updates and both INSERTs are data-modifying CTEs fed by arrays, so
// a commit costs one round trip instead of seven (BEGIN, three UPDATEs, two
// INSERTs, COMMIT), and the statement text never changes with the batch
// size (pgx prepares it once). A single statement is its own transaction:
// when a check fails (an account cannot cover what is charged outside a
// lease, or a lease no longer covers its part) the final SELECT raises an
// error, which undoes every CTE.
//
// Lock order matches lease extension (accounts, then api_keys, then
// balance_leases): each UPDATE waits on a one-time filter that reads the
// previous CTE to its end, so the two never deadlock. The day sums
// (package dailyusage) are upserted after the accounts are locked too:
// every row of them belongs to one account, so two settlements that add to
// one row have already queued on that account's lock.
var settleSQL = `WITH g AS (
	SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], $43::int8[]) AS g(account_id, total, leased, direct, uncounted, entries)
), a AS (
	UPDATE accounts SET balance_micros = accounts.balance_micros - g.total, reserved_micros = accounts.reserved_micros - g.leased,
		monthly_requests = CASE WHEN accounts.usage_month = $6 THEN accounts.monthly_requests + g.uncounted ELSE g.uncounted END,
		usage_month = $6, ledger_seq = accounts.ledger_seq + g.entries, updated_at = $7
	FROM g WHERE accounts.id = g.account_id AND accounts.balance_micros - accounts.reserved_micros >= g.direct
	RETURNING accounts.id, accounts.balance_micros, accounts.low_balance_threshold_micros, accounts.ledger_seq
), k AS (
	UPDATE api_keys SET spent_micros = api_keys.spent_micros + k.total, reserved_micros = api_keys.reserved_micros - k.leased
	FROM unnest($8::text[], $9::int8[], $10::int8[]) AS k(id, total, leased)
	WHERE api_keys.id = k.id AND (SELECT count(*) FROM a) >= 0
	RETURNING 1
), l AS (
	UPDATE balance_leases SET amount_micros = balance_leases.amount_micros - l.amount, updated_at = $7, expires_at = $42
	FROM unnest($11::text[], $12::int8[]) AS l(id, amount)
	WHERE balance_leases.id = l.id AND balance_leases.amount_micros >= l.amount
		AND (SELECT count(*) FROM a) >= 0 AND (SELECT count(*) FROM k) >= 0
	RETURNING 1
), u AS (
	INSERT INTO usage_logs (id, request_id, account_id, api_key_id, model, provider, price_version,
		prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, usage_estimated,
		provider_cost_micros, markup_micros, charged_micros, uncollected_micros, balance_after_micros,
		streamed, cancelled, error, latency_ms, created_at,
		cache_write_tokens, cache_write_1h_tokens, cost_details)
	SELECT u.id, u.request_id, u.account_id, NULLIF(u.api_key_id, ''), u.model, u.provider, u.price_version,
		u.prompt_tokens, u.completion_tokens, u.cached_tokens, u.reasoning_tokens, u.usage_estimated,
		u.provider_cost, u.markup, u.charged, u.uncollected, a.balance_micros + u.after,
		u.streamed, u.cancelled, NULLIF(u.error, ''), u.latency_ms, $7,
		u.cache_write, u.cache_write_1h, NULLIF(u.cost_details, '')
	FROM unnest($13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::int8[],
		$20::int8[], $21::int8[], $22::int8[], $23::int8[], $24::bool[],
		$25::int8[], $26::int8[], $27::int8[], $28::int8[], $29::int8[],
		$30::bool[], $31::bool[], $32::text[], $33::int8[], $45::int8[], $46::int8[], $47::text[])
		AS u(id, request_id, account_id, api_key_id, model, provider, price_version,
		prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, usage_estimated,
		provider_cost, markup, charged, uncollected, after,
		streamed, cancelled, error, latency_ms, cache_write, cache_write_1h, cost_details)
	JOIN a ON a.id = u.account_id
	RETURNING 1
), e AS (
	INSERT INTO ledger_entries (id, account_id, type, amount_micros, balance_after_micros, reference, description, created_at, seq)
	SELECT e.id, e.account_id, 'charge', e.amount, a.balance_micros + e.after, e.reference, e.description, $7, a.ledger_seq + e.seq
	FROM unnest($34::text[], $35::text[], $36::int8[], $37::int8[], $38::text[], $39::text[], $44::int8[])
		AS e(id, account_id, amount, after, reference, description, seq)
	JOIN a ON a.id = e.account_id
	RETURNING 1
), d AS (
	INSERT INTO daily_usage (` + strings.Join(dailyusage.Columns, ", ") + `)
	SELECT * FROM unnest($48::text[], $49::text[], $50::text[], $51::text[], $52::int8[], $53::int8[], $54::int8[],
		$55::int8[], $56::int8[], $57::int8[], $58::int8[], $59::int8[], $60::int8[], $61::int8[])
	WHERE (SELECT count(*) FROM a) >= 0` + dailyusage.OnConflict + `
	RETURNING 1
)
SELECT CASE WHEN (SELECT count(*) FROM a) = $40 AND (SELECT count(*) FROM l) = $41 THEN
		(SELECT COALESCE(string_agg(a.id || ':' || a.balance_micros || ':' || a.low_balance_threshold_micros, ','), '') FROM a)
	ELSE CAST('settlement refused: ' || (SELECT count(*) FROM a) || ' of ' || $40 || ' accounts could cover what is charged outside a lease, '
		|| (SELECT count(*) FROM l) || ' of ' || $41 || ' leases still cover their part' AS int)::text END`

// settleSQLAsync is settleSQL committing with synchronous_commit=off
// (EngineOptions.AsyncCommit): set_config(…, true) is SET LOCAL, so it
// holds for this statement's own transaction only and never outlives it on
// the connection (nor leaks to another client's transactions behind a
// transaction pooler). PostgreSQL reads synchronous_commit when the
// transaction commits, so setting it inside the statement is enough.
var settleSQLAsync = strings.Replace(settleSQL,
	") AS g(account_id, total, leased, direct, uncounted, entries)\n",
	") AS g(account_id, total, leased, direct, uncounted, entries)\n\tWHERE set_config('synchronous_commit', 'off', true) = 'off'\n", 1)

// commitPG writes a batch's groups in one statement on the engine's own
// connection (settlement commits are serialised, so one is enough).
func (e *Engine) commitPG(ctx context.Context, groups map[leaseKey]*group, now time.Time, month string) error {
	var (
		// per account (several keys of one account are one row: an UPDATE
		// changes a row once, whatever number of its FROM rows match)
		accounts                 []string
		aTotal, aLeased, aDirect []int64
		aUncounted, aEntries     []int64
		keyIDs                   []string
		kTotal, kLeased          []int64
		leaseIDs                 []string
		lAmount                  []int64
		logs                     []models.UsageLog
		entries                  []models.LedgerEntry
		accountIndex             = map[string]int{}
		order                    = sortedKeys(groups)
		totals                   = make([]int64, len(order))
		after                    = make([]int64, len(order)) // group i's balance after = account's new balance + after[i]
		seqAfter                 = make([]int64, len(order)) // and its last ledger seq = the account's new seq + seqAfter[i]
	)
	for i, k := range order {
		g := groups[k]
		total, uncounted := g.sum()
		totals[i] = total
		j, ok := accountIndex[k.account]
		if !ok {
			j = len(accounts)
			accountIndex[k.account] = j
			accounts = append(accounts, k.account)
			aTotal, aLeased, aDirect, aUncounted = append(aTotal, 0), append(aLeased, 0), append(aDirect, 0), append(aUncounted, 0)
			aEntries = append(aEntries, 0)
		}
		aEntries[j] += g.entries()
		aTotal[j] += total
		aLeased[j] += g.leaseSum
		aDirect[j] += g.directSum
		aUncounted[j] += int64(uncounted)
		if g.chargesKey() {
			keyIDs, kTotal, kLeased = append(keyIDs, k.key), append(kTotal, total), append(kLeased, g.leaseSum)
		}
		if g.leaseSum > 0 {
			leaseIDs, lAmount = append(leaseIDs, g.leaseID), append(lAmount, g.leaseSum)
		}
	}
	// The groups of one account are charged in order, as on SQLite: a
	// group's balance after is the new balance plus what later groups of
	// the same account took.
	for i := len(order) - 1; i >= 0; i-- {
		for j := i + 1; j < len(order); j++ {
			if order[j].account == order[i].account {
				after[i] += totals[j]
				seqAfter[i] -= groups[order[j]].entries()
			}
		}
	}
	for i, k := range order {
		logs, entries = groups[k].settle(after[i], seqAfter[i], now, logs, entries)
	}

	n := len(logs)
	u := struct {
		id, requestID, account, key, model, provider, errText []string
		costDetails                                           []string
		cacheWrite, cacheWrite1h                              []int64
		priceVersion, prompt, completion, cached, reasoning   []int64
		cost, markup, charged, uncollected, after, latency    []int64
		estimated, streamed, cancelled                        []bool
	}{}
	grow := func(s *[]string) { *s = make([]string, 0, n) }
	for _, s := range []*[]string{&u.id, &u.requestID, &u.account, &u.key, &u.model, &u.provider, &u.errText} {
		grow(s)
	}
	for i := range logs {
		r := &logs[i]
		key, errText := "", ""
		if r.APIKeyID != nil {
			key = *r.APIKeyID
		}
		if r.Error != nil {
			errText = *r.Error
		}
		u.id, u.requestID, u.account, u.key = append(u.id, r.ID), append(u.requestID, r.RequestID), append(u.account, r.AccountID), append(u.key, key)
		u.model, u.provider, u.errText = append(u.model, r.Model), append(u.provider, r.Provider), append(u.errText, errText)
		u.priceVersion, u.prompt, u.completion = append(u.priceVersion, r.PriceVersion), append(u.prompt, r.PromptTokens), append(u.completion, r.CompletionTokens)
		u.cached, u.reasoning = append(u.cached, r.CachedTokens), append(u.reasoning, r.ReasoningTokens)
		u.cost, u.markup, u.charged = append(u.cost, r.ProviderCostMicros), append(u.markup, r.MarkupMicros), append(u.charged, r.ChargedMicros)
		u.uncollected, u.after, u.latency = append(u.uncollected, r.UncollectedMicros), append(u.after, r.BalanceAfterMicros), append(u.latency, r.LatencyMS)
		u.estimated, u.streamed, u.cancelled = append(u.estimated, r.UsageEstimated), append(u.streamed, r.Streamed), append(u.cancelled, r.Cancelled)
		details := ""
		if r.CostDetails != nil {
			details = *r.CostDetails
		}
		u.cacheWrite, u.cacheWrite1h, u.costDetails = append(u.cacheWrite, r.CacheWriteTokens), append(u.cacheWrite1h, r.CacheWrite1hTokens), append(u.costDetails, details)
	}
	var eID, eAccount, eRef, eDesc []string
	var eAmount, eAfter, eSeq []int64
	for i := range entries {
		r := &entries[i]
		eID, eAccount, eRef, eDesc = append(eID, r.ID), append(eAccount, r.AccountID), append(eRef, r.Reference), append(eDesc, r.Description)
		eAmount, eAfter, eSeq = append(eAmount, r.AmountMicros), append(eAfter, r.BalanceAfterMicros), append(eSeq, r.Seq)
	}

	days := dailyUsageArrays(logs)

	conn, err := e.stmts.pgConn(ctx)
	if err != nil {
		return err
	}
	stmt := settleSQL
	if e.stmts.async {
		stmt = settleSQLAsync
	}
	var out string
	err = conn.QueryRowContext(ctx, stmt,
		accounts, aTotal, aLeased, aDirect, aUncounted, month, now,
		keyIDs, kTotal, kLeased, leaseIDs, lAmount,
		u.id, u.requestID, u.account, u.key, u.model, u.provider, u.priceVersion,
		u.prompt, u.completion, u.cached, u.reasoning, u.estimated,
		u.cost, u.markup, u.charged, u.uncollected, u.after,
		u.streamed, u.cancelled, u.errText, u.latency,
		eID, eAccount, eAmount, eAfter, eRef, eDesc,
		len(accounts), len(leaseIDs), now.Add(e.opts.LeaseTTL), aEntries, eSeq,
		u.cacheWrite, u.cacheWrite1h, u.costDetails,
		days.account, days.day, days.key, days.model, days.sums[0], days.sums[1], days.sums[2], days.sums[3],
		days.sums[4], days.sums[5], days.sums[6], days.sums[7], days.sums[8], days.sums[9]).Scan(&out)
	if err != nil {
		e.stmts.dropPGConn(err)
		return err
	}
	type state struct{ balance, threshold int64 }
	got := map[string]state{}
	for _, part := range strings.Split(out, ",") {
		f := strings.Split(part, ":")
		if len(f) != 3 {
			return fmt.Errorf("settlement: unexpected answer %q", out)
		}
		b, err1 := strconv.ParseInt(f[1], 10, 64)
		t, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("settlement: unexpected answer %q", out)
		}
		got[f[0]] = state{b, t}
	}
	for i, k := range order {
		st, ok := got[k.account]
		if !ok {
			return fmt.Errorf("settlement: no balance for account %s", k.account)
		}
		g := groups[k]
		for _, p := range g.items {
			p.res.BalanceAfterMicros += st.balance
		}
		balance := st.balance + after[i]
		g.items[0].group = &groupResult{account: k.account, balance: balance, before: balance + totals[i], threshold: st.threshold}
	}
	return nil
}

// dailyUsageRows are a batch's day sums as the columns settleSQL unnests.
type dailyUsageRows struct {
	account, day, key, model []string
	sums                     [10][]int64 // in dailyusage.Columns' order
}

func dailyUsageArrays(logs []models.UsageLog) dailyUsageRows {
	var d dailyUsageRows
	for _, r := range dailyusage.Of(logs) {
		d.account, d.day, d.key, d.model = append(d.account, r.AccountID), append(d.day, r.Day), append(d.key, r.KeyID), append(d.model, r.Model)
		for i, v := range []int64{r.Requests, r.Charges, r.PromptTokens, r.CompletionTokens, r.CachedTokens,
			r.ReasoningTokens, r.ProviderCostMicros, r.MarkupMicros, r.ChargedMicros, r.UncollectedMicros} {
			d.sums[i] = append(d.sums[i], v)
		}
	}
	return d
}

// pgConn returns the connection settlement commits run on, opening it when
// needed. It keeps the session's settings as they are: AsyncCommit is set
// per transaction (settleSQLAsync).
func (s *statements) pgConn(ctx context.Context) (*sql.Conn, error) {
	if s.conn != nil {
		return s.conn, nil
	}
	c, err := s.sql.Conn(ctx)
	if err != nil {
		return nil, err
	}
	s.conn = c
	return c, nil
}

// dropPGConn forgets the settlement connection after an error that may
// have broken it; statement errors leave it usable, but a new one is cheap.
func (s *statements) dropPGConn(err error) {
	if s.conn == nil || err == nil {
		return
	}
	_ = s.conn.Close()
	s.conn = nil
}
