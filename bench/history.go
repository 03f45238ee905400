package main

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/beaver-gateway/beaver/internal/dailyusage"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/models"
)

// History mode (-history N): N usage logs and their charges over the last
// 90 days for the bench account, written straight into the database
// (PostgreSQL: COPY in one transaction; SQLite: 1,000-row INSERTs, 200 per
// transaction), then every view of past usage timed through the API. The
// rows are consistent (the charges are paid by one top-up of their sum, so
// the balance does not move; the day sums are the logs' sums): `beaver
// verify` passes on the loaded database.

var historyModels = []string{"openai/gpt-4o-mini", "openai/gpt-4.1", "anthropic/claude-sonnet-4-5", "anthropic/claude-haiku-4-5",
	"google/gemini-2.5-flash", "deepseek/deepseek-chat", "xai/grok-4", "perplexity/sonar"}

// historyCalls calls of each view are timed, after two warm-up calls.
const historyCalls = 100

// historyView is one endpoint timed: its path and whose token calls it.
type historyView struct {
	name, path string
	admin      bool
}

func runHistory(base, dbURL, key, adminEmail, adminPassword string, n int) error {
	ctx := context.Background()
	d, err := db.Open(dbURL)
	if err != nil {
		return err
	}
	defer d.Close()
	var k models.APIKey
	if err := d.Order("created_at DESC").Take(&k).Error; err != nil {
		return fmt.Errorf("bench key: %w", err)
	}
	h := newHistoryGen(k.AccountID, k.ID, n)
	start := time.Now()
	if err := h.load(ctx, d); err != nil {
		return err
	}
	load := time.Since(start)
	fmt.Printf("Beaver history benchmark (%s): %d usage logs and %d charges of one account over 90 days, loaded in %s (%.0f logs/s)\n",
		dbKind(dbURL), n, n, load.Round(time.Second), float64(n)/load.Seconds())
	login, err := call("POST", base+"/auth/login", "", map[string]string{"email": adminEmail, "password": adminPassword})
	if err != nil {
		return err
	}
	admin, _ := login["access_token"].(string)
	views := []historyView{
		{"usage 7d", "/account/usage?days=7", false},
		{"usage 30d", "/account/usage?days=30", false},
		{"usage 90d", "/account/usage?days=90", false},
		{"billing", "/account/billing", false},
		{"transactions, first page", "/account/transactions?limit=100", false},
		// 99% of the way down, newest first: a cursor that still costs a
		// scan of the entries before it would show here
		{"transactions, deep cursor", "/account/transactions?limit=100&cursor=" +
			base64.RawURLEncoding.EncodeToString([]byte(h.entryID(n/100))), false},
		{"generation", "/v1/generation?id=" + h.genID(n/2), false},
		{"GET /api-keys/{id}", "/api-keys/" + k.ID, false},
		{"GET /api-keys", "/api-keys", false},
		{"admin accounts", "/admin/accounts", true},
		{"admin account", "/admin/accounts/" + k.AccountID, true},
	}
	for _, v := range views {
		token := key
		if v.admin {
			token = admin
		}
		l, err := timeView(base+v.path, token)
		if err != nil {
			return err
		}
		fmt.Printf("  %-28s p50 %9s   p99 %9s   (%d calls)\n", v.name, ms(q(l, 0.5)), ms(q(l, 0.99)), len(l))
	}
	return nil
}

// timeView calls url historyCalls+2 times in turn and returns the sorted
// latencies of all but the first two.
func timeView(url, token string) ([]time.Duration, error) {
	var l []time.Duration
	for i := 0; i < historyCalls+2; i++ {
		t0 := time.Now()
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		if res.StatusCode != 200 {
			return nil, fmt.Errorf("GET %s: %d", url, res.StatusCode)
		}
		if i >= 2 {
			l = append(l, time.Since(t0))
		}
	}
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	return l, nil
}

// historyGen makes the i-th usage log and charge from i alone, so each
// table can be written in its own pass (COPY streams one table at a time).
type historyGen struct {
	account, key string
	n            int
	tag          string
	from         time.Time
	span         time.Duration
}

func newHistoryGen(account, key string, n int) *historyGen {
	now := time.Now().UTC()
	from := now.AddDate(0, 0, -89)
	from = time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
	return &historyGen{account: account, key: key, n: n, tag: strconv.FormatInt(now.UnixNano(), 36), from: from, span: now.Sub(from)}
}

