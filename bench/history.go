package main

import (
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/dailyusage"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/models"
)

// History mode (-history N): N usage logs and their charges over the last
// 90 days for the bench account, written straight into the database in
// large multi-row INSERTs, then the views of past usage timed through the
// API. The rows are consistent (the charges are paid by one top-up of
// their sum, so the balance does not move; the day sums are the logs'
// sums): `beaver verify` passes on the loaded database.

var historyModels = []string{"openai/gpt-4o-mini", "openai/gpt-4.1", "anthropic/claude-sonnet-4-5", "anthropic/claude-haiku-4-5",
	"google/gemini-2.5-flash", "deepseek/deepseek-chat", "xai/grok-4", "perplexity/sonar"}

// historyViews are the endpoints timed, each historyCalls times.
var historyViews = []string{"/account/usage?days=7", "/account/usage?days=30", "/account/usage?days=90", "/account/billing",
	"/account/transactions?limit=100"}

const historyCalls = 40

func runHistory(base, dbURL, key string, n int) error {
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
	start := time.Now()
	if err := loadHistory(ctx, d, k.AccountID, k.ID, n); err != nil {
		return err
	}
	load := time.Since(start)
	fmt.Printf("Beaver history benchmark (%s): %d usage logs and charges of one account over 90 days, loaded in %s (%.0f rows/s)\n",
		dbKind(dbURL), n, load.Round(time.Second), float64(n)/load.Seconds())
	for _, v := range historyViews {
		var l []time.Duration
		for i := 0; i < historyCalls+2; i++ {
			t0 := time.Now()
			req, _ := http.NewRequest("GET", base+v, nil)
			req.Header.Set("Authorization", "Bearer "+key)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			body := make([]byte, 1<<20)
			for {
				if _, err := res.Body.Read(body); err != nil {
					break
				}
			}
			_ = res.Body.Close()
			if res.StatusCode != 200 {
				return fmt.Errorf("GET %s: %d", v, res.StatusCode)
			}
			if i >= 2 { // two warm-up calls
				l = append(l, time.Since(t0))
			}
		}
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		fmt.Printf("  %-34s p50 %9s   p99 %9s   (%d calls)\n", v, ms(q(l, 0.5)), ms(q(l, 0.99)), len(l))
	}
	return nil
}

