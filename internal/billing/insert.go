package billing

import (
	"strings"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/models"
)

// The settlement path writes its rows with plain multi-row INSERTs: GORM's
// reflection-driven Create was a large share of the CPU a request costs.
// The column lists mirror migrations/00001_init.sql.

const insertChunk = 200 // rows per statement: well under both databases' parameter limits

var usageLogColumns = []string{"id", "request_id", "account_id", "api_key_id", "model", "provider", "price_version",
	"prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens", "usage_estimated",
	"provider_cost_micros", "markup_micros", "charged_micros", "uncollected_micros", "balance_after_micros",
	"streamed", "cancelled", "error", "latency_ms", "created_at"}

func insertUsageLogs(tx *gorm.DB, rows []models.UsageLog) error {
	return insertRows(tx, "usage_logs", usageLogColumns, len(rows), func(i int, args []any) []any {
		r := &rows[i]
		return append(args, r.ID, r.RequestID, r.AccountID, r.APIKeyID, r.Model, r.Provider, r.PriceVersion,
			r.PromptTokens, r.CompletionTokens, r.CachedTokens, r.ReasoningTokens, r.UsageEstimated,
			r.ProviderCostMicros, r.MarkupMicros, r.ChargedMicros, r.UncollectedMicros, r.BalanceAfterMicros,
			r.Streamed, r.Cancelled, r.Error, r.LatencyMS, r.CreatedAt)
	})
}

var ledgerColumns = []string{"id", "account_id", "type", "amount_micros", "balance_after_micros", "reference",
	"description", "created_at"}

func insertLedgerEntries(tx *gorm.DB, rows []models.LedgerEntry) error {
	return insertRows(tx, "ledger_entries", ledgerColumns, len(rows), func(i int, args []any) []any {
		r := &rows[i]
		return append(args, r.ID, r.AccountID, r.Type, r.AmountMicros, r.BalanceAfterMicros, r.Reference,
			r.Description, r.CreatedAt)
	})
}

// insertRows inserts n rows, chunked, appending each row's values with row.
func insertRows(tx *gorm.DB, table string, cols []string, n int, row func(i int, args []any) []any) error {
	placeholder := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
	head := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES "
	for start := 0; start < n; start += insertChunk {
		end := min(start+insertChunk, n)
		var sql strings.Builder
		sql.WriteString(head)
		args := make([]any, 0, (end-start)*len(cols))
		for i := start; i < end; i++ {
			if i > start {
				sql.WriteByte(',')
			}
			sql.WriteString(placeholder)
			args = row(i, args)
		}
		if err := tx.Exec(sql.String(), args...).Error; err != nil {
			return err
		}
	}
	return nil
}
