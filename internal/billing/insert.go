package billing

import (
	"math/bits"
	"strings"
	"sync"

	"github.com/beaver-gateway/beaver/internal/dailyusage"
	"github.com/beaver-gateway/beaver/models"
)

// The settlement path writes its rows with plain multi-row INSERTs: GORM's
// reflection-driven Create was a large share of the CPU a request costs.
// The column lists mirror migrations/00001_init.sql (and 00009_ledger_seq.sql, 00010_price_dimensions.sql,
// 00022_daily_usage.sql).

var usageLogColumns = []string{"id", "request_id", "account_id", "api_key_id", "model", "provider", "price_version",
	"prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens", "usage_estimated",
	"provider_cost_micros", "markup_micros", "charged_micros", "uncollected_micros", "balance_after_micros",
	"streamed", "cancelled", "error", "latency_ms", "created_at",
	"cache_write_tokens", "cache_write_1h_tokens", "cost_details"}

func insertUsageLogs(tx *stmtTx, rows []models.UsageLog) error {
	return insertRows(tx, "usage_logs", usageLogColumns, len(rows), func(i int, args []any) []any {
		r := &rows[i]
		return append(args, r.ID, r.RequestID, r.AccountID, r.APIKeyID, r.Model, r.Provider, r.PriceVersion,
			r.PromptTokens, r.CompletionTokens, r.CachedTokens, r.ReasoningTokens, r.UsageEstimated,
			r.ProviderCostMicros, r.MarkupMicros, r.ChargedMicros, r.UncollectedMicros, r.BalanceAfterMicros,
			r.Streamed, r.Cancelled, r.Error, r.LatencyMS, r.CreatedAt,
			r.CacheWriteTokens, r.CacheWrite1hTokens, r.CostDetails)
	})
}

var ledgerColumns = []string{"id", "account_id", "type", "amount_micros", "balance_after_micros", "reference",
	"description", "created_at", "seq"}

func insertLedgerEntries(tx *stmtTx, rows []models.LedgerEntry) error {
	return insertRows(tx, "ledger_entries", ledgerColumns, len(rows), func(i int, args []any) []any {
		r := &rows[i]
		return append(args, r.ID, r.AccountID, r.Type, r.AmountMicros, r.BalanceAfterMicros, r.Reference,
			r.Description, r.CreatedAt, r.Seq)
	})
}

// insertRows inserts n rows, appending each row's values with row. Rows go
// in chunks whose sizes are powers of two (at most maxChunk), so that a
// table has only a handful of distinct statements and the prepared-statement
// cache serves every batch size: parsing a fresh multi-row INSERT for each
// batch was a tenth of a request's CPU on SQLite.
func insertRows(tx *stmtTx, table string, cols []string, n int, row func(i int, args []any) []any) error {
	return upsertRows(tx, table, cols, "", n, row)
}

// addDailyUsage adds the batch's usage logs to their days' sums
// (package dailyusage): one upsert per 128 (account, key, model)s.
func addDailyUsage(tx *stmtTx, logs []models.UsageLog) error {
	rows := dailyusage.Of(logs)
	return upsertRows(tx, "daily_usage", dailyusage.Columns, dailyusage.OnConflict, len(rows), func(i int, args []any) []any {
		return rows[i].Values(args)
	})
}

// upsertRows is insertRows with suffix (an ON CONFLICT clause) after the values.
func upsertRows(tx *stmtTx, table string, cols []string, suffix string, n int, row func(i int, args []any) []any) error {
	stmts := insertStatements(table, cols, suffix)
	args := make([]any, 0, min(n, maxChunk)*len(cols))
	for start := 0; start < n; {
		size := maxChunk
		for size > n-start {
			size /= 2
		}
		args = args[:0]
		for i := start; i < start+size; i++ {
			args = row(i, args)
		}
		if _, err := tx.exec(stmts[bits.TrailingZeros(uint(size))], args...); err != nil {
			return err
		}
		start += size
	}
	return nil
}

const maxChunk = 128 // rows per statement: well under both databases' parameter limits

var insertTexts sync.Map // table → []string, indexed by log2(rows)

// insertStatements returns the INSERT texts for 1, 2, 4 … maxChunk rows.
func insertStatements(table string, cols []string, suffix string) []string {
	if v, ok := insertTexts.Load(table); ok {
		return v.([]string)
	}
	placeholder := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
	head := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES "
	var out []string
	for size := 1; size <= maxChunk; size *= 2 {
		out = append(out, head+strings.TrimSuffix(strings.Repeat(placeholder+",", size), ",")+suffix)
	}
	insertTexts.Store(table, out)
	return out
}