// loadHistory writes n usage logs with their ledger entries (and one
// top-up paying for them all) and their day sums.
func loadHistory(ctx context.Context, d *db.DB, account, keyID string, n int) error {
	rnd := rand.New(rand.NewSource(1))
	now := time.Now().UTC()
	from := now.AddDate(0, 0, -89)
	from = time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
	span := now.Sub(from)
	charges := make([]int64, n)
	var total int64
	for i := range charges {
		charges[i] = 1 + rnd.Int63n(200)
		total += charges[i]
	}
	var acct struct{ BalanceMicros, LedgerSeq int64 }
	if err := d.Raw(`SELECT balance_micros, ledger_seq FROM accounts WHERE id = ?`, account).Scan(&acct).Error; err != nil {
		return err
	}
	seq := acct.LedgerSeq
	running := acct.BalanceMicros + total
	seq++
	if err := d.Create(&models.LedgerEntry{ID: "txn_bench_topup_" + strconv.FormatInt(now.UnixNano(), 36), AccountID: account,
		Type: models.EntryTopUp, AmountMicros: total, BalanceAfterMicros: running, Reference: "bench:history:" + strconv.FormatInt(now.UnixNano(), 36),
		CreatedAt: from, Seq: seq}).Error; err != nil {
		return err
	}
	sums := map[[3]string]*dailyusage.Row{}
	const batch = 1000
	const perTx = 50 // statements per transaction
	logCols := []string{"id", "request_id", "account_id", "api_key_id", "model", "provider", "price_version",
		"prompt_tokens", "completion_tokens", "provider_cost_micros", "markup_micros", "charged_micros",
		"balance_after_micros", "latency_ms", "created_at"}
	entryCols := []string{"id", "account_id", "type", "amount_micros", "balance_after_micros", "reference", "description", "created_at", "seq"}
	logSQL, entrySQL := bulkInsert(d, "usage_logs", logCols, batch), bulkInsert(d, "ledger_entries", entryCols, batch)
	tag := strconv.FormatInt(now.UnixNano(), 36)
	for i := 0; i < n; {
		err := func() error {
			tx, err := d.SQL().BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer func() { _ = tx.Rollback() }()
			for s := 0; s < perTx && i < n; s++ {
				size := min(batch, n-i)
				la := make([]any, 0, size*len(logCols))
				ea := make([]any, 0, size*len(entryCols))
				for j := 0; j < size; j, i = j+1, i+1 {
					// in time order, so the ledger's chain and seq follow it
					at := from.Add(time.Duration(float64(span) * float64(i) / float64(n)))
					model := historyModels[rnd.Intn(len(historyModels))]
					var key any
					kid := ""
					if i%2 == 0 {
						key, kid = keyID, keyID
					}
					c := charges[i]
					running -= c
					seq++
					prompt, completion := 10+rnd.Int63n(2000), rnd.Int63n(1000)
					gen := fmt.Sprintf("gen_bench_%s_%d", tag, i)
					la = append(la, gen, "", account, key, model, "bench", 1, prompt, completion, c/2, c-c/2, c, running, 100, at)
					ea = append(ea, fmt.Sprintf("txn_bench_%s_%d", tag, i), account, models.EntryCharge, -c, running, "charge:"+gen, model, at, seq)
					day := dailyusage.Day(at)
					r := sums[[3]string{day, kid, model}]
					if r == nil {
						r = &dailyusage.Row{AccountID: account, Day: day, KeyID: kid, Model: model}
						sums[[3]string{day, kid, model}] = r
					}
					r.Requests++
					r.Charges++
					r.PromptTokens += prompt
					r.CompletionTokens += completion
					r.ProviderCostMicros += c / 2
					r.MarkupMicros += c - c/2
					r.ChargedMicros += c
				}
				if _, err := tx.ExecContext(ctx, statement(logSQL, d, size, len(logCols)), la...); err != nil {
					return fmt.Errorf("usage logs: %w", err)
				}
				if _, err := tx.ExecContext(ctx, statement(entrySQL, d, size, len(entryCols)), ea...); err != nil {
					return fmt.Errorf("ledger entries: %w", err)
				}
			}
			return tx.Commit()
		}()
		if err != nil {
			return err
		}
		if i%(batch*perTx*10) == 0 || i == n {
			fmt.Fprintf(os.Stderr, "bench: loaded %d of %d\n", i, n)
		}
	}
	rows := make([]dailyusage.Row, 0, len(sums))
	for _, r := range sums {
		rows = append(rows, *r)
	}
	return d.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for s := 0; s < len(rows); s += 500 {
			if err := dailyusage.Add(tx, rows[s:min(s+500, len(rows))]); err != nil {
				return err
			}
		}
		return tx.Exec(`UPDATE accounts SET ledger_seq = ? WHERE id = ?`, seq, account).Error
	})
}

// bulkInsert is an INSERT of batch rows (a shorter last batch cuts it).
func bulkInsert(d *db.DB, table string, cols []string, batch int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
	return "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES " + strings.TrimSuffix(strings.Repeat(row+",", batch), ",")
}

// statement is the first size rows of full, with PostgreSQL's $n
// placeholders there.
func statement(full string, d *db.DB, size, cols int) string {
	head := full[:strings.Index(full, " VALUES ")+len(" VALUES ")]
	rowLen := 2*cols + 2 // "(?,?,…?)" plus its comma
	q := strings.TrimSuffix(full[:min(len(full), len(head)+size*rowLen)], ",")
	if d.Dialect != db.Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}
