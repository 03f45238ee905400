package dailyusage

import (
	"context"
	"fmt"
	"time"

	"github.com/beaver-gateway/beaver/internal/db"
)

// ModelDay is an account's usage of one model on one day.
type ModelDay struct {
	Model            string
	Day              string
	Requests         int64
	PromptTokens     int64
	CompletionTokens int64
	CostMicros       int64
}

// ByModelDay sums an account's usage per model and day from sinceDay
// (YYYY-MM-DD) on: one index range of daily_usage, read in index order and
// added up here (the keys' rows of a model and day are a handful), which
// spares the database a sort of the range.
func ByModelDay(ctx context.Context, d *db.DB, accountID, sinceDay string) ([]ModelDay, error) {
	rows, err := d.WithContext(ctx).Raw(`SELECT model, day, requests, prompt_tokens, completion_tokens, charged_micros
		FROM daily_usage WHERE account_id = ? AND day >= ?`, accountID, sinceDay).Rows()
	if err != nil {
		return nil, fmt.Errorf("daily usage by model and day: %w", err)
	}
	defer rows.Close()
	type key struct{ model, day string }
	at := map[key]int{}
	var out []ModelDay
	for rows.Next() {
		var r ModelDay
		if err := rows.Scan(&r.Model, &r.Day, &r.Requests, &r.PromptTokens, &r.CompletionTokens, &r.CostMicros); err != nil {
			return nil, fmt.Errorf("daily usage by model and day: %w", err)
		}
		k := key{r.Model, r.Day}
		i, ok := at[k]
		if !ok {
			at[k] = len(out)
			out = append(out, r)
			continue
		}
		o := &out[i]
		o.Requests += r.Requests
		o.PromptTokens += r.PromptTokens
		o.CompletionTokens += r.CompletionTokens
		o.CostMicros += r.CostMicros
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("daily usage by model and day: %w", err)
	}
	return out, nil
}

// Month is an account's charges in one UTC month.
type Month struct {
	Month         string // YYYY-MM
	ChargedMicros int64
	Charges       int64 // charged requests (ledger entries)
}

// Monthly sums an account's charges per UTC month, newest first, for the
// months that charged anything among the last months calendar months up to
// now's. Only those months' rows are read (a range of the primary key), so
// the cost does not grow with the account's age.
func Monthly(ctx context.Context, d *db.DB, accountID string, months int, now time.Time) ([]Month, error) {
	if months < 1 {
		return nil, nil
	}
	y, m, _ := now.UTC().Date()
	since := Day(time.Date(y, m-time.Month(months-1), 1, 0, 0, 0, 0, time.UTC))
	var rows []Month
	err := d.WithContext(ctx).Raw(`SELECT substr(day, 1, 7) AS month,
			CAST(SUM(charged_micros) AS BIGINT) AS charged_micros, CAST(SUM(charges) AS BIGINT) AS charges
		FROM daily_usage WHERE account_id = ? AND day >= ?
		GROUP BY substr(day, 1, 7) HAVING SUM(charges) > 0 ORDER BY 1 DESC`, accountID, since).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("daily usage by month: %w", err)
	}
	return rows, nil
}

// KeySums sums one key's usage from sinceDay on: one range of the index
// on (api_key_id, day), however many keys, days and models its account has.
func KeySums(ctx context.Context, d *db.DB, keyID, sinceDay string) (Sums, error) {
	var s Sums
	err := d.WithContext(ctx).Raw(`SELECT `+sumsSelect+` FROM daily_usage
		WHERE api_key_id = ? AND day >= ?`, keyID, sinceDay).Scan(&s).Error
	if err != nil {
		return Sums{}, fmt.Errorf("daily usage of key %s: %w", keyID, err)
	}
	return s, nil
}

// sumsSelect selects Sums over a set of daily_usage rows.
const sumsSelect = `CAST(COALESCE(SUM(requests), 0) AS BIGINT) AS requests,
	CAST(COALESCE(SUM(charges), 0) AS BIGINT) AS charges,
	CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS prompt_tokens,
	CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) AS completion_tokens,
	CAST(COALESCE(SUM(cached_tokens), 0) AS BIGINT) AS cached_tokens,
	CAST(COALESCE(SUM(reasoning_tokens), 0) AS BIGINT) AS reasoning_tokens,
	CAST(COALESCE(SUM(provider_cost_micros), 0) AS BIGINT) AS provider_cost_micros,
	CAST(COALESCE(SUM(markup_micros), 0) AS BIGINT) AS markup_micros,
	CAST(COALESCE(SUM(charged_micros), 0) AS BIGINT) AS charged_micros,
	CAST(COALESCE(SUM(uncollected_micros), 0) AS BIGINT) AS uncollected_micros`

// AccountSums sums each of accountIDs' usage from sinceDay on (one index
// range of daily_usage per account); accounts without usage are absent.
func AccountSums(ctx context.Context, d *db.DB, accountIDs []string, sinceDay string) (map[string]Sums, error) {
	out := make(map[string]Sums, len(accountIDs))
	if len(accountIDs) == 0 {
		return out, nil
	}
	var rows []struct {
		AccountID string
		Sums
	}
	err := d.WithContext(ctx).Raw(`SELECT account_id, `+sumsSelect+` FROM daily_usage
		WHERE account_id IN ? AND day >= ? GROUP BY account_id`, accountIDs, sinceDay).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("daily usage of accounts: %w", err)
	}
	for _, r := range rows {
		out[r.AccountID] = r.Sums
	}
	return out, nil
}