// mix is splitmix64: a well-spread pseudo-random number of i.
func mix(i uint64) uint64 {
	z := i + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

type historyRow struct {
	at                         time.Time
	model, keyID               string
	charge, prompt, completion int64
}

// row is the i-th log; the logs are in time order, so the ledger's seq
// and balance chain follow it.
func (h *historyGen) row(i int) historyRow {
	r := mix(uint64(i))
	row := historyRow{
		at:         h.from.Add(time.Duration(float64(h.span) * float64(i) / float64(h.n))),
		model:      historyModels[r%uint64(len(historyModels))],
		charge:     1 + int64(r>>8%200),
		prompt:     10 + int64(r>>16%2000),
		completion: int64(r >> 32 % 1000),
	}
	if i%2 == 0 {
		row.keyID = h.key
	}
	return row
}

func (h *historyGen) genID(i int) string   { return fmt.Sprintf("gen_bench_%s_%d", h.tag, i) }
func (h *historyGen) entryID(i int) string { return fmt.Sprintf("txn_bench_%s_%d", h.tag, i) }

var (
	historyLogCols = []string{"id", "request_id", "account_id", "api_key_id", "model", "provider", "price_version",
		"prompt_tokens", "completion_tokens", "provider_cost_micros", "markup_micros", "charged_micros",
		"balance_after_micros", "latency_ms", "created_at"}
	historyEntryCols = []string{"id", "account_id", "type", "amount_micros", "balance_after_micros", "reference",
		"description", "created_at", "seq"}
)

// logValues and entryValues append row i's columns; running is the
// balance after its charge.
func (h *historyGen) logValues(args []any, i int, r *historyRow, running int64) []any {
	var key any
	if r.keyID != "" {
		key = r.keyID
	}
	return append(args, h.genID(i), "", h.account, key, r.model, "bench", int64(1), r.prompt, r.completion,
		r.charge/2, r.charge-r.charge/2, r.charge, running, int64(100), r.at)
}

func (h *historyGen) entryValues(args []any, i int, r *historyRow, running, seq int64) []any {
	return append(args, h.entryID(i), h.account, models.EntryCharge, -r.charge, running, "charge:"+h.genID(i), r.model, r.at, seq)
}

// plan sums every charge (the top-up pays them) and the day sums.
func (h *historyGen) plan() (total int64, days []dailyusage.Row) {
	sums := map[[3]string]*dailyusage.Row{}
	for i := 0; i < h.n; i++ {
		r := h.row(i)
		total += r.charge
		day := dailyusage.Day(r.at)
		k := [3]string{day, r.keyID, r.model}
		s := sums[k]
		if s == nil {
			s = &dailyusage.Row{AccountID: h.account, Day: day, KeyID: r.keyID, Model: r.model}
			sums[k] = s
		}
		s.Requests++
		s.Charges++
		s.PromptTokens += r.prompt
		s.CompletionTokens += r.completion
		s.ProviderCostMicros += r.charge / 2
		s.MarkupMicros += r.charge - r.charge/2
		s.ChargedMicros += r.charge
	}
	for _, s := range sums {
		days = append(days, *s)
	}
	sort.Slice(days, func(i, j int) bool {
		return days[i].Day+days[i].KeyID+days[i].Model < days[j].Day+days[j].KeyID+days[j].Model
	})
	return total, days
}

// load writes the top-up, the n logs and charges, the day sums and the
// account's new ledger seq.
func (h *historyGen) load(ctx context.Context, d *db.DB) error {
	total, days := h.plan()
	var acct struct{ BalanceMicros, LedgerSeq int64 }
	if err := d.Raw(`SELECT balance_micros, ledger_seq FROM accounts WHERE id = ?`, h.account).Scan(&acct).Error; err != nil {
		return err
	}
	topUp := models.LedgerEntry{ID: "txn_bench_topup_" + h.tag, AccountID: h.account, Type: models.EntryTopUp, AmountMicros: total,
		BalanceAfterMicros: acct.BalanceMicros + total, Reference: "bench:history:" + h.tag, CreatedAt: h.from, Seq: acct.LedgerSeq + 1}
	if err := d.Create(&topUp).Error; err != nil {
		return err
	}
	first := acct.LedgerSeq + 2 // the first charge's seq
	lastSeq := first + int64(h.n) - 1
	var err error
	if d.Dialect == db.Postgres {
		err = h.copyPG(ctx, d, topUp.BalanceAfterMicros, first, days, lastSeq)
	} else {
		err = h.insertSQLite(ctx, d, topUp.BalanceAfterMicros, first, days, lastSeq)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: loaded %d of %d\n", h.n, h.n)
	if d.Dialect == db.Postgres {
		// What autovacuum does after a bulk load anyway, without the wait.
		return d.Exec(`ANALYZE usage_logs, ledger_entries, daily_usage`).Error
	}
	// Move the load out of the WAL: Beaver's own checkpointer would, later.
	return d.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`).Error
}

// copyPG writes everything in one transaction, the logs and charges by
// COPY (PostgreSQL's bulk path: one stream per table, no statement per row).
func (h *historyGen) copyPG(ctx context.Context, d *db.DB, balance, first int64, days []dailyusage.Row, lastSeq int64) error {
	conn, err := d.SQL().Conn(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	return conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		tx, err := pc.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		for pass, table := range []string{"usage_logs", "ledger_entries"} {
			cols := historyLogCols
			if pass == 1 {
				cols = historyEntryCols
			}
			i, running := 0, balance
			src := pgx.CopyFromFunc(func() ([]any, error) {
				if i == h.n {
					return nil, nil
				}
				r := h.row(i)
				running -= r.charge
				var v []any
				if pass == 0 {
					v = h.logValues(make([]any, 0, len(cols)), i, &r, running)
				} else {
					v = h.entryValues(make([]any, 0, len(cols)), i, &r, running, first+int64(i))
				}
				i++
				if i%1_000_000 == 0 {
					fmt.Fprintf(os.Stderr, "bench: %s: %d of %d\n", table, i, h.n)
				}
				return v, nil
			})
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{table}, cols, src); err != nil {
				return fmt.Errorf("copy %s: %w", table, err)
			}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"daily_usage"}, dailyusage.Columns, pgx.CopyFromSlice(len(days), func(j int) ([]any, error) {
			return days[j].Values(nil), nil
		})); err != nil {
			return fmt.Errorf("copy daily_usage: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE accounts SET ledger_seq = $1 WHERE id = $2`, lastSeq, h.account); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
}

// insertSQLite writes 1,000-row INSERTs, 200 per transaction, through
// statements prepared once.
func (h *historyGen) insertSQLite(ctx context.Context, d *db.DB, balance, first int64, days []dailyusage.Row, lastSeq int64) error {
	const batch, perTx = 1000, 200
	logSQL, entrySQL := bulkInsert("usage_logs", historyLogCols, batch), bulkInsert("ledger_entries", historyEntryCols, batch)
	running := balance
	la := make([]any, 0, batch*len(historyLogCols))
	ea := make([]any, 0, batch*len(historyEntryCols))
	for i := 0; i < h.n; {
		err := func() error {
			tx, err := d.SQL().BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer func() { _ = tx.Rollback() }()
			var full [2]*sql.Stmt
			for s := 0; s < perTx && i < h.n; s++ {
				size := min(batch, h.n-i)
				la, ea = la[:0], ea[:0]
				for j := 0; j < size; j, i = j+1, i+1 {
					r := h.row(i)
					running -= r.charge
					la = h.logValues(la, i, &r, running)
					ea = h.entryValues(ea, i, &r, running, first+int64(i))
				}
				if size == batch {
					if full[0] == nil {
						if full[0], err = tx.PrepareContext(ctx, logSQL); err != nil {
							return err
						}
						if full[1], err = tx.PrepareContext(ctx, entrySQL); err != nil {
							return err
						}
					}
					if _, err := full[0].ExecContext(ctx, la...); err != nil {
						return fmt.Errorf("usage logs: %w", err)
					}
					if _, err := full[1].ExecContext(ctx, ea...); err != nil {
						return fmt.Errorf("ledger entries: %w", err)
					}
					continue
				}
				if _, err := tx.ExecContext(ctx, bulkInsert("usage_logs", historyLogCols, size), la...); err != nil {
					return fmt.Errorf("usage logs: %w", err)
				}
				if _, err := tx.ExecContext(ctx, bulkInsert("ledger_entries", historyEntryCols, size), ea...); err != nil {
					return fmt.Errorf("ledger entries: %w", err)
				}
			}
			return tx.Commit()
		}()
		if err != nil {
			return err
		}
		if i%(batch*perTx*5) == 0 {
			fmt.Fprintf(os.Stderr, "bench: loaded %d of %d\n", i, h.n)
		}
	}
	tx := d.WithContext(ctx).Begin()
	defer tx.Rollback()
	for s := 0; s < len(days); s += 500 {
		if err := dailyusage.Add(tx, days[s:min(s+500, len(days))]); err != nil {
			return err
		}
	}
	if err := tx.Exec(`UPDATE accounts SET ledger_seq = ? WHERE id = ?`, lastSeq, h.account).Error; err != nil {
		return err
	}
	return tx.Commit().Error
}

// bulkInsert is an INSERT of rows rows (SQLite's ? placeholders).
func bulkInsert(table string, cols []string, rows int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
	return "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES " + strings.TrimSuffix(strings.Repeat(row+",", rows), ",")
}
