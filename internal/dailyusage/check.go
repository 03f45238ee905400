package dailyusage

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/beaver-gateway/beaver/internal/db"
)

// Mismatch is a (account, day, key, model) whose daily_usage row differs
// from the sums of its usage logs (a missing row counts as zeros).
type Mismatch struct {
	AccountID, Day, KeyID, Model string
	Stored, Logged               Sums
}

func (m Mismatch) String() string {
	key := m.KeyID
	if key == "" {
		key = "(session)"
	}
	return fmt.Sprintf("account %s, %s, key %s, model %s: daily_usage has %+v, the usage logs sum to %+v",
		m.AccountID, m.Day, key, m.Model, m.Stored, m.Logged)
}

// Check compares daily_usage with the sums of the usage logs for the UTC
// days from since on (zero: every day). Days whose logs were deleted
// (retention) cannot be checked: pass the first day that still has all its
// logs. It returns every mismatch.
func Check(ctx context.Context, d *db.DB, since time.Time) ([]Mismatch, error) {
	sinceDay := Day(since)
	dayOf := "substr(created_at, 1, 10)"
	if d.Dialect == db.Postgres {
		dayOf = "to_char(created_at, 'YYYY-MM-DD')"
	}
	// Both sides in byte order, as Row.less compares (PostgreSQL's default
	// collation is the locale's).
	collate := ""
	if d.Dialect == db.Postgres {
		collate = ` COLLATE "C"`
	}
	order := func(cols ...string) string {
		for i := range cols {
			cols[i] += collate
		}
		return " ORDER BY " + strings.Join(cols, ", ")
	}
	logged, err := d.WithContext(ctx).Raw(`SELECT account_id, `+dayOf+`, COALESCE(api_key_id, ''), model,
			COUNT(*), CAST(SUM(CASE WHEN charged_micros > 0 THEN 1 ELSE 0 END) AS BIGINT),
			CAST(SUM(prompt_tokens) AS BIGINT), CAST(SUM(completion_tokens) AS BIGINT),
			CAST(SUM(cached_tokens) AS BIGINT), CAST(SUM(reasoning_tokens) AS BIGINT),
			CAST(SUM(provider_cost_micros) AS BIGINT), CAST(SUM(markup_micros) AS BIGINT),
			CAST(SUM(charged_micros) AS BIGINT), CAST(SUM(uncollected_micros) AS BIGINT)
		FROM usage_logs WHERE created_at >= ?
		GROUP BY 1, 2, 3, 4`+order("account_id", dayOf, "COALESCE(api_key_id, '')", "model"), dayStart(since)).Rows()
	if err != nil {
		return nil, fmt.Errorf("sum usage logs: %w", err)
	}
	defer logged.Close()
	stored, err := d.WithContext(ctx).Raw(`SELECT account_id, day, api_key_id, model, requests, charges,
			prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, provider_cost_micros, markup_micros,
			charged_micros, uncollected_micros
		FROM daily_usage WHERE day >= ?`+order("account_id", "day", "api_key_id", "model"), sinceDay).Rows()
	if err != nil {
		return nil, fmt.Errorf("read daily usage: %w", err)
	}
	defer stored.Close()

	var out []Mismatch
	l, lok, err := next(logged)
	if err != nil {
		return nil, err
	}
	s, sok, err := next(stored)
	if err != nil {
		return nil, err
	}
	for lok || sok {
		switch {
		case sok && (!lok || s.less(&l)): // a row without logs
			out = append(out, Mismatch{AccountID: s.AccountID, Day: s.Day, KeyID: s.KeyID, Model: s.Model, Stored: s.Sums})
			if s, sok, err = next(stored); err != nil {
				return nil, err
			}
		case lok && (!sok || l.less(&s)): // logs without a row
			out = append(out, Mismatch{AccountID: l.AccountID, Day: l.Day, KeyID: l.KeyID, Model: l.Model, Logged: l.Sums})
			if l, lok, err = next(logged); err != nil {
				return nil, err
			}
		default:
			if s.Sums != l.Sums {
				out = append(out, Mismatch{AccountID: s.AccountID, Day: s.Day, KeyID: s.KeyID, Model: s.Model, Stored: s.Sums, Logged: l.Sums})
			}
			if l, lok, err = next(logged); err != nil {
				return nil, err
			}
			if s, sok, err = next(stored); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// dayStart is the start of since's UTC day (zero stays zero).
func dayStart(since time.Time) time.Time {
	since = since.UTC()
	return time.Date(since.Year(), since.Month(), since.Day(), 0, 0, 0, 0, time.UTC)
}

func next(rows *sql.Rows) (Row, bool, error) {
	var r Row
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return r, false, fmt.Errorf("compare daily usage: %w", err)
		}
		return r, false, nil
	}
	err := rows.Scan(&r.AccountID, &r.Day, &r.KeyID, &r.Model, &r.Requests, &r.Charges, &r.PromptTokens,
		&r.CompletionTokens, &r.CachedTokens, &r.ReasoningTokens, &r.ProviderCostMicros, &r.MarkupMicros,
		&r.ChargedMicros, &r.UncollectedMicros)
	if err != nil {
		return r, false, fmt.Errorf("compare daily usage: %w", err)
	}
	return r, true, nil
}
