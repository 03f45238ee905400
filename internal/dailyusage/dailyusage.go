// Package dailyusage keeps usage summed per account, UTC day, API key and
// model (table daily_usage, migrations/00022_daily_usage.sql). Settlement
// adds each usage log's numbers in the transaction that writes the log, so
// the sums and the logs never disagree; every view of past usage and
// charges reads the sums. The usage logs stay the source of truth: Check
// compares the two.
package dailyusage

import (
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/models"
)

// Row is one account's usage on one UTC day through one key (or "" for a
// session) on one model.
type Row struct {
	AccountID string
	Day       string // YYYY-MM-DD, UTC
	KeyID     string `gorm:"column:api_key_id"`
	Model     string
	Sums
}

// Sums are the summed numbers of a set of usage logs. Charges counts the
// logs that charged anything (each has one ledger entry).
type Sums struct {
	Requests           int64
	Charges            int64
	PromptTokens       int64
	CompletionTokens   int64
	CachedTokens       int64
	ReasoningTokens    int64
	ProviderCostMicros int64
	MarkupMicros       int64
	ChargedMicros      int64
	UncollectedMicros  int64
}

func (s *Sums) add(l *models.UsageLog) {
	s.Requests++
	if l.ChargedMicros > 0 {
		s.Charges++
	}
	s.PromptTokens += l.PromptTokens
	s.CompletionTokens += l.CompletionTokens
	s.CachedTokens += l.CachedTokens
	s.ReasoningTokens += l.ReasoningTokens
	s.ProviderCostMicros += l.ProviderCostMicros
	s.MarkupMicros += l.MarkupMicros
	s.ChargedMicros += l.ChargedMicros
	s.UncollectedMicros += l.UncollectedMicros
}

// Day is t's UTC date as daily_usage stores it.
func Day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// Of sums logs into rows, one per (account, day, key, model), sorted by
// that key: settlement upserts them in this order, and a statement may
// change a row once only.
func Of(logs []models.UsageLog) []Row {
	type key struct{ account, day, keyID, model string }
	at := map[key]int{}
	var rows []Row
	for i := range logs {
		l := &logs[i]
		k := key{l.AccountID, Day(l.CreatedAt), "", l.Model}
		if l.APIKeyID != nil {
			k.keyID = *l.APIKeyID
		}
		j, ok := at[k]
		if !ok {
			j = len(rows)
			at[k] = j
			rows = append(rows, Row{AccountID: k.account, Day: k.day, KeyID: k.keyID, Model: k.model})
		}
		rows[j].add(l)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].less(&rows[j]) })
	return rows
}

func (r *Row) less(o *Row) bool {
	if r.AccountID != o.AccountID {
		return r.AccountID < o.AccountID
	}
	if r.Day != o.Day {
		return r.Day < o.Day
	}
	if r.KeyID != o.KeyID {
		return r.KeyID < o.KeyID
	}
	return r.Model < o.Model
}

// Columns are daily_usage's columns in the order Values lists a row's.
var Columns = []string{"account_id", "day", "api_key_id", "model", "requests", "charges", "prompt_tokens",
	"completion_tokens", "cached_tokens", "reasoning_tokens", "provider_cost_micros", "markup_micros",
	"charged_micros", "uncollected_micros"}

// sumColumns are the Columns an upsert adds to.
var sumColumns = Columns[4:]

// Values appends r's values in Columns' order.
func (r *Row) Values(args []any) []any {
	return append(args, r.AccountID, r.Day, r.KeyID, r.Model, r.Requests, r.Charges, r.PromptTokens,
		r.CompletionTokens, r.CachedTokens, r.ReasoningTokens, r.ProviderCostMicros, r.MarkupMicros,
		r.ChargedMicros, r.UncollectedMicros)
}

// OnConflict ends an INSERT INTO daily_usage (Columns) VALUES … so that it
// adds to the rows that exist: a single statement, correct under concurrent
// settlements on both databases (the row is locked while it is added to).
var OnConflict = func() string {
	sets := make([]string, len(sumColumns))
	for i, c := range sumColumns {
		sets[i] = c + " = daily_usage." + c + " + excluded." + c
	}
	return " ON CONFLICT (account_id, day, api_key_id, model) DO UPDATE SET " + strings.Join(sets, ", ")
}()

// Add adds rows inside tx (for settlements written through GORM; the
// request engine writes the same statement itself).
func Add(tx *gorm.DB, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	placeholder := "(" + strings.TrimSuffix(strings.Repeat("?,", len(Columns)), ",") + ")"
	args := make([]any, 0, len(rows)*len(Columns))
	holders := make([]string, len(rows))
	for i := range rows {
		args = rows[i].Values(args)
		holders[i] = placeholder
	}
	return tx.Exec("INSERT INTO daily_usage ("+strings.Join(Columns, ", ")+") VALUES "+
		strings.Join(holders, ", ")+OnConflict, args...).Error
}
